"""CPU tile rasterizer for Gaussian splats, compiled with numba: the interactive viewer's display path where
GL runs on Mesa llvmpipe (whose per-primitive cost alone exceeds a frame budget at 100k splats).

Same conventions as the torch reference :mod:`backends.splat.raster` (EWA S2D = J W S W^T J^T + 0.3 I with
gsplat's frustum clamp; z <= 0.01 culled; pixel (i, j) centred at (i + 0.5, j + 0.5); per pixel, front to back
in view-depth order (stable: ties keep the row order), alpha = min(0.99, o exp(-1/2 d^T S2D^-1 d)), alpha <
1/255 skipped, a Gaussian that would take T below 1e-4 ends the pixel unblended; C + T background; colours
clamped at 0). The reference lets a Gaussian reach every pixel of the 16x16 tiles its 3-sigma square
[u +- ceil(3 sqrt(lambda_max))] touches (gsplat tiling); alpha >= 1/255 is only possible inside the ellipse
d^T S2D^-1 d <= 2 ln(255 o). A splat is binned into the tiles of that ellipse's bounding box clipped to the
reference's square (a small margin keeps rounding from cutting a pixel), and in each tile it is evaluated on
the full 16-pixel rows its box covers, with the reference's per-pixel tests, so the image equals the
reference's up to float32 rounding (measured: ~1e-7; a pixel or two per frame where a near-threshold alpha or
T falls the other way; depth ties can order differently because the depth is rounded differently).

Stages (``timings`` reports their wall times): view-depth sort keys + one numpy sort of uint64 keys (depth bits,
row index: a stable argsort), projection of every row (``prange``), binning (per-thread counts, prefix sums,
fill in depth order, so every tile list is already front to back), raster (``prange`` over tiles interleaved
across the threads; early exit of a tile once all its pixels have ended). Rows with a non-finite entry are
skipped, as are splats with opacity below 1/255. All kernels release the GIL.

``rows`` is the panel's (N, 13) float32 instance layout (:func:`panels.splat.visuals.pack`): mean(3), cov xx xy
xz yy yz zz (6), rgb(3), opacity(1).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from backends.splat.camera import Camera
from backends.splat.gaussians import Gaussians
from backends.splat.sh import eval_sh_colors

NEAR = 0.01  # as the reference and the GL shader
# the reference's tile grid (a Gaussian reaches every pixel of the 16x16 tiles its 3-sigma square touches),
# and our work tiles: evaluating whole tile rows, as the vectorized loop does, is then what the reference does
TILE = 16
NPIX = TILE * TILE
_OFF_R, _OFF_G, _OFF_B = np.uint64(NPIX), np.uint64(2 * NPIX), np.uint64(3 * NPIX)  # tile buffer sections
_OFF_X, _OFF_Y = np.uint64(4 * NPIX), np.uint64(5 * NPIX)
ROW = 13
# projected splat record (float32): u, v, conic a b c, opacity, r, g, b, pixel rect y0 y1 x0 x1 (inclusive)
P_U, P_V, P_CA, P_CB, P_CC, P_O, P_R, P_Y0, P_Y1, P_X0, P_X1 = 0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12
NPROJ = 16  # 64 bytes: one cache line
PREFETCH = 8  # tile-list entries ahead
# margin of the visited region (in units of the ellipse's squared Mahalanobis radius): never cuts a pixel the
# reference would blend; the exact per-pixel alpha test rejects the few extra ones
_MARGIN = 1e-3


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Prefetch the cache line of row ``idx`` of ``arr`` (LLVM ``llvm.prefetch``; a plain load would stall the
    in-order retirement exactly as the miss it tries to hide)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ind = [context.cast(builder, args[1], idxty, types.intp)] + [zero] * (aryty.ndim - 1)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, ind, wraparound=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, high locality, data cache
        return context.get_dummy_value()

    return sig, codegen


_LN2_HI = np.float32(0.693145751953125)  # Cody-Waite split of ln 2
_LN2_LO = np.float32(1.428606765330187e-06)


@numba.njit(inline="always", fastmath=True, cache=True)
def _exp(x):  # pragma: no cover - compiled
    """float32 exp for x <= 0 (clamped at -30 as the reference): 2^n e^f, |f| <= ln2/2, degree-6 Taylor;
    relative error < 4e-7. Inlined and branch-free so that the lane loop vectorizes (a libm call does not)."""
    x = max(x, np.float32(-30.0))
    nf = np.floor(x * np.float32(1.4426950408889634) + np.float32(0.5))
    n = np.int32(nf)  # int32 (not math.floor's int64): the lane loops vectorize 8 wide
    f = x - nf * _LN2_HI - nf * _LN2_LO
    p = np.float32(1.0 / 720.0)
    p = p * f + np.float32(1.0 / 120.0)
    p = p * f + np.float32(1.0 / 24.0)
    p = p * f + np.float32(1.0 / 6.0)
    p = p * f + np.float32(0.5)
    p = p * f + np.float32(1.0)
    p = p * f + np.float32(1.0)
    bits = np.int32((n + 127) << 23)  # 2^n, n in [-44, 0]
    return p * bits.view(np.float32)


@numba.njit(cache=True, nogil=True)
def _sortable_bits(z):  # pragma: no cover - compiled
    """float32 bits of z as a uint64 whose unsigned order is the float order (non-finite: +inf, sorted last)."""
    zc = z if math.isfinite(z) else np.inf
    zf = np.float32(zc)
    b = np.uint64(zf.view(np.uint32))
    if b & np.uint64(0x80000000):
        return b ^ np.uint64(0xFFFFFFFF)
    return b | np.uint64(0x80000000)


@numba.njit(parallel=True, cache=True, nogil=True)
def _depth_keys(rows, vm, keys):  # pragma: no cover - compiled
    """uint64 keys (float32 view-depth bits made order-preserving) << 32 | index: one sort = stable argsort."""
    n = rows.shape[0]
    for i in numba.prange(n):
        z = vm[2, 0] * rows[i, 0] + vm[2, 1] * rows[i, 1] + vm[2, 2] * rows[i, 2] + vm[2, 3]
        keys[i] = (_sortable_bits(z) << np.uint64(32)) | np.uint64(i)


@numba.njit(parallel=True, cache=True, nogil=True)
def _project(rows, vm, intr, width, height, proj, trect):  # pragma: no cover - compiled
    """Project every row (in memory order: sequential reads) into ``proj[i]`` and its tile rect
    ``trect[i]`` = tile x0 x1 y0 y1 (inclusive); culled rows get an empty rect (x0 > x1)."""
    fx, fy, cx, cy = intr[0], intr[1], intr[2], intr[3]
    tan_fx, tan_fy = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_fx, cx / fx + 0.3 * tan_fx
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_fy, cy / fy + 0.3 * tan_fy
    for i in numba.prange(rows.shape[0]):
        trect[i, 0] = 1
        trect[i, 1] = 0
        finite = True
        for k in range(ROW):
            finite &= math.isfinite(rows[i, k])
        if not finite:
            continue
        mx, my, mz = np.float64(rows[i, 0]), np.float64(rows[i, 1]), np.float64(rows[i, 2])
        x = vm[0, 0] * mx + vm[0, 1] * my + vm[0, 2] * mz + vm[0, 3]
        y = vm[1, 0] * mx + vm[1, 1] * my + vm[1, 2] * mz + vm[1, 3]
        z = vm[2, 0] * mx + vm[2, 1] * my + vm[2, 2] * mz + vm[2, 3]
        o = np.float64(rows[i, 12])
        if not (z > NEAR and o * 255.0 >= 1.0):  # below 1/255 opacity alpha never reaches the cut
            continue
        iz = 1.0 / z
        xz, yz = x * iz, y * iz
        j00, j02 = fx * iz, -fx * min(max(xz, -lim_xn), lim_xp) * iz  # J at the frustum-clamped mean
        j11, j12 = fy * iz, -fy * min(max(yz, -lim_yn), lim_yp) * iz
        # T = J W (2 x 3); S2D = T S T^T + 0.3 I
        t00 = j00 * vm[0, 0] + j02 * vm[2, 0]
        t01 = j00 * vm[0, 1] + j02 * vm[2, 1]
        t02 = j00 * vm[0, 2] + j02 * vm[2, 2]
        t10 = j11 * vm[1, 0] + j12 * vm[2, 0]
        t11 = j11 * vm[1, 1] + j12 * vm[2, 1]
        t12 = j11 * vm[1, 2] + j12 * vm[2, 2]
        sxx, sxy, sxz = np.float64(rows[i, 3]), np.float64(rows[i, 4]), np.float64(rows[i, 5])
        syy, syz, szz = np.float64(rows[i, 6]), np.float64(rows[i, 7]), np.float64(rows[i, 8])
        r0 = sxx * t10 + sxy * t11 + sxz * t12
        r1 = sxy * t10 + syy * t11 + syz * t12
        r2 = sxz * t10 + syz * t11 + szz * t12
        a = t00 * (sxx * t00 + sxy * t01 + sxz * t02)
        a += t01 * (sxy * t00 + syy * t01 + syz * t02) + t02 * (sxz * t00 + syz * t01 + szz * t02) + 0.3
        b = t00 * r0 + t01 * r1 + t02 * r2
        c = t10 * r0 + t11 * r1 + t12 * r2 + 0.3
        det = a * c - b * b
        if not det > 0.0:
            continue
        mid = 0.5 * (a + c)
        rad = math.ceil(3.0 * math.sqrt(mid + math.sqrt(max(mid * mid - det, 0.1))))
        u = fx * xz + cx
        v = fy * yz + cy
        if not (u + rad > 0 and u - rad < width and v + rad > 0 and v - rad < height):
            continue
        k2 = 2.0 * math.log(255.0 * o) * (1.0 + _MARGIN) + _MARGIN  # alpha >= 1/255 needs d^T S2D^-1 d <= k2
        hx = math.sqrt(k2 * a)  # the ellipse's bounding box half extents
        hy = math.sqrt(k2 * c)
        # pixel rect: the ellipse's box, the reference's 16-tile square, the image
        px0 = max(math.ceil(u - hx - 0.5), TILE * math.floor((u - rad) / TILE), 0.0)
        px1 = min(math.floor(u + hx - 0.5), TILE * math.ceil((u + rad) / TILE) - 1.0, width - 1.0)
        py0 = max(math.ceil(v - hy - 0.5), TILE * math.floor((v - rad) / TILE), 0.0)
        py1 = min(math.floor(v + hy - 0.5), TILE * math.ceil((v + rad) / TILE) - 1.0, height - 1.0)
        if px0 > px1 or py0 > py1:
            continue
        trect[i, 0] = np.int32(px0) // TILE
        trect[i, 1] = np.int32(px1) // TILE
        trect[i, 2] = np.int32(py0) // TILE
        trect[i, 3] = np.int32(py1) // TILE
        proj[i, P_U] = u
        proj[i, P_V] = v
        idet = 1.0 / det
        proj[i, P_CA] = c * idet
        proj[i, P_CB] = -b * idet
        proj[i, P_CC] = a * idet
        proj[i, P_O] = o
        proj[i, P_R] = max(rows[i, 9], 0.0)
        proj[i, P_R + 1] = max(rows[i, 10], 0.0)
        proj[i, P_R + 2] = max(rows[i, 11], 0.0)
        proj[i, P_Y0] = py0
        proj[i, P_Y1] = py1
        proj[i, P_X0] = px0
        proj[i, P_X1] = px1


@numba.njit(parallel=True, cache=True, nogil=True)
def _bin(trect, order, ntx, nty, nchunks):  # pragma: no cover - compiled
    """Per-tile lists of row indices, each front to back, and the tiles' starts. ``order`` is cut into
    ``nchunks`` consecutive parts counted and filled in parallel; a tile's entries from part c go after those
    of parts < c, so every list keeps the order of ``order``."""
    n, m, ntiles = trect.shape[0], order.shape[0], ntx * nty
    counts = np.zeros((nchunks, ntiles), np.int64)
    for c in numba.prange(nchunks):
        for j in range(c * m // nchunks, (c + 1) * m // nchunks):
            i = order[j]
            if i < 0 or i >= n or trect[i, 0] > trect[i, 1]:
                continue
            for ty in range(trect[i, 2], trect[i, 3] + 1):
                for tx in range(trect[i, 0], trect[i, 1] + 1):
                    counts[c, ty * ntx + tx] += 1
    starts = np.zeros(ntiles + 1, np.int64)
    for t in range(ntiles):
        acc = starts[t]
        for c in range(nchunks):  # counts -> this part's first slot in the tile's list
            k = counts[c, t]
            counts[c, t] = acc
            acc += k
        starts[t + 1] = acc
    lists = np.empty(starts[ntiles], np.int32)
    for c in numba.prange(nchunks):
        for j in range(c * m // nchunks, (c + 1) * m // nchunks):
            i = order[j]
            if i < 0 or i >= n or trect[i, 0] > trect[i, 1]:
                continue
            for ty in range(trect[i, 2], trect[i, 3] + 1):
                for tx in range(trect[i, 0], trect[i, 1] + 1):
                    t = ty * ntx + tx
                    lists[counts[c, t]] = i
                    counts[c, t] += 1
    return lists, starts


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _raster(proj, lists, starts, ntx, nty, width, height, bg, nworkers, out_f, out_u8, to_u8):
    # pragma: no cover - compiled
    """Composite every 16x16 tile front to back. A splat covers the pixel rows y0..y1 of its rect: one
    contiguous run of the tile buffer, evaluated branch-free in one loop that LLVM vectorizes 8 wide (per-row
    loops or exact row spans were 1.5-2.5x slower); lanes outside the ellipse fail the alpha test exactly as
    in the reference's tile. The buffer is one array (T, R, G, B, pixel x, pixel y at constant offsets), so
    the vectorized loop needs no run-time aliasing checks (six arrays cost ~10% more raster time)."""
    ntiles = ntx * nty
    for w in numba.prange(nworkers):
        buf = np.empty(6 * NPIX, np.float32)
        for t in range(w, ntiles, nworkers):  # interleaved: the heavy centre tiles spread over the threads
            ty, tx = t // ntx, t % ntx
            x0, y0 = tx * TILE, ty * TILE
            h = min(TILE, height - y0)
            buf[:NPIX] = 1.0  # transmittance; negated once the pixel is done
            buf[NPIX : 4 * NPIX] = 0.0  # colour
            if h < TILE or x0 + TILE > width:  # lanes past the image edge count as done from the start
                for yy in range(TILE):
                    for xx in range(TILE):
                        if yy >= h or x0 + xx >= width:
                            buf[yy * TILE + xx] = -1.0
            for yy in range(TILE):  # pixel centres
                for xx in range(TILE):
                    buf[4 * NPIX + yy * TILE + xx] = np.float32(x0 + xx) + np.float32(0.5)
                    buf[5 * NPIX + yy * TILE + xx] = np.float32(y0 + yy) + np.float32(0.5)
            s0 = starts[t]
            for k in range(s0, starts[t + 1]):
                if (k - s0) & 7 == 7:  # every 8 splats: stop the tile once all its pixels have ended (this
                    # vectorized count is cheaper than counting the ended lanes inside the lane loop)
                    ndone = np.float32(0.0)
                    for q in range(NPIX):
                        ndone += np.float32(buf[q] < np.float32(0.0))
                    if ndone == np.float32(NPIX):
                        break
                p = lists[k]
                if k + PREFETCH < starts[t + 1]:  # the records are scattered in memory
                    _prefetch(proj, lists[k + PREFETCH])
                i0 = (max(np.int64(proj[p, P_Y0]), y0) - y0) * TILE
                i1 = (min(np.int64(proj[p, P_Y1]), y0 + h - 1) - y0 + 1) * TILE
                u, v = proj[p, P_U], proj[p, P_V]
                ca, cb, cc = proj[p, P_CA], proj[p, P_CB], proj[p, P_CC]
                o = proj[p, P_O]
                cr, cg, cbl = proj[p, P_R], proj[p, P_R + 1], proj[p, P_R + 2]
                # unsigned indices: no negative-index wraparound, which blocks vectorizing
                first = np.uint64(i0)
                for j in range(i1 - i0):
                    i = first + np.uint64(j)
                    tcur = buf[i]
                    dx = u - buf[i + _OFF_X]
                    dy = v - buf[i + _OFF_Y]
                    power = np.float32(-0.5) * (ca * dx * dx + cc * dy * dy) - cb * dx * dy
                    alpha = min(np.float32(0.99), o * _exp(power))
                    ok = (tcur > np.float32(0.0)) & (power <= np.float32(0.0))
                    ok &= alpha >= np.float32(1.0 / 255.0)
                    tnext = tcur * (np.float32(1.0) - alpha)
                    sat = ok & (tnext < np.float32(1e-4))  # would end below 1e-4: not blended, pixel done
                    blend = ok & (tnext >= np.float32(1e-4))
                    wgt = np.float32(blend) * alpha * tcur
                    buf[i + _OFF_R] += cr * wgt
                    buf[i + _OFF_G] += cg * wgt
                    buf[i + _OFF_B] += cbl * wgt
                    buf[i] = tnext if blend else (-tcur if sat else tcur)
            for yy in range(h):
                for xx in range(min(TILE, width - x0)):
                    i = yy * TILE + xx
                    tf = abs(buf[i])
                    for ch in range(3):
                        c = buf[(ch + 1) * NPIX + i] + tf * bg[ch]
                        if to_u8:
                            c = min(max(c, np.float32(0.0)), np.float32(1.0))
                            out_u8[y0 + yy, x0 + xx, ch] = np.uint8(c * np.float32(255.0) + np.float32(0.5))
                        else:
                            out_f[y0 + yy, x0 + xx, ch] = c


_scratch = threading.local()


def _buffers(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread scratch (projection, tile rects, sort keys) kept between frames: fresh multi-megabyte arrays
    cost page faults on every frame."""
    buf = getattr(_scratch, "buf", None)
    if buf is None or len(buf[0]) < n:
        cap = max(n, 1024) + max(n, 1024) // 4
        buf = (np.empty((cap, NPROJ), np.float32), np.empty((cap, 4), np.int32), np.empty(cap, np.uint64))
        _scratch.buf = buf
    return buf[0][:n], buf[1][:n], buf[2][:n]


