"""Reference tile-based Gaussian rasterizer in torch (CPU or GPU), with the exact 3DGS/gsplat conventions.

* EWA projection: S2D = J W S W^T J^T + 0.3 I, with J the perspective Jacobian at the (frustum-clamped,
  as in gsplat) camera-space mean; u = fx x/z + cx, v = fy y/z + cy; Gaussians with z <= 0.01 are culled.
* Screen extent radius = ceil(3 sqrt(lambda_max)) (lambda_max with the 3DGS 0.1 guard); a Gaussian is
  evaluated by every pixel of the 16x16 tiles its square [u +- r] x [v +- r] touches (gsplat tiling).
* Pixel (i, j) is centred at (i + 0.5, j + 0.5). Per pixel, front-to-back in view-depth order:
  alpha = min(0.99, o exp(-1/2 d^T S2D^-1 d)); alpha < 1/255 is skipped; a Gaussian that would take the
  transmittance T below 1e-4 ends the pixel and is not blended (3DGS ``renderCUDA``);
  C = sum c_i alpha_i T_i + T_final * background. Colours come from the SH at the view direction
  (camera centre -> mean), + 0.5, clamped at 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from backends.common import Progress, UserError, drain
from backends.splat.camera import Camera
from backends.splat.gaussians import Gaussians
from backends.splat.sh import eval_sh_colors

TILE = 16
NEAR = 0.01


@dataclass
class Projected:
    means2d: torch.Tensor  # (M, 2)
    conics: torch.Tensor  # (M, 3) a, b, c of the inverse 2D covariance
    depths: torch.Tensor  # (M,)
    radii: torch.Tensor  # (M,) int
    ids: torch.Tensor  # (M,) index into the input Gaussians


def project(means: torch.Tensor, covs: torch.Tensor, cam: Camera) -> Projected:
    dev, dt = means.device, means.dtype
    vm = torch.as_tensor(cam.viewmat, dtype=dt, device=dev)
    r, t = vm[:3, :3], vm[:3, 3]
    pc = means @ r.T + t
    z = pc[:, 2]
    keep = z > NEAR
    ids = torch.nonzero(keep).squeeze(1)
    pc, z, cov = pc[keep], z[keep], covs[keep]
    x, y = pc[:, 0], pc[:, 1]
    tan_fx, tan_fy = 0.5 * cam.width / cam.fx, 0.5 * cam.height / cam.fy
    lim_xp, lim_xn = (cam.width - cam.cx) / cam.fx + 0.3 * tan_fx, cam.cx / cam.fx + 0.3 * tan_fx
    lim_yp, lim_yn = (cam.height - cam.cy) / cam.fy + 0.3 * tan_fy, cam.cy / cam.fy + 0.3 * tan_fy
    tx = z * torch.clamp(x / z, -lim_xn, lim_xp)
    ty = z * torch.clamp(y / z, -lim_yn, lim_yp)
    m = len(z)
    jac = torch.zeros((m, 2, 3), dtype=dt, device=dev)
    jac[:, 0, 0] = cam.fx / z
    jac[:, 0, 2] = -cam.fx * tx / (z * z)
    jac[:, 1, 1] = cam.fy / z
    jac[:, 1, 2] = -cam.fy * ty / (z * z)
    tm = jac @ r  # (m, 2, 3)
    c2 = tm @ cov @ tm.transpose(1, 2)
    a = c2[:, 0, 0] + 0.3
    b = c2[:, 0, 1]
    c = c2[:, 1, 1] + 0.3
    det = a * c - b * b
    ok = det > 0
    mid = 0.5 * (a + c)
    lam = mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.1))
    radii = torch.ceil(3.0 * torch.sqrt(lam))
    u = cam.fx * x / z + cam.cx
    v = cam.fy * y / z + cam.cy
    ok &= (radii > 0) & (u + radii > 0) & (u - radii < cam.width) & (v + radii > 0) & (v - radii < cam.height)
    inv = 1.0 / torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([c * inv, -b * inv, a * inv], 1)
    return Projected(torch.stack([u, v], 1)[ok], conics[ok], z[ok], radii[ok].to(torch.int64), ids[ok])


def _bin(p: Projected, cam: Camera):
    """(tile id, Gaussian) pairs sorted by tile, then by depth; returns (gauss order, tile starts, counts)."""
    tx_n, ty_n = (cam.width + TILE - 1) // TILE, (cam.height + TILE - 1) // TILE
    r = p.radii.to(p.means2d.dtype)
    x0 = torch.clamp(torch.floor((p.means2d[:, 0] - r) / TILE), 0, tx_n).to(torch.int64)
    x1 = torch.clamp(torch.ceil((p.means2d[:, 0] + r) / TILE), 0, tx_n).to(torch.int64)
    y0 = torch.clamp(torch.floor((p.means2d[:, 1] - r) / TILE), 0, ty_n).to(torch.int64)
    y1 = torch.clamp(torch.ceil((p.means2d[:, 1] + r) / TILE), 0, ty_n).to(torch.int64)
    w, h = (x1 - x0), (y1 - y0)
    n_t = (w * h).clamp(min=0)
    order = torch.argsort(p.depths, stable=True)  # front to back
    n_t, x0, y0, w = n_t[order], x0[order], y0[order], w[order]
    total = int(n_t.sum())
    g = torch.repeat_interleave(order, n_t)
    first = torch.cumsum(n_t, 0) - n_t
    local = torch.arange(total, device=g.device) - torch.repeat_interleave(first, n_t)
    wr = torch.repeat_interleave(w, n_t)
    tile = (torch.repeat_interleave(y0, n_t) + local // wr.clamp(min=1)) * tx_n + (
        torch.repeat_interleave(x0, n_t) + local % wr.clamp(min=1)
    )
    tile_sorted, perm = torch.sort(tile, stable=True)
    g = g[perm]
    counts = torch.bincount(tile_sorted, minlength=tx_n * ty_n)
    starts = torch.cumsum(counts, 0) - counts
    return g, starts, counts, tx_n, ty_n


def rasterize_gen(
    means,
    covs,
    opacities,
    colors,
    cam: Camera,
    background=(0.0, 0.0, 0.0),
    device: str | torch.device = "cpu",
    chunk: int = 256,
) -> Iterator:
    """Yield Progress per row of tiles; return (image (H, W, 3) float32, alpha (H, W) float32)."""
    dev = torch.device(device)
    dt = torch.float32
    means_t = torch.as_tensor(np.asarray(means, np.float32), device=dev)
    covs_t = torch.as_tensor(np.asarray(covs, np.float32), device=dev)
    opac_t = torch.as_tensor(np.asarray(opacities, np.float32), device=dev)
    col_t = torch.as_tensor(np.asarray(colors, np.float32), device=dev)
    bg = torch.as_tensor(np.asarray(background, np.float32), device=dev)
    H, W = cam.height, cam.width
    img = torch.empty((H, W, 3), dtype=dt, device=dev)
    alpha_img = torch.empty((H, W), dtype=dt, device=dev)
    p = project(means_t, covs_t, cam)
    g_sorted, starts, counts, tx_n, ty_n = _bin(p, cam)
    starts_l, counts_l = starts.tolist(), counts.tolist()
    py, px = torch.meshgrid(
        torch.arange(TILE, device=dev, dtype=dt), torch.arange(TILE, device=dev, dtype=dt), indexing="ij"
    )
    px, py = px.reshape(-1) + 0.5, py.reshape(-1) + 0.5
    mean2d, conic = p.means2d, p.conics
    op_p, col_p = opac_t[p.ids], col_t[p.ids]
    for ty in range(ty_n):
        for tx in range(tx_n):
            tid = ty * tx_n + tx
            x0, y0 = tx * TILE, ty * TILE
            w, h = min(TILE, W - x0), min(TILE, H - y0)
            n = counts_l[tid]
            T = torch.ones(TILE * TILE, dtype=dt, device=dev)
            C = torch.zeros((TILE * TILE, 3), dtype=dt, device=dev)
            if n:
                done = torch.zeros(TILE * TILE, dtype=torch.bool, device=dev)
                s0 = starts_l[tid]
                for k0 in range(0, n, chunk):
                    idx = g_sorted[s0 + k0 : s0 + min(n, k0 + chunk)]
                    dx = mean2d[idx, 0:1] - (px + x0)[None]
                    dy = mean2d[idx, 1:2] - (py + y0)[None]
                    cn = conic[idx]
                    power = -0.5 * (cn[:, 0:1] * dx * dx + cn[:, 2:3] * dy * dy) - cn[:, 1:2] * dx * dy
                    # clamp keeps exp out of the (slow) denormal range; exp(-30) is far below the 1/255 cut anyway
                    a = torch.clamp(op_p[idx, None] * torch.exp(torch.clamp(power, min=-30.0)), max=0.99)
                    a = torch.where((power > 0) | (a < 1.0 / 255.0), torch.zeros_like(a), a)
                    a = torch.where(done[None], torch.zeros_like(a), a)
                    tcum = T[None] * torch.cumprod(1 - a, 0)  # T after each Gaussian, if all were blended
                    inc = tcum >= 1e-4
                    tbefore = torch.cat([T[None], tcum[:-1]], 0)
                    wgt = torch.where(inc, a * tbefore, torch.zeros_like(a))
                    C = C + wgt.T @ col_p[idx]
                    T = T * torch.prod(torch.where(inc, 1 - a, torch.ones_like(a)), 0)
                    done = done | (~inc).any(0)
                    if bool(done.all()):
                        break
            out = C + T[:, None] * bg[None]
            img[y0 : y0 + h, x0 : x0 + w] = out.reshape(TILE, TILE, 3)[:h, :w]
            alpha_img[y0 : y0 + h, x0 : x0 + w] = (1 - T).reshape(TILE, TILE)[:h, :w]
        yield Progress((ty + 1) / ty_n, f"reference render {W}x{H}: tile row {ty + 1}/{ty_n}")
    return img.cpu().numpy(), alpha_img.cpu().numpy()


def prepare(g: Gaussians, cam: Camera, time: float | None = None, sh_degree: int | None = None):
    """Means, covariances, opacities and view-dependent colours of the scene (sliced at ``time`` if 4D)."""
    from backends.splat.gauss4d import slice_at

    if g.is_4d:
        means, covs, opac = slice_at(g, 0.0 if time is None else time)
    else:
        means, covs, opac = g.means, g.covariances(), g.opacities
    colors = eval_sh_colors(g.sh, means, cam.position, sh_degree)
    return means, covs, opac, colors


def render_gen(
    g: Gaussians,
    cam: Camera,
    background=(0.0, 0.0, 0.0),
    time: float | None = None,
    sh_degree: int | None = None,
    device: str | torch.device = "cpu",
) -> Iterator:
    """Yield Progress; return the RGB float image (H, W, 3) in [0, 1]."""
    if g.count == 0:
        raise UserError("nothing to render: the scene is empty")
    means, covs, opac, colors = prepare(g, cam, time, sh_degree)
    img, _ = yield from rasterize_gen(means, covs, opac, colors, cam, background, device)
    return img


def render(
    g: Gaussians,
    cam: Camera,
    background=(0.0, 0.0, 0.0),
    time: float | None = None,
    sh_degree: int | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    return drain(render_gen(g, cam, background, time, sh_degree, device))


def to_rgba8(img: np.ndarray) -> np.ndarray:
    rgb = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.max() > 1.5 or b.max() > 1.5:
        a, b = a / 255.0, b / 255.0
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
