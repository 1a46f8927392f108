"""Compiled (numba) IAS15 for small N: one step, one system to a stop condition, or a batch of systems.

Why: for N = 3 one IAS15 step is ~1,000 flops, so numpy (~100 us a step) and batched torch (~1 ms a loop,
launched at the pace of the slowest system) spend almost all their time in call overhead. A compiled scalar
loop runs a step in about a microsecond, like REBOUND's C code, and each system of an ensemble stops as soon
as it is done, so stragglers cost only their own steps.

The algorithm is REBOUND's IAS15 (Rein & Spiegel 2015): Gauss-Seidel predictor-corrector over the 7 Gauss-Radau
substeps (the polynomial is updated after every substep), Newton divided differences g and their monomial
form b, PRS23 (Pham, Rein & Spiegel 2024) or the original "global" step criterion, Kahan-compensated sums.
The constants come from :mod:`backends.nbody.integrators`, so both paths share one source of truth.

Flat state: positions, velocities, accelerations are (dN,) arrays (body i, axis c at d i + c), d = 3, or 2 for
planar systems; b, e are (7, dN).
``numba`` is optional: :data:`AVAILABLE` is False without it and callers fall back to numpy / torch.
"""

from __future__ import annotations

import math

import numpy as np

from backends.nbody.ias15_coeffs import BINOM, C_B2G, C_G2B, DERIV, SAFETY, WV, WX, H

try:  # optional dependency
    import numba
    from numba import literally

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    AVAILABLE = False

    def literally(x):
        return x


# step() return codes
OK, NONFINITE, UNDERFLOW = 0, 1, 2
# per-system stop codes of integrate_system (the same numbers as backends.nbody.ensemble)
RUNNING, DONE, ESCAPED, CLOSE, STALLED = 0, 1, 2, 3, 4

_H = np.ascontiguousarray(H)
_CG2B = np.ascontiguousarray(C_G2B)
_CB2G = np.ascontiguousarray(C_B2G)
_BINOM = np.ascontiguousarray(BINOM)
_WX = np.ascontiguousarray(WX)
_WV = np.ascontiguousarray(WV)
_DERIV = np.ascontiguousarray(DERIV)
_SAFETY = float(SAFETY)
# reciprocals, so the inner loops multiply instead of divide (~700 divisions an iteration otherwise)
_PX = np.array([1.0 / ((m + 2.0) * (m + 3.0)) for m in range(7)])  # predictor weights of b_m
_RH = np.zeros((8, 8))  # _RH[n, 0] = 1/h_n, _RH[n, j] = 1/(h_n - h_j): Newton divided differences
for _n in range(1, 8):
    _RH[_n, 0] = 1.0 / H[_n]
    for _j in range(1, _n):
        _RH[_n, _j] = 1.0 / (H[_n] - H[_j])


def _jit(fn=None, **kw):
    if not AVAILABLE:
        return fn if fn is not None else (lambda f: f)
    opts = dict(cache=True, nogil=True, error_model="numpy")
    opts.update(kw)
    return numba.njit(**opts)(fn) if fn is not None else numba.njit(**opts)


@_jit
def acc_into(mass, x, eps2, out, nbody, dim):
    """Pairwise (Plummer-softened) gravity: out[d i + c] = sum_j m_j (x_j - x_i)_c / (r^2 + eps2)^1.5.

    d = ``dim`` is 3, or 2 for planar systems (a planar system stays planar exactly, and 2-D arithmetic is
    a third cheaper); ``nbody`` = N. Both arrive as compile-time constants (see :func:`step`)."""
    n = nbody
    d = dim
    for k in range(d * n):
        out[k] = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            r2 = eps2
            for c in range(d):
                dd = x[d * j + c] - x[d * i + c]
                r2 += dd * dd
            f = 1.0 / (r2 * math.sqrt(r2))
            fi = mass[j] * f
            fj = mass[i] * f
            for c in range(d):
                dd = x[d * j + c] - x[d * i + c]
                out[d * i + c] += fi * dd
                out[d * j + c] -= fj * dd


