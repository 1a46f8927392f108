"""The PDE figure drawn from the model alone, at any size: the colour-mapped field with title, colour bar,
probe, line and arrows (PNG export, snapshot, video frames). Pure numpy + Pillow, so the same model state
always gives the same pixels (a session's sidecar reproduces its export exactly)."""

from __future__ import annotations

import numpy as np

from backends.common import UserError

from .model import PDEModel

#: ColorBrewer RdBu reversed (blue negative, red positive), the usual diverging map for vorticity
_RDBU_R = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d"]
_RDBU_R += ["#b2182b", "#67001f"]
#: 9 samples of matplotlib's perceptually uniform maps (CC0), linearly interpolated
_SAMPLED = {
    "magma": [
        "#000004",
        "#180f3d",
        "#440f76",
        "#721f81",
        "#9e2f7f",
        "#cd4071",
        "#f1605d",
        "#fd9668",
        "#fcfdbf",
    ],
    "inferno": [
        "#000004",
        "#1b0c41",
        "#4a0c6b",
        "#781c6d",
        "#a52c60",
        "#cf4446",
        "#ed6925",
        "#fb9b06",
        "#fcffa4",
    ],
}


def get_cmap(name: str):
    """A vispy Colormap by name (RdBu_r and magma/inferno built here; the rest from vispy)."""
    from vispy.color import Colormap, get_colormap

    if name == "RdBu_r":
        return Colormap(_RDBU_R)
    if name in _SAMPLED:
        return Colormap(_SAMPLED[name])
    return get_colormap(name)


def colormap_rgba(field: np.ndarray, cmap: str, clim: tuple[float, float]) -> np.ndarray:
    """Numpy colour mapping with the vispy colormap, RGBA uint8."""
    lo, hi = clim
    x = np.clip((np.nan_to_num(field.astype(np.float64)) - lo) / ((hi - lo) or 1.0), 0, 1)
    rgba = get_cmap(cmap).map(x.ravel()).reshape(*x.shape, 4)
    return (rgba * 255 + 0.5).astype(np.uint8)


def quiver_segments(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(2M, 2) segment end points of one arrow per velocity sample, in unit coordinates."""
    m = u.shape[0]
    c = (np.arange(m) + 0.5) / m
    Y, X = np.meshgrid(c, c, indexing="ij")
    speed = np.sqrt(u**2 + v**2)
    scale = 0.8 / m / (float(speed.max()) or 1.0)
    p0 = np.stack([X.ravel(), Y.ravel()], 1)
    p1 = p0 + scale * np.stack([u.ravel(), v.ravel()], 1)
    seg = np.empty((2 * p0.shape[0], 2), np.float32)
    seg[0::2], seg[1::2] = p0, p1
    return seg


def figure_font(size: int):
    """DejaVu Sans where installed (it has ω, ψ, ∂), else Pillow's default font."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def render_figure(
    model: PDEModel, size: tuple[int, int], frame: dict | None = None, clim: tuple[float, float] | None = None
) -> np.ndarray:
    """Title, colour-mapped field (+ arrows, line, probe), labelled colour bar and the stale marker, RGBA
    uint8 of ``size`` = (width, height). ``frame`` (default: the current one) lets videos draw any recorded
    frame without changing the model; ``clim`` fixes the colour limits (a video's, over all its frames)."""
    from PIL import Image, ImageDraw

    w, h = int(size[0]), int(size[1])
    out = Image.new("RGBA", (w, h), (255, 255, 255, 255))
    f, label = model.display(frame)
    draw = ImageDraw.Draw(out)
    fs = max(8, min(w, h) // 40)
    font = figure_font(fs)
    if f is None:
        draw.text((fs, fs), model.stale or model.title(frame), fill="black", font=font)
        return np.asarray(out)
    cmap, auto = model.cmap_and_clim(f)
    clim = clim or auto
    title_h, bar_h = int(2.2 * fs) * (2 if model.stale else 1), int(5.2 * fs)
    side = max(1, min(w - 2 * fs, h - title_h - bar_h))
    x0, y0 = (w - side) // 2, title_h
    img = Image.fromarray(colormap_rgba(f[::-1], cmap, clim))
    resample = Image.Resampling.NEAREST if side >= 2 * f.shape[0] else Image.Resampling.BILINEAR
    out.paste(img.resize((side, side), resample), (x0, y0))
    draw.text((w // 2, fs // 2), model.title(frame), fill="black", font=font, anchor="ma")
    if model.stale:
        draw.text(
            (w // 2, fs // 2 + int(1.2 * fs)), f"stale: {model.stale}", fill="#c00000", font=font, anchor="ma"
        )
    fr = frame if frame is not None else model.current
    vel = fr.get("velocity") if (fr is not None and model.params.model != "darcy") else None
    if model.params.quiver and vel is not None:
        seg = quiver_segments(*vel)
        pts = np.column_stack([x0 + seg[:, 0] * side, y0 + (1 - seg[:, 1]) * side])
        for a, b in zip(pts[0::2], pts[1::2]):
            draw.line([tuple(a), tuple(b)], fill="black", width=max(1, side // 500))
            draw.ellipse([b[0] - 1, b[1] - 1, b[0] + 1, b[1] + 1], fill="black")
    if model.line is not None and model.params.model != "darcy":
        ends = [(x0 + lx * side, y0 + (1 - ly) * side) for lx, ly in model.line]
        draw.line(ends, fill="black", width=max(1, side // 300))
    px, py = x0 + model.probe[0] * side, y0 + (1 - model.probe[1]) * side
    r = max(3, side // 80)
    draw.line([(px - r, py - r), (px + r, py + r)], fill="yellow", width=3)
    draw.line([(px - r, py + r), (px + r, py - r)], fill="yellow", width=3)
    bx0, bx1 = x0, x0 + side
    by0 = y0 + side + fs // 2
    by1 = by0 + int(1.2 * fs)
    ramp = colormap_rgba(np.linspace(clim[0], clim[1], max(bx1 - bx0, 2))[None, :], cmap, clim)
    out.paste(Image.fromarray(np.repeat(ramp, by1 - by0, 0)), (bx0, by0))
    draw.rectangle([bx0, by0, bx1 - 1, by1], outline="black")
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        xx = bx0 + frac * (bx1 - bx0 - 1)
        draw.line([(xx, by1), (xx, by1 + fs // 3)], fill="black")
        text = f"{clim[0] + frac * (clim[1] - clim[0]):.3g}"
        draw.text((xx, by1 + fs // 3), text, fill="black", font=font, anchor="ma")
    draw.text(((bx0 + bx1) // 2, by1 + int(1.6 * fs)), label, fill="black", font=font, anchor="ma")
    return np.asarray(out)


def render_field(model: PDEModel, size: tuple[int, int]) -> np.ndarray:
    """The bare colour-mapped field (no colour bar, no title), resampled to ``size``, RGBA uint8."""
    f, _ = model.display()
    if f is None:
        raise UserError("nothing to export yet: run or step the simulation first")
    cmap, clim = model.cmap_and_clim(f)
    img = colormap_rgba(f[::-1], cmap, clim)  # row 0 is y = 0: flip so y points up in the PNG
    w, h = int(size[0]), int(size[1])
    ys = (np.arange(h) * img.shape[0] / h).astype(int)
    xs = (np.arange(w) * img.shape[1] / w).astype(int)
    return img[ys][:, xs]
