import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The shared test machine has 2 cores: one torch thread avoids oversubscription stalls."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
