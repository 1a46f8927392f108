"""4D slicing against direct Gaussian conditioning; static 4D == 3D; edits and attribute colouring."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import UserError
from backends.splat import camera as cm
from backends.splat import edits, gauss4d, io, raster, samples
from backends.splat.gaussians import Gaussians, concat


def _scene4d(n=30, seed=0):
    rng = np.random.default_rng(seed)
    ql, qr = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
    return Gaussians(
        means=rng.normal(0, 0.5, (n, 3)),
        scales=np.exp(rng.normal(-2, 0.4, (n, 3))),
        quats=ql,
        opacities=rng.uniform(0.3, 1, n),
        sh=rng.normal(0, 0.5, (n, 1, 3)),
        t=rng.uniform(0, 1, n),
        scale_t=np.exp(rng.normal(-1.5, 0.3, n)),
        quats_r=qr,
    )


def _density(x, mean, cov):
    d = x - mean
    k = len(mean)
    return np.exp(-0.5 * d @ np.linalg.solve(cov, d)) / np.sqrt((2 * np.pi) ** k * np.linalg.det(cov))


def test_rotation_4d_is_orthonormal_and_static_pair_is_3d():
    g = _scene4d()
    r = gauss4d.rotation_4d(g.quats, g.quats_r)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(4), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1, atol=1e-12)
    from backends.splat.gaussians import quat_to_rotmat

    q = g.quats / np.linalg.norm(g.quats, axis=1, keepdims=True)
    r_static = gauss4d.rotation_4d(q, q * [1, -1, -1, -1])
    np.testing.assert_allclose(r_static[:, :3, :3], quat_to_rotmat(q), atol=1e-6)  # float32 quats
    np.testing.assert_allclose(r_static[:, 3, 3], 1, atol=1e-6)


def test_slice_matches_direct_conditioning_of_4d_density():
    """p(x, t) = p(t) p(x | t): the sliced Gaussian times the temporal marginal reproduces the 4D density."""
    g = _scene4d()
    cov4 = gauss4d.covariance_4d(g)
    rng = np.random.default_rng(1)
    for t in (0.2, 0.55, 0.9):
        means, covs, opac = gauss4d.slice_at(g, t)
        for i in range(0, g.count, 5):
            mu4 = np.r_[g.means[i], g.t[i]]
            for _ in range(3):
                x = means[i] + rng.normal(0, 0.05, 3)
                joint = _density(np.r_[x, t], mu4, cov4[i])
                marg_t = _density(np.array([t]), mu4[3:], cov4[i, 3:, 3:])
                cond = _density(x.astype(np.float64), means[i].astype(np.float64), covs[i].astype(np.float64))
                assert cond * marg_t == pytest.approx(joint, rel=2e-3)
            # temporal opacity factor: exp(-1/2 (t - mu_t)^2 / S_tt)
            assert opac[i] == pytest.approx(
                g.opacities[i] * np.exp(-0.5 * (t - g.t[i]) ** 2 / cov4[i, 3, 3]), rel=1e-5
            )


def test_from_covariance_roundtrip_and_motion():
    rng = np.random.default_rng(2)
    n = 12
    a = rng.normal(size=(n, 3, 3)) * 0.1
    cov3 = a @ np.swapaxes(a, 1, 2) + 1e-3 * np.eye(3)
    vel = rng.normal(size=(n, 3))
    cov4 = gauss4d.moving_covariance(cov3, vel, 0.3)
    m4 = np.c_[rng.normal(size=(n, 3)), np.full(n, 0.5)]
    g = gauss4d.from_covariance_4d(m4, cov4, np.full(n, 0.8), np.zeros((n, 1, 3)))
    np.testing.assert_allclose(gauss4d.covariance_4d(g), cov4, atol=1e-5)
    means, covs, _ = gauss4d.slice_at(g, 0.9)
    np.testing.assert_allclose(means, m4[:, :3] + 0.4 * vel, atol=1e-4)  # moves with its velocity
    np.testing.assert_allclose(covs, cov3, atol=1e-5)  # and keeps its shape


def test_static_4d_scene_renders_identically_to_3d():
    g3 = samples.make_3d().subset(np.arange(0, 7700, 7))
    g4 = gauss4d.as_4d(g3)
    cam = cm.orbit_camera((0, 0.3, 0), 30, 25, 5.0, 48, 36)
    a = raster.render(g3, cam, (0.1, 0.1, 0.1))
    b = raster.render(g4, cam, (0.1, 0.1, 0.1), time=0.0)
    assert raster.psnr(a, b) > 60
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_dynamic_sample_moves_spins_appears(tmp_path):
    g = io.load(samples.SAMPLE_4D)
    assert g.is_4d and g.count > 5000
    mat = g.extras["material"]
    m0, _, o0 = gauss4d.slice_at(g, 0.0)
    m1, _, o1 = gauss4d.slice_at(g, 1.0)
    ball = mat == 1
    assert np.mean(m1[ball, 0] - m0[ball, 0]) == pytest.approx(3.2, abs=0.05)  # moved along +x
    cube, pyr = mat == 3, mat == 4
    assert o0[cube].mean() < 0.01 < 0.5 < o1[cube].mean() or o1[cube].mean() > 0.3  # appears
    assert o0[pyr].mean() > 0.5 and o1[pyr].mean() < 0.01  # disappears
    # the ring turns: its visible Gaussians at t=0 and t=0.25 have rotated by about 90 degrees about z
    ring = mat == 2
    v0 = (o0 > 0.3) & ring
    _, _, oq = gauss4d.slice_at(g, 0.25)
    mq, _, _ = gauss4d.slice_at(g, 0.25)
    vq = (oq > 0.3) & ring
    c = np.array([0, -0.4, -0.8])
    n0 = np.linalg.svd(m0[v0] - c)[2][2]  # the ring's normal (its smallest principal axis)
    nq = np.linalg.svd(mq[vq] - c)[2][2]
    assert (
        abs(n0[1]) > 0.95 and abs(n0 @ nq) < 0.3
    )  # starts along y, a quarter turn later it is ~perpendicular
    io.write_ply(tmp_path / "d.ply", g)
    h = io.load(tmp_path / "d.ply")
    a, b = gauss4d.covariance_4d(h), gauss4d.covariance_4d(g)
    rel = np.linalg.norm(a - b, axis=(1, 2)) / np.linalg.norm(b, axis=(1, 2))
    assert rel.max() < 1e-5  # float32 storage of quaternions and log-scales


def test_edits():
    g = samples.make_3d()
    e = edits.apply_edits(g, edits.EditConfig(min_opacity=0.0, subsample=0.5, seed=3))
    assert 0.45 < e.count / g.count < 0.55
    g.opacities[:100] = 0.01
    e = edits.apply_edits(g, edits.EditConfig(min_opacity=0.05))
    assert e.count == g.count - 100
    e = edits.apply_edits(g, edits.EditConfig(max_scale=0.01))
    assert e.scales.max() <= 0.01
    e = edits.apply_edits(g, edits.EditConfig(crop_min=(-1, -1, -1), crop_max=(0, 2, 1)))
    assert np.all(e.means[:, 0] <= 0) and e.count > 0
    h = g.with_sh_degree(3)
    assert edits.apply_edits(h, edits.EditConfig(sh_degree=1)).sh.shape[1] == 4
    with pytest.raises(UserError, match="subsample"):
        edits.EditConfig(subsample=0)
    with pytest.raises(UserError, match="crop box"):
        edits.EditConfig(crop_min=(0, 0, 0), crop_max=(-1, 1, 1))


def test_color_by_attribute_and_blocks():
    g = samples.make_3d()
    c, legend = edits.color_by(g, "material")
    assert legend.kind == "categorical" and len(legend.entries) == 4
    for label, rgb in legend.entries:
        sel = g.extras["material"] == int(label)
        np.testing.assert_allclose(c.base_colors()[sel], np.broadcast_to(rgb, (sel.sum(), 3)), atol=1e-5)
    c, legend = edits.color_by(g, "opacity")
    assert legend.kind == "continuous" and legend.lo <= legend.hi
    with pytest.raises(UserError, match="unknown attribute"):
        edits.color_by(g, "nope")
    both = concat([g, samples.make_3d(seed=5)])
    assert both.count == 2 * g.count and set(np.unique(both.extras["block"])) == {0, 1}
