"""Our model wrapper against the neuraloperator library, the Spectral-Refiner widening, LSM shapes."""

import pytest
import torch

from backends.common import UserError
from backends.operator.models import KINDS, ModelConfig, OperatorModel, last_spectral_conv, widen_last_conv

neuralop = pytest.importorskip("neuralop")


@pytest.mark.parametrize("kind", ["fno", "tfno"])
def test_wrapper_equals_the_library_model_on_identical_weights(kind):
    """OperatorModel(x) = decode(library_net(encode(x))) with the library's FNO/TFNO built independently."""
    torch.manual_seed(1)
    cfg = ModelConfig(kind=kind, in_channels=1, out_channels=1, modes=6, width=12, layers=3)
    ours = OperatorModel(cfg).eval()
    ours.set_normalisers([6.0], [4.0], [0.3], [2.0])
    lib_cls = neuralop.models.FNO if kind == "fno" else neuralop.models.TFNO
    lib = lib_cls(n_modes=(6, 6), in_channels=1, out_channels=1, hidden_channels=12, n_layers=3).eval()
    lib.load_state_dict({k: v for k, v in ours.net.state_dict().items() if k != "_metadata"})
    x = torch.where(torch.rand(3, 1, 20, 20) > 0.5, 12.0, 3.0)
    with torch.no_grad():
        expected = lib((x - 6.0) / (4.0 + 1e-7)) * (2.0 + 1e-7) + 0.3
        got = ours(x)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    assert float(got.std()) > 1e-3  # a real, non-constant output


@pytest.mark.parametrize("kind", ["fno", "tfno", "fno3d"])
def test_widened_last_conv_keeps_the_function_and_is_live(kind):
    torch.manual_seed(2)
    cfg = ModelConfig(kind=kind, in_channels=3 if kind == "fno3d" else 1, out_channels=4 if kind == "fno3d" else 1,
                      modes=4, width=8, layers=2, modes_t=2)  # fmt: skip
    m = OperatorModel(cfg).eval()
    x = torch.randn(2, cfg.in_channels, 16, 16)
    with torch.no_grad():
        before = m(x)
        widen_last_conv(m.net, 16, 8)
        after = m(x)
        assert torch.allclose(before, after, atol=1e-6)
        conv = last_spectral_conv(m.net)
        assert conv.n_modes[0] == 16  # no truncation along the first axis
        w = conv.weight.tensor
        w[:, :, 0] += 0.5  # the most negative frequency of the first axis: far above the trained modes
        assert float((m(x) - before).abs().max()) > 1e-4


def test_lsm_any_resolution_and_needs_width_divisible_by_heads():
    torch.manual_seed(3)
    m = OperatorModel(ModelConfig(kind="lsm", width=16, patch=3, levels=3, tokens=2, basis=4)).eval()
    for n in (13, 24, 37):
        with torch.no_grad():
            y = m(torch.randn(2, 1, n, n))
        assert y.shape == (2, 1, n, n) and torch.isfinite(y).all()
    with pytest.raises(UserError, match="divisible by 8"):
        ModelConfig(kind="lsm", width=20)


def test_lsm_output_is_local_only_through_its_receptive_field_not_through_padding():
    """Zero padding to the patch multiple must not leak into the crop: a perturbation of the input far from a
    corner changes the prediction there (global latent mixing), and the output stays on the input grid."""
    torch.manual_seed(4)
    m = OperatorModel(ModelConfig(kind="lsm", width=8, patch=2, levels=2, tokens=2, basis=3)).eval()
    x = torch.randn(1, 1, 10, 10)
    x2 = x.clone()
    x2[..., 9, 9] += 5.0
    with torch.no_grad():
        d = (m(x2) - m(x)).abs()
    assert d.shape == (1, 1, 10, 10) and float(d[..., 9, 9]) > float(d[..., 0, 0]) > 0


@pytest.mark.parametrize("bad", [dict(kind="unet"), dict(modes=0), dict(width=1), dict(levels=9)])
def test_config_ranges(bad):
    with pytest.raises(UserError):
        ModelConfig(**bad)


def test_config_from_dict_rejects_foreign_keys_and_types():
    with pytest.raises(UserError, match="unknown keys"):
        ModelConfig.from_dict({"kind": "fno", "evil": 1})
    with pytest.raises(UserError, match="modes must be int"):
        ModelConfig.from_dict({"kind": "fno", "modes": "12"})
    assert ModelConfig.from_dict(ModelConfig(kind="lsm", width=16).to_dict()).kind in KINDS
