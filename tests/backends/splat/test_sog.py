"""SOG: decoding checked against the format's quantisation, real v1/v2 scenes, bundles, streamed scenes, and
hostile files that must end in one clear message."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from backends.common import UserError, drain
from backends.splat import sog
from backends.splat.gaussians import SH_C0, Gaussians
from backends.splat.io import load
from tests.conftest import shared_data


def _scene(n: int = 3000, seed: int = 0, offset=(0.0, 0.0, 0.0)) -> Gaussians:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    return Gaussians(
        means=rng.normal(scale=[2.0, 0.5, 3.0], size=(n, 3)) + np.asarray(offset),
        scales=np.exp(rng.uniform(-6, -1, size=(n, 3))),
        quats=q / np.linalg.norm(q, axis=1, keepdims=True),
        opacities=rng.uniform(0.05, 1.0, n),
        sh=rng.normal(size=(n, 1, 3)),
    )


def _unlog(n):
    return np.sign(n) * np.expm1(np.abs(n))


def _check_against_quantisation(orig: Gaussians, back: Gaussians, meta: dict) -> None:
    mins, maxs = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])
    step = (maxs - mins) / 65535  # one 16-bit step in the log domain
    logm = np.sign(orig.means) * np.log1p(np.abs(orig.means))
    # |d unlog / dn| = exp(|n|): one step in the log domain is at most this far in the world
    bound = np.exp(np.abs(logm) + step) * step
    assert np.all(np.abs(back.means - orig.means) <= bound + 1e-6)
    # rotations: 8 bits for components in [-1/sqrt2, 1/sqrt2]: half a step each -> angle < 0.01 rad
    dots = np.abs(np.sum(back.quats * orig.quats, axis=1))
    assert np.all(2 * np.arccos(np.clip(dots, 0, 1)) < 0.02)
    assert np.all(np.abs(back.opacities - orig.opacities) <= 0.5 / 255 + 1e-6)
    # codebooks: every value decodes to its nearest codebook entry
    for key, value, decoded in [
        ("scales", np.log(orig.scales), np.log(back.scales)),
        ("sh0", orig.sh[:, 0], back.sh[:, 0]),
    ]:
        book = np.array(meta[key]["codebook"])
        nearest = book[np.abs(value[..., None] - book).argmin(-1)]
        assert np.allclose(decoded, nearest, atol=1e-5)


@pytest.mark.parametrize("bundled", [True, False])
def test_write_then_read_is_within_one_quantisation_step(tmp_path, bundled):
    g = _scene()
    path = tmp_path / ("scene.sog" if bundled else "meta.json")
    sog.write_sog(path, g)
    back = load(path if bundled else tmp_path)
    meta, _ = sog.encode(g)
    assert back.count == g.count and back.sh_degree == 0
    _check_against_quantisation(g, back, meta)


def _decoded_range_check(g: Gaussians, meta: dict) -> None:
    """Decoded positions fill exactly the range meta.json declares (the quantiser maps its ends to 0 and
    65535), to within one quantisation step."""
    mins, maxs = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])
    step = (maxs - mins) / 65535
    lo, hi = _unlog(mins), _unlog(maxs)
    tol = np.exp(np.maximum(np.abs(mins), np.abs(maxs))) * step
    assert np.all(g.means >= lo - tol) and np.all(g.means <= hi + tol)
    assert np.allclose(g.means.min(0), lo, atol=tol) and np.allclose(g.means.max(0), hi, atol=tol)
    assert np.allclose(np.linalg.norm(g.quats, axis=1), 1, atol=1e-5)


@pytest.mark.data
def test_real_version1_scene():
    folder = shared_data("splat", "playcanvas_logo_sog")
    g = load(folder)
    meta = json.loads((folder / "meta.json").read_text())
    assert g.count == 307_128 and g.sh_degree == 0
    _decoded_range_check(g, meta)
    # v1 colours and opacity are lerps between the declared mins/maxs
    dc_lo, dc_hi = np.array(meta["sh0"]["mins"][:3]), np.array(meta["sh0"]["maxs"][:3])
    assert np.all(g.sh[:, 0] >= dc_lo - 1e-5) and np.all(g.sh[:, 0] <= dc_hi + 1e-5)
    op = np.log(g.opacities / (1 - g.opacities))
    assert op.min() >= meta["sh0"]["mins"][3] - 1e-3 and op.max() <= meta["sh0"]["maxs"][3] + 1e-3
    # the logo is an orange square: its mean base colour is warm (red > blue)
    rgb = np.clip(0.5 + SH_C0 * g.sh[:, 0], 0, 1).mean(0)
    assert rgb[0] > rgb[2] + 0.2


@pytest.mark.data
def test_real_version2_level_with_sh_palette_and_its_bundle(tmp_path):
    folder = shared_data("splat", "playbot_lod6_sog")
    g = load(folder / "meta.json")
    meta = json.loads((folder / "meta.json").read_text())
    assert g.count == 1873 and g.sh_degree == 2
    _decoded_range_check(g, meta)
    book = np.array(meta["shN"]["codebook"])
    assert np.all(np.isin(g.sh[:, 1:], book.astype(np.float32)))
    bundle = tmp_path / "playbot.sog"
    with zipfile.ZipFile(bundle, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    g2 = load(bundle)
    assert np.array_equal(g2.means, g.means) and np.array_equal(g2.sh, g.sh)


def _streamed(tmp_path, budget_counts=(2000, 500)) -> tuple:
    """Two leaves (left at x = -10, right at x = +10), two levels each: 0 fine, 1 coarse."""
    leaves = []
    filenames = []
    for level, n in enumerate(budget_counts):
        parts = [_scene(n, seed=level * 10 + k, offset=(20.0 * k - 10.0, 0, 0)) for k in range(2)]
        from backends.splat.gaussians import concat

        chunk = concat(parts)
        folder = tmp_path / f"{level}_0"
        folder.mkdir()
        sog.write_sog(folder / "meta.json", chunk)
        filenames.append(f"{level}_0/meta.json")
    for k in range(2):
        lods = {
            str(level): {"file": level, "offset": k * n, "count": n} for level, n in enumerate(budget_counts)
        }
        x0 = 20.0 * k - 10.0
        leaves.append({"bound": {"min": [x0 - 8, -3, -10], "max": [x0 + 8, 3, 10]}, "lods": lods})
    meta = {
        "version": 1,
        "count": 2 * sum(budget_counts),
        "counts": [2 * n for n in budget_counts],
        "lodLevels": 2,
        "filenames": filenames,
        "tree": {"bound": {"min": [-18, -3, -10], "max": [18, 3, 10]}, "children": leaves},
    }
    path = tmp_path / "lod-meta.json"
    path.write_text(json.dumps(meta))
    return path, meta


def test_streamed_scene_refines_where_the_camera_is_within_its_budget(tmp_path):
    path, _ = _streamed(tmp_path)
    scene = sog.read_lod_meta(path)
    assert scene.levels == 2 and len(scene.leaves) == 2
    # a budget for one fine leaf: the leaf near the camera gets it
    near_left = scene.select(np.array([-10.0, 0, 12]), budget=2500)
    assert near_left == {0: 0, 1: 1}
    near_right = scene.select(np.array([10.0, 0, 12]), budget=2500)
    assert near_right == {0: 1, 1: 0}
    # a tiny budget keeps the coarsest level everywhere; a large one refines everything
    assert scene.select(np.zeros(3), budget=10) == {0: 1, 1: 1}
    assert scene.select(np.zeros(3), budget=10**6) == {0: 0, 1: 0}
    # chunks load lazily; assemble never waits: before the fine chunk is there it shows the coarse one
    scene.load_chunk(1)
    assert scene.assemble(near_left).count == 1000
    scene.load_chunk(0)
    g = scene.assemble(near_left)
    assert g.count == 2500
    assert (g.means[:, 0] < 0).sum() > 1900  # the fine leaf is the left one


def test_streamed_scene_loads_as_one_scene(tmp_path):
    path, meta = _streamed(tmp_path)
    g = load(path)
    assert g.count == meta["counts"][0]  # the default budget takes the finest level everywhere
    assert load(tmp_path).count == g.count  # the folder opens too


# -- hostile files -----------------------------------------------------------------------------------------
def _copy_playbot(tmp_path):
    src = shared_data("splat", "playbot_lod6_sog")
    dst = tmp_path / "s"
    shutil.copytree(src, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def _edit_meta(folder, fn):
    meta = json.loads((folder / "meta.json").read_text())
    fn(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.data
@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m: m.update(count=10**9), "count"),
        (lambda m: m.update(count=5000), "fewer than"),
        (lambda m: m.update(version=9), "unsupported SOG version 9"),
        (lambda m: m["means"].update(mins=[0, "a", 0]), "means"),
        (lambda m: m["means"].update(files=["../../etc/passwd", "means_u.webp"]), "outside its folder"),
        (lambda m: m["scales"].update(codebook=[1.0] * 10), "scales.codebook"),
        (lambda m: m["shN"].update(bands=7), "bands"),
        (lambda m: m["quats"].update(files=["missing.webp"]), "missing"),
        (lambda m: m["quats"].update(files=["meta.json"]), "not a readable image"),
    ],
)
def test_bad_meta_is_one_clear_line(tmp_path, edit, words):
    folder = _copy_playbot(tmp_path)
    _edit_meta(folder, edit)
    with pytest.raises(UserError, match=words):
        load(folder)


@pytest.mark.data
def test_invalid_rotation_mode_and_label_are_refused(tmp_path):
    from PIL import Image

    folder = _copy_playbot(tmp_path)
    q = np.array(Image.open(folder / "quats.webp").convert("RGBA"))
    q[0, 0, 3] = 7
    Image.fromarray(q).save(folder / "quats.webp", lossless=True, exact=True)
    with pytest.raises(UserError, match="invalid mode byte"):
        load(folder)
    folder = _copy_playbot(tmp_path / "b")
    lab = np.array(Image.open(folder / "shN_labels.webp").convert("RGBA"))
    lab[0, 0, :2] = 255
    Image.fromarray(lab).save(folder / "shN_labels.webp", lossless=True, exact=True)
    with pytest.raises(UserError, match="past the palette"):
        load(folder)


def test_bundle_bombs_and_garbage(tmp_path):
    g = _scene(200)
    bundle = tmp_path / "x.sog"
    sog.write_sog(bundle, g)
    # a member whose declared size is far beyond what the scene can need is refused before inflating
    bomb = tmp_path / "bomb.sog"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "means_l.webp":
                data = b"\0" * (64 * 2**20)
            dst.writestr(info.filename, data)
    with pytest.raises(UserError, match="more than its scene can need"):
        load(bomb)
    (tmp_path / "junk.sog").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(UserError, match="not a valid bundled SOG"):
        load(tmp_path / "junk.sog")
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nested too deeply|expected a JSON object"):
        load(deep)


def test_lod_meta_garbage(tmp_path):
    path, meta = _streamed(tmp_path)
    for edit, words in [
        (lambda m: m.update(version=2), "unsupported streamed SOG version"),
        (lambda m: m.update(lodLevels=0), "lodLevels"),
        (lambda m: m["tree"]["children"][0]["lods"]["0"].update(file=5), "invalid level-of-detail"),
        (lambda m: m.update(filenames=["../../x/meta.json", "1_0/meta.json"]), "leaves the scene folder"),
    ]:
        bad = json.loads(json.dumps(meta))
        edit(bad)
        path.write_text(json.dumps(bad))
        with pytest.raises(UserError, match=words):
            drain(sog.load_streamed_gen(path))