def _render(rows, cam: Camera, background, order, out, to_u8: bool, timings: dict | None):
    t0 = time.perf_counter()
    rows = np.ascontiguousarray(rows, np.float32).reshape(-1, ROW)
    w, h = int(cam.width), int(cam.height)
    vm = np.ascontiguousarray(cam.viewmat, np.float64)
    intr = np.array([cam.fx, cam.fy, cam.cx, cam.cy], np.float64)
    bg = np.asarray(background, np.float32).reshape(3)
    dtype = np.uint8 if to_u8 else np.float32
    if out is None:
        out = np.empty((h, w, 3), dtype)
    elif out.shape != (h, w, 3) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {(h, w, 3)} {np.dtype(dtype).name} array")
    proj, trect, keys = _buffers(len(rows))
    if order is None:
        _depth_keys(rows, vm, keys)
        keys.sort()
        np.bitwise_and(keys, np.uint64(0xFFFFFFFF), out=keys)
        order = keys.view(np.int64)
    else:
        order = np.ascontiguousarray(order, np.int64).reshape(-1)
    t1 = time.perf_counter()
    _project(rows, vm, intr, float(w), float(h), proj, trect)
    t2 = time.perf_counter()
    ntx, nty = (w + TILE - 1) // TILE, (h + TILE - 1) // TILE
    nthreads = numba.get_num_threads()
    lists, starts = _bin(trect, order, ntx, nty, nthreads)
    t3 = time.perf_counter()
    dummy_f = np.empty((1, 1, 3), np.float32)
    dummy_u8 = np.empty((1, 1, 3), np.uint8)
    o_f, o_u8 = (dummy_f, out) if to_u8 else (out, dummy_u8)
    _raster(proj, lists, starts, ntx, nty, w, h, bg, nthreads, o_f, o_u8, to_u8)
    t4 = time.perf_counter()
    if timings is not None:
        timings.update(
            sort_s=t1 - t0,
            project_s=t2 - t1,
            bin_s=t3 - t2,
            raster_s=t4 - t3,
            total_s=t4 - t0,
            tile_entries=int(starts[-1]),
        )
    return out