@_jit
def step(
    mass,
    eps2,
    tol,
    use_global,
    x0,
    v0,
    a0,
    b,
    e,
    csx,
    csv,
    g,
    xs,
    at,
    bold,
    dt_try,
    dt_max,
    t,
    nsteps,
    cnt,
    pc_tol,
    nbody,
    dim,
):
    """One accepted IAS15 step (retrying rejected ones), updating x0, v0, a0, b, e, csx, csv in place.

    g, xs, at, bold are work arrays ((7, dN), (dN,), (dN,), (dN,)); cnt (int64[3]) accumulates force
    evaluations, iterations and rejections. The predictor-corrector stops when the relative change of b6 is
    below ``pc_tol`` (REBOUND: 1e-16), stops decreasing after 3 sweeps, or after 12 sweeps.
    ``nbody`` and ``dim`` (bodies, 2 or 3): called from :func:`_batch` they are compile-time constants
    (``numba.literally`` there), so the loops over the dim x nbody coordinates have fixed trip counts and are
    unrolled: 1.4-1.6x faster for N = 3. Called from Python (one step at a time) they are plain integers
    (forcing literals on every Python call would recompile-check each call).
    Returns (code, dt_done, dt_next)."""
    m3 = nbody * dim
    amax0 = 0.0
    for k in range(m3):
        amax0 = max(amax0, abs(a0[k]))
    dt = dt_try
    while True:
        h = min(dt, dt_max)
        # divided differences g from the predicted b
        for k in range(7):
            for q in range(m3):
                s = 0.0
                for mm in range(k, 7):
                    s += _CB2G[k, mm] * b[mm, q]
                g[k, q] = s
        last_err = np.inf
        amax = amax0
        for it in range(12):
            cnt[1] += 1
            for q in range(m3):
                bold[q] = b[6, q]
            for n in range(1, 8):
                hn = _H[n]
                # predictor: positions at substep hn from the current polynomial
                for q in range(m3):
                    p = b[6, q] * _PX[6]
                    for mm in range(5, -1, -1):
                        p = hn * p + b[mm, q] * _PX[mm]
                    p = hn * p + 0.5 * a0[q]
                    xs[q] = -csx[q] + ((h * h * hn * hn) * p + (h * hn) * v0[q]) + x0[q]
                acc_into(mass, xs, eps2, at, nbody, dim)
                cnt[0] += 1
                if n == 7:
                    for q in range(m3):
                        amax = max(amax, abs(at[q]))
                # corrector: Newton divided difference g_{n-1}, then b via the basis change
                for q in range(m3):
                    val = (at[q] - a0[q]) * _RH[n, 0]
                    for j in range(1, n):
                        val = (val - g[j - 1, q]) * _RH[n, j]
                    dg = val - g[n - 1, q]
                    g[n - 1, q] = val
                    for mm in range(n):
                        b[mm, q] += _CG2B[mm, n - 1] * dg
            err = 0.0
            for q in range(m3):
                err = max(err, abs(b[6, q] - bold[q]))
            err = err / amax if amax > 0.0 else 0.0
            if not math.isfinite(err) or err < pc_tol or (it >= 2 and err >= last_err):
                break
            last_err = err
        # step size
        dt_new = 0.0
        if use_global:
            num = 0.0
            den = 0.0
            for q in range(m3):
                num = max(num, abs(b[6, q]))
                s = a0[q]
                for mm in range(7):
                    s += b[mm, q]
                den = max(den, abs(s))
            errg = num / max(den, 1e-300)
            dt_new = h * (tol / errg) ** (1.0 / 7.0) if errg > 0.0 else h / _SAFETY
        else:
            mints2 = np.inf
            d = dim
            for i in range(nbody):
                y2 = 0.0
                y3 = 0.0
                y4 = 0.0
                ai = 0.0
                for c in range(d):
                    q = d * i + c
                    s0 = a0[q]
                    s1 = 0.0
                    s2 = 0.0
                    for mm in range(7):
                        s0 += b[mm, q]
                        s1 += _DERIV[1, mm] * b[mm, q]
                        s2 += _DERIV[2, mm] * b[mm, q]
                    y2 += s0 * s0
                    y3 += s1 * s1
                    y4 += s2 * s2
                    ai += a0[q] * a0[q]
                if ai > 1e-300:  # as REBOUND: bodies without acceleration do not constrain the step
                    ts2 = 2.0 * y2 / (y3 + math.sqrt(y4 * y2))
                    if math.isfinite(ts2) and ts2 > 0.0:
                        mints2 = min(mints2, ts2)
            if math.isfinite(mints2):
                dt_new = math.sqrt(mints2) * h * (tol * 5040.0) ** (1.0 / 7.0)
            else:
                dt_new = h / _SAFETY
        finite = math.isfinite(dt_new)
        for q in range(m3):
            for mm in range(7):
                if not math.isfinite(b[mm, q]):
                    finite = False
        if not finite:
            return NONFINITE, 0.0, dt
        if dt_new < _SAFETY * h and dt_new < dt_max:
            # reject: retry with the smaller step, the polynomial rescaled to the new step fraction
            if dt_new < 1e-14 * max(1.0, abs(t)):
                return UNDERFLOW, 0.0, dt_new
            ratio = dt_new / h
            fac = 1.0
            for mm in range(7):
                fac *= ratio
                for q in range(m3):
                    b[mm, q] *= fac
            dt = dt_new
            cnt[2] += 1
            continue
        break
    # accept: compensated update of positions and velocities
    for q in range(m3):
        sx = 0.5 * a0[q]
        sv = a0[q]
        for mm in range(7):
            sx += _WX[mm] * b[mm, q]
            sv += _WV[mm] * b[mm, q]
        dx = h * v0[q] + (h * h) * sx
        dv = h * sv
        y = dx - csx[q]
        tt = x0[q] + y
        csx[q] = (tt - x0[q]) - y
        x0[q] = tt
        y = dv - csv[q]
        tt = v0[q] + y
        csv[q] = (tt - v0[q]) - y
        v0[q] = tt
    acc_into(mass, x0, eps2, a0, nbody, dim)
    cnt[0] += 1
    dt_next = min(dt_new, h / _SAFETY)
    # predict the next step's polynomial (plus the error of the last prediction, as REBOUND)
    ratio = dt_next / h
    for q in range(m3):
        qp = 1.0
        for j in range(7):
            qp *= ratio  # ratio^(j+1) by products: a pow() call here cost as much as the rest of the step
            s = 0.0
            for k in range(j, 7):
                s += _BINOM[j, k] * b[k, q]
            bold_j = b[j, q]
            enew = qp * s
            g[j, q] = enew + (bold_j - e[j, q]) if nsteps + 1 > 1 else enew
            e[j, q] = enew
        for j in range(7):
            b[j, q] = g[j, q]
    return OK, h, dt_next


