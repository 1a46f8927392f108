"""Qt-free picture of a test sample: input | truth | prediction | error, one shared colour bar (RGBA uint8).

Truth, prediction and error share one colour scale (so the error's size reads against the solution's); the
input is drawn in grey on its own scale (a two-valued coefficient or the last given vorticity).
"""

from __future__ import annotations

import numpy as np

#: viridis sampled at 9 points (matplotlib's table), interpolated to 256 entries
_VIRIDIS_ANCHORS = np.array(
    [
        [0.267, 0.005, 0.329],
        [0.278, 0.175, 0.483],
        [0.231, 0.322, 0.546],
        [0.173, 0.449, 0.558],
        [0.128, 0.567, 0.551],
        [0.153, 0.681, 0.507],
        [0.360, 0.785, 0.388],
        [0.678, 0.864, 0.190],
        [0.993, 0.906, 0.144],
    ]
)
VIRIDIS = np.stack(
    [
        np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_VIRIDIS_ANCHORS)), _VIRIDIS_ANCHORS[:, i])
        for i in range(3)
    ],
    axis=1,
)
GREY = np.repeat(np.linspace(0.0, 1.0, 256)[:, None], 3, axis=1)
TITLES = ("input", "truth", "prediction", "error")


def shared_limits(fields: dict) -> tuple[float, float]:
    """One (lo, hi) covering truth, prediction and error."""
    arrs = [fields[k] for k in ("truth", "prediction", "error") if fields.get(k) is not None]
    lo = min(float(a.min()) for a in arrs)
    hi = max(float(a.max()) for a in arrs)
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def colorize(a: np.ndarray, lo: float, hi: float, lut: np.ndarray = VIRIDIS) -> np.ndarray:
    """(h, w) values -> (h, w, 3) uint8 through ``lut`` on [lo, hi] (clipped)."""
    idx = np.clip(((a - lo) / (hi - lo) * 255).round(), 0, 255).astype(int)
    return (lut[idx] * 255).round().astype(np.uint8)


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = np.minimum((np.arange(h) * img.shape[0] / h).astype(int), img.shape[0] - 1)
    xs = np.minimum((np.arange(w) * img.shape[1] / w).astype(int), img.shape[1] - 1)
    return img[ys][:, xs]


def compose_grid(
    rows: list[list[np.ndarray | None]],
    size: tuple[int, int],
    limits: tuple[float, float],
    grey_cols: tuple[int, ...] = (),
    background=(16, 20, 24),
) -> np.ndarray:
    """Square tiles in rows (row 0 of each field at the top) and one colour bar at the right for ``limits``.

    Columns in ``grey_cols`` are drawn in grey on each tile's own range (inputs); ``None`` tiles stay
    background. Returns (height, width, 4) uint8."""
    w, h = int(size[0]), int(size[1])
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = background
    out[..., 3] = 255
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    bar_w = max(4, w // 40)
    gap = max(1, w // 200)
    tile = max(1, min((h - (n_rows - 1) * gap) // n_rows, (w - bar_w - (n_cols + 1) * gap) // n_cols))
    top = max(0, (h - n_rows * tile - (n_rows - 1) * gap) // 2)
    lo, hi = limits
    for r, row in enumerate(rows):
        y0 = top + r * (tile + gap)
        for i, a in enumerate(row):
            if a is None:
                continue
            if i in grey_cols:
                amin, amax = float(a.min()), float(a.max())
                rgb = colorize(a, amin, amax if amax > amin else amin + 1, GREY)
            else:
                rgb = colorize(a, lo, hi)
            x0 = gap + i * (tile + gap)
            out[y0 : y0 + tile, x0 : x0 + tile, :3] = _resize_nearest(rgb, tile, tile)[: h - y0, : w - x0]
    x0 = gap + n_cols * (tile + gap)
    span = min(h - top, n_rows * tile + (n_rows - 1) * gap)
    ramp = colorize(np.linspace(hi, lo, span)[:, None].repeat(bar_w, 1), lo, hi)
    out[top : top + span, x0 : x0 + bar_w, :3] = ramp[:, : max(0, min(bar_w, w - x0))]
    return out


def compose(fields: dict, size: tuple[int, int], background=(16, 20, 24)) -> np.ndarray:
    """input | truth | prediction | error in a row, truth/prediction/error on one shared scale."""
    row = [fields["input"]] + [fields.get(k) for k in TITLES[1:]]
    return compose_grid([row], size, shared_limits(fields), grey_cols=(0,), background=background)


ROLLOUT_TITLES = ("solver", "operator", "difference")


def compose_rollout(fields: dict, size: tuple[int, int], limits: tuple[float, float]) -> np.ndarray:
    """solver | operator | difference on one colour scale (the rollout's, fixed over its frames)."""
    return compose_grid([[fields[k] for k in ROLLOUT_TITLES]], size, limits)


def compose_zeroshot(coarse: dict, fine: dict, size: tuple[int, int]) -> np.ndarray:
    """Two rows (n, then the fine grid) of input | truth | prediction | error on one shared scale."""
    lo1, hi1 = shared_limits(coarse)
    lo2, hi2 = shared_limits(fine)
    rows = [[f[k] for k in TITLES] for f in (coarse, fine)]
    return compose_grid(rows, size, (min(lo1, lo2), max(hi1, hi2)), grey_cols=(0,))
