import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The FFT sizes of these tests are small: one thread is faster on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