@_jit
def _pair_r2(x, d, i, j):
    r2 = 0.0
    for c in range(d):
        dd = x[d * j + c] - x[d * i + c]
        r2 += dd * dd
    return r2


@_jit
def _stop_status(mass, x, v, eps2, escape_radius, close_radius, out_esc, nbody, dim):
    """ESCAPED (with out_esc[0] = body) if a body is beyond escape_radius from the others' centre of mass,
    moving away and unbound; CLOSE if (unsoftened) a pair is closer than close_radius; else RUNNING."""
    n = nbody
    d = dim
    mt = 0.0
    for i in range(n):
        mt += mass[i]
    for i in range(n):
        mo = mt - mass[i]
        r2 = 0.0
        w2 = 0.0
        rw = 0.0
        for c in range(d):
            cx = 0.0
            ux = 0.0
            for k in range(n):
                if k != i:
                    cx += mass[k] * x[d * k + c]
                    ux += mass[k] * v[d * k + c]
            dx = x[d * i + c] - cx / mo
            wx = v[d * i + c] - ux / mo
            r2 += dx * dx
            w2 += wx * wx
            rw += dx * wx
        if r2 > escape_radius * escape_radius and rw > 0.0 and 0.5 * w2 - mt / math.sqrt(r2 + eps2) > 0.0:
            out_esc[0] = i
            return ESCAPED
    if eps2 == 0.0:
        for i in range(n):
            for j in range(i + 1, n):
                if _pair_r2(x, d, i, j) < close_radius * close_radius:
                    return CLOSE
    return RUNNING