def render_rows(
    rows: np.ndarray,
    cam: Camera,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    order: np.ndarray | None = None,
    out: np.ndarray | None = None,
    *,
    floating: bool = False,
    timings: dict | None = None,
) -> np.ndarray:
    """The image of the (N, 13) splat rows seen by ``cam`` over ``background``: (H, W, 3) uint8
    (clip(C, 0, 1) * 255 + 0.5 truncated, as :func:`backends.splat.raster.to_rgba8`), or with ``floating`` the
    unclipped float32 image, comparable to ``raster.render``.

    ``order``: optional indices into ``rows``, front to back (nearest first); only those splats are drawn.
    Without it the splats are sorted by view depth here (stable, as the reference). ``out``: an (H, W, 3) array
    of the output type to fill and return (no allocation for the image). ``timings``: a dict that receives the
    seconds of each stage. Runs with ``numba.get_num_threads()`` threads and without the GIL."""
    return _render(rows, cam, background, order, out, not floating, timings)


def render_rows_float(rows: np.ndarray, cam: Camera, *args, **kwargs) -> np.ndarray:
    """:func:`render_rows` with ``floating=True``."""
    return render_rows(rows, cam, *args, floating=True, **kwargs)


def pack_rows(means, covs, colors, opacities) -> np.ndarray:
    """(N, 13) float32 rows: mean(3), cov xx xy xz yy yz zz (6), rgb(3), opacity(1) - the layout of
    :func:`panels.splat.visuals.pack` (backends cannot import panels)."""
    covs = np.asarray(covs, np.float32).reshape(-1, 3, 3)
    out = np.empty((len(covs), ROW), np.float32)
    out[:, 0:3] = np.asarray(means, np.float32).reshape(-1, 3)
    out[:, 3:9] = covs[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]]
    out[:, 9:12] = np.asarray(colors, np.float32).reshape(-1, 3)
    out[:, 12] = np.asarray(opacities, np.float32).reshape(-1)
    return out


def scene_rows(g: Gaussians, cam: Camera, time: float | None = None, sh_degree: int | None = None):
    """Rows of a scene for ``cam`` (colours from the SH at this camera; 4D scenes sliced at ``time``): what
    ``raster.prepare`` computes, without torch."""
    if g.is_4d:
        from backends.splat.gauss4d import slice_at

        means, covs, opac = slice_at(g, 0.0 if time is None else time)
    else:
        means, covs, opac = g.means, g.covariances(), g.opacities
    return pack_rows(means, covs, eval_sh_colors(g.sh, means, cam.position, sh_degree), opac)


_warm = False


def ready() -> bool:
    """The kernels are compiled (or loaded from numba's cache): a call costs only its work."""
    return _warm


def warmup() -> None:
    """Compile (or load from numba's cache) all kernels on a tiny scene: call once off the GUI thread."""
    global _warm
    cam = Camera(np.eye(4), 20.0, 20.0, 8.0, 8.0, 16, 16)
    rows = np.zeros((1, ROW), np.float32)
    rows[0, 2] = 2.0
    rows[0, [3, 6, 8]] = 0.01
    rows[0, 9:13] = 0.5
    render_rows(rows, cam)
    render_rows_float(rows, cam)
    _warm = True