@_jit
def energy_flat(mass, x, v, eps2):
    n = mass.shape[0]
    d = x.shape[0] // n
    e = 0.0
    for i in range(n):
        for c in range(d):
            e += 0.5 * mass[i] * v[d * i + c] ** 2
        for j in range(i + 1, n):
            e -= mass[i] * mass[j] / math.sqrt(_pair_r2(x, d, i, j) + eps2)
    return e


@_jit
def _min_r2(x, nbody, dim):
    n = nbody
    d = dim
    r2 = np.inf
    for i in range(n):
        for j in range(i + 1, n):
            r2 = min(r2, _pair_r2(x, d, i, j))
    return r2


@_jit
def integrate_system(
    mass,
    x,
    v,
    t_end,
    tol,
    use_global,
    eps2,
    escape_radius,
    close_radius,
    max_steps,
    dt0,
    cnt,
    pc_tol,
    nbody,
    dim,
):
    """Integrate one system (x, v flat, updated in place) from t = 0 until it is done, escapes, is flagged
    or hits ``max_steps``. Returns (status, t_stop, escaper, steps, closest pair distance seen at step ends)."""
    m3 = nbody * dim
    a0 = np.empty(m3)
    acc_into(mass, x, eps2, a0, nbody, dim)
    cnt[0] += 1
    b = np.zeros((7, m3))
    e = np.zeros((7, m3))
    g = np.zeros((7, m3))
    csx = np.zeros(m3)
    csv = np.zeros(m3)
    xs = np.empty(m3)
    at = np.empty(m3)
    bold = np.empty(m3)
    esc = np.full(1, -1)
    t = 0.0
    dt = dt0
    nsteps = 0
    r2min = _min_r2(x, nbody, dim)
    while True:
        code, h, dt = step(
            mass,
            eps2,
            tol,
            use_global,
            x,
            v,
            a0,
            b,
            e,
            csx,
            csv,
            g,
            xs,
            at,
            bold,
            dt,
            t_end - t,
            t,
            nsteps,
            cnt,
            pc_tol,
            nbody,
            dim,
        )
        if code != OK:
            return CLOSE, t, -1, nsteps, math.sqrt(r2min)
        t += h
        nsteps += 1
        r2min = min(r2min, _min_r2(x, nbody, dim))
        st = _stop_status(mass, x, v, eps2, escape_radius, close_radius, esc, nbody, dim)
        if st != RUNNING:
            return st, t, esc[0], nsteps, math.sqrt(r2min)
        if t >= t_end * (1.0 - 1e-14):
            return DONE, t, -1, nsteps, math.sqrt(r2min)
        if nsteps >= max_steps:
            return STALLED, t, -1, nsteps, math.sqrt(r2min)


def _batch_impl(
    mass,
    x,
    v,
    t_end,
    tol,
    use_global,
    eps2,
    escape_radius,
    close_radius,
    max_steps,
    dt0,
    pc_tol,
    nbody,
    dim,
    out_i,
    out_f,
):
    """Systems k = 0..B-1 in parallel (prange): x, v (B, dN) in place; out_i (B, 4) = status, escaper, steps,
    force evaluations; out_f (B, 3) = t_stop, |dE/E|, closest approach. nbody, dim: compile-time constants."""
    literally(nbody)
    literally(dim)
    for k in numba.prange(x.shape[0]):
        cnt = np.zeros(3, dtype=np.int64)
        e0 = energy_flat(mass, x[k], v[k], eps2)
        st, ts, esc, ns, rmin = integrate_system(
            mass,
            x[k],
            v[k],
            t_end,
            tol,
            use_global,
            eps2,
            escape_radius,
            close_radius,
            max_steps,
            dt0[k],
            cnt,
            pc_tol,
            nbody,
            dim,
        )
        e1 = energy_flat(mass, x[k], v[k], eps2)
        out_i[k, 0] = st
        out_i[k, 1] = esc
        out_i[k, 2] = ns
        out_i[k, 3] = cnt[0]
        out_f[k, 0] = ts
        out_f[k, 1] = abs((e1 - e0) / e0)
        out_f[k, 2] = rmin


if AVAILABLE:
    _batch = numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")(_batch_impl)
else:  # pragma: no cover
    _batch = None


def integrate_batch_compiled(
    mass: np.ndarray,
    pos: np.ndarray,
    vel: np.ndarray,
    t_end: float,
    tol: float,
    softening: float = 0.0,
    escape_radius: float = 5.0,
    close_radius: float = 1e-3,
    max_steps: int = 50_000,
    criterion: str = "prs23",
    threads: int | None = None,
    pc_tol: float = 1e-16,
) -> dict:
    """B systems (pos, vel: (B, N, 3), shared masses) with the compiled IAS15, in parallel over systems.

    ``criterion``: "prs23" (REBOUND's default) or "global". ``pc_tol``: predictor-corrector convergence
    (REBOUND: 1e-16; a looser value saves sweeps when the step tolerance is loose anyway). ``threads``: numba
    threads (default: all). Returns numpy arrays: t_stop, status, escaper, energy_error, steps, force_evals,
    r_min (closest pair distance seen at step ends), x, v (final states)."""
    if not AVAILABLE:
        raise RuntimeError("the compiled path needs numba (pip install numba)")
    mass = np.ascontiguousarray(mass, float)
    pos = np.asarray(pos, float)
    vel = np.asarray(vel, float)
    bsz, n, _ = pos.shape
    planar = not (np.any(pos[..., 2]) or np.any(vel[..., 2]))  # z = vz = 0 stays so: integrate in 2-D
    d = 2 if planar else 3
    x = np.array(pos[..., :d].reshape(bsz, d * n), order="C", copy=True)
    v = np.array(vel[..., :d].reshape(bsz, d * n), order="C", copy=True)
    if criterion not in ("prs23", "global"):
        raise ValueError(f"unknown IAS15 step criterion {criterion!r}: use prs23 or global")
    use_global = criterion == "global"
    # first step: a fraction of the free-fall / collision time of the closest pair (as the torch path)
    iu = np.triu_indices(n, 1)
    d0 = np.linalg.norm(pos[:, iu[1]] - pos[:, iu[0]], axis=-1).min(-1)
    dt0 = 0.01 * np.sqrt(d0**3 / mass.sum())
    out_i = np.zeros((bsz, 4), np.int64)
    out_f = np.zeros((bsz, 3))
    old = numba.get_num_threads()
    nthreads = max(1, min(threads or old, numba.config.NUMBA_NUM_THREADS))
    args = (float(t_end), float(tol), use_global, float(softening) ** 2, float(escape_radius))
    args += (float(close_radius), int(max_steps), dt0, float(pc_tol))
    numba.set_num_threads(nthreads)
    old_chunk = numba.set_parallel_chunksize(1)  # dynamic scheduling: systems differ 100x in cost
    try:
        _batch(mass, x, v, *args, n, d, out_i, out_f)
    finally:
        numba.set_num_threads(old)
        numba.set_parallel_chunksize(old_chunk)
    return dict(
        t_stop=out_f[:, 0],
        status=out_i[:, 0],
        escaper=out_i[:, 1],
        energy_error=out_f[:, 1],
        steps=out_i[:, 2],
        force_evals=out_i[:, 3],
        r_min=out_f[:, 2],
        x=_to3d(x, bsz, n, d),
        v=_to3d(v, bsz, n, d),
    )


def _to3d(a: np.ndarray, bsz: int, n: int, d: int) -> np.ndarray:
    out = np.zeros((bsz, n, 3))
    out[..., :d] = a.reshape(bsz, n, d)
    return out
