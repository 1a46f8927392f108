"""Batched ensembles: many small N-body systems at once, each with its own adaptive IAS15 step.

Two engines, same method (IAS15 Gauss-Radau predictor-corrector, Kahan-compensated sums):

* ``compiled`` (default on CPU when numba is installed): :mod:`backends.nbody.compiled`, one system per
  thread at a time, dynamically scheduled, each stopping as soon as it is done. No per-op overhead and no
  straggler problem: a system with 20,000 steps costs its own steps and nothing else.
* ``torch`` (CPU or GPU): the systems as a batch dimension (Jacobi sweep over the 7 substeps), every system with
  its own step size, leaving the working set as soon as it is done. On a 2-core CPU per-op overhead makes it
  ~100x slower than the compiled engine; it is the path for a GPU.

A system stops when it reaches ``t_end``, one body escapes, or it is flagged as a close encounter (an unsoftened
pair closer than ``close_radius``, or a step-size collapse). With ``energy_target`` set, every system that ends
above it is integrated again at REBOUND's default accuracy (epsilon 1e-9, converged predictor-corrector), so a
loose, fast tolerance can be used for the bulk without letting any system miss the target.

:func:`escape_map` integrates a grid of initial conditions: bodies 0 and 1 at (-0.5, 0) and (0.5, 0), body 2
at each (x, y) of a region, all at rest, and records when the first body escapes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from backends.common import Progress, UserError
from backends.nbody.ias15_coeffs import BINOM, C_G2B, CX, DERIV, LINV, SAFETY, WV, WX, H

# status codes per system
RUNNING, DONE, ESCAPED, CLOSE, STALLED = 0, 1, 2, 3, 4
STATUS_NAMES = {
    RUNNING: "running",
    DONE: "bound to t_end",
    ESCAPED: "escape",
    CLOSE: "close encounter",
    STALLED: "step limit",
}


@dataclass(frozen=True)
class EnsembleConfig:
    nx: int = 100
    ny: int = 100
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    masses: tuple[float, float, float] = (1.0, 1.0, 1.0)
    t_end: float = 10.0
    # IAS15 epsilon (PRS23) and predictor-corrector convergence for the bulk of the systems: chosen on a
    # 9x9 grid (not the benchmark grid) as the cheapest setting with max |dE/E| ~ 1e-10, 100x below the target
    tol: float = 1e-7
    pc_tol: float = 1e-6
    energy_target: float = 1e-8  # systems above it are redone at epsilon 1e-9 (0: never redo)
    escape_radius: float = 5.0  # escape when farther than this from the others' centre of mass (and unbound)
    close_radius: float = 1e-3  # a pair closer than this is flagged as a close encounter and stopped
    # Plummer softening: bodies released at rest fall radially and most pairs pass within 1e-3 (flagged
    # above); a small softening keeps the map about escapes. Set 0 for pure Newtonian gravity.
    softening: float = 0.02
    max_steps: int = 50_000
    device: str = "cpu"
    method: str = "auto"  # "compiled" (numba, CPU), "torch" (CPU/GPU), "auto": compiled on CPU if available
    threads: int = 0  # compiled engine threads (0: all)

    def __post_init__(self) -> None:
        if self.method not in ("auto", "compiled", "torch"):
            raise UserError(f"ensemble method must be auto, compiled or torch, got {self.method!r}")
        if not (math.isfinite(self.energy_target) and self.energy_target >= 0):
            raise UserError(f"energy_target must be >= 0, got {self.energy_target}")
        if not (1 <= self.nx <= 2000 and 1 <= self.ny <= 2000):
            raise UserError(f"grid must be 1..2000 per side, got {self.nx}x{self.ny}")
        if not math.isfinite(self.softening) or self.softening < 0:
            raise UserError(f"softening must be >= 0, got {self.softening}")
        for name in ("t_end", "tol", "pc_tol", "escape_radius", "close_radius"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise UserError(f"{name} must be a finite number > 0, got {v}")
        if self.t_end > 1e4:
            raise UserError(f"t_end {self.t_end:g} is absurd for an ensemble: at most 1e4")
        if any((not math.isfinite(m)) or m <= 0 for m in self.masses):
            raise UserError(f"masses must be > 0, got {self.masses}")
        if self.x_range[0] >= self.x_range[1] or self.y_range[0] >= self.y_range[1]:
            raise UserError("ranges must be (min, max) with min < max")


@dataclass
class EnsembleResult:
    x: np.ndarray  # (nx,) grid coordinates of body 2
    y: np.ndarray  # (ny,)
    escape_time: np.ndarray  # (ny, nx), NaN where no body escaped by t_end
    escaper: np.ndarray  # (ny, nx) index of the escaping body, -1 if none
    status: np.ndarray  # (ny, nx) status codes
    energy_error: np.ndarray  # (ny, nx) final |dE/E|
    steps: np.ndarray  # (ny, nx)
    t_end: float
    wall_s: float
    redone: np.ndarray | None = None  # (ny, nx) True where the system was redone at epsilon 1e-9
    r_min: np.ndarray | None = None  # (ny, nx) closest pair distance seen (compiled engine only)
    method: str = ""

    def summary(self) -> str:
        n = self.status.size
        esc = int(np.sum(self.status == ESCAPED))
        flagged = int(np.sum(self.status == CLOSE))
        good = self.energy_error[(self.status != CLOSE)]
        worst = float(np.nanmax(good)) if good.size else float("nan")
        redo = int(np.sum(self.redone)) if self.redone is not None else 0
        return (
            f"{n} systems to t={self.t_end:g} in {self.wall_s:.2f} s ({n / self.wall_s:.0f} systems/s, "
            f"{self.method}): {esc} escapes, {flagged} close encounters flagged, {redo} redone at eps 1e-9, "
            f"worst |dE/E| (unflagged) {worst:.2e}"
        )


def _small_batch(mass, pos, vel, t_end, tol, escape_radius, close_radius, max_steps, softening):
    from backends.nbody.core import collision_time, energy

    out = {k: [] for k in ("t_stop", "status", "escaper", "energy_error", "steps", "x", "v")}
    for k in range(pos.shape[0]):
        dt0 = 0.01 * collision_time(mass, pos[k], vel[k] + 1e-300)
        zeros = np.zeros((7, pos[k].size))
        st = _finish_single(
            mass,
            pos[k],
            vel[k],
            0.0,
            dt0,
            0,
            t_end,
            tol,
            escape_radius,
            close_radius,
            max_steps,
            zeros,
            zeros,
            softening,
        )
        e0 = energy(mass, pos[k], vel[k], softening**2)
        e1 = energy(mass, st[4], st[5], softening**2)
        for key, val in zip(
            ("t_stop", "status", "escaper", "steps", "x", "v"), (st[0], st[1], st[2], st[3], st[4], st[5])
        ):
            out[key].append(val)
        out["energy_error"].append(abs((e1 - e0) / e0))
        yield Progress((k + 1) / pos.shape[0], f"{k + 1}/{pos.shape[0]} systems finished")
    return {k: np.asarray(v) for k, v in out.items()}


def _acc(x, mass, I, J, eps2: float = 0.0):
    """x (..., N, 3) -> accelerations (..., N, 3) via pair list (I < J), Plummer-softened by eps2."""
    import torch

    d = x[..., J, :] - x[..., I, :]
    r2 = (d * d).sum(-1) + eps2
    f = d * r2.pow(-1.5).unsqueeze(-1)
    a = torch.zeros_like(x)
    a.index_add_(-2, I, f * mass[J].unsqueeze(-1))
    a.index_add_(-2, J, -f * mass[I].unsqueeze(-1))
    return a


def _energy(x, v, mass, I, J, eps2: float = 0.0):
    import torch

    kin = 0.5 * (mass * (v * v).sum(-1)).sum(-1)
    d = x[..., J, :] - x[..., I, :]
    pot = -(mass[I] * mass[J] / torch.sqrt((d * d).sum(-1) + eps2)).sum(-1)
    return kin + pot


def integrate_batch(
    mass: np.ndarray,
    pos: np.ndarray,
    vel: np.ndarray,
    t_end: float,
    tol: float = 1e-9,
    escape_radius: float = 5.0,
    close_radius: float = 1e-3,
    max_steps: int = 50_000,
    device: str = "cpu",
    progress_every_s: float = 0.5,
    check_every: int = 4,
    tail: int = 24,
    softening: float = 0.0,
    method: str = "auto",
    pc_tol: float = 1e-16,
    threads: int = 0,
    energy_target: float = 0.0,
) -> Generator[Progress, None, dict]:
    """Integrate B systems (pos, vel: (B, N, 3), shared masses (N,)) to ``t_end`` with per-system IAS15 steps.

    Yields Progress(fraction of systems finished); returns a dict of numpy arrays: t_stop, status, escaper,
    energy_error, steps, x, v (final states), redone (bool). ``method``: see the module docstring; ``pc_tol``
    applies to the compiled engine (the torch engine converges to 1e-16). With ``energy_target`` > 0 systems
    ending above it (and not flagged) are integrated again at epsilon 1e-9."""
    pos = np.asarray(pos, float)
    vel = np.asarray(vel, float)
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
        raise UserError("initial conditions contain NaN or infinity")
    from backends.nbody import compiled

    if method not in ("auto", "compiled", "torch"):
        raise UserError(f"ensemble method must be auto, compiled or torch, got {method!r}")
    if method == "compiled" and not compiled.AVAILABLE:
        raise UserError("the compiled ensemble engine needs numba: pip install numba")
    use_compiled = method == "compiled" or (method == "auto" and compiled.AVAILABLE and device == "cpu")
    common = (escape_radius, close_radius, max_steps, softening)
    if use_compiled:
        out = yield from _compiled_batch(mass, pos, vel, t_end, tol, pc_tol, threads, *common)
    else:
        out = yield from _torch_batch(
            mass, pos, vel, t_end, tol, *common, device, progress_every_s, check_every, tail
        )
    out["redone"] = np.zeros(pos.shape[0], bool)
    if energy_target > 0:
        redo = np.flatnonzero((out["energy_error"] > energy_target) & (out["status"] != CLOSE))
        if redo.size and (tol > 1e-9 or pc_tol > 1e-16):
            yield Progress(1.0, f"redoing {redo.size} systems above |dE/E| = {energy_target:g} at eps 1e-9")
            again = yield from integrate_batch(
                mass, pos[redo], vel[redo], t_end, min(tol, 1e-9), *common[:3], device,
                progress_every_s, check_every, tail, softening, method, 1e-16, threads, 0.0,
            )  # fmt: skip
            for key, val in again.items():
                if key in out:
                    out[key][redo] = val
            out["redone"][redo] = True
    return out


def _compiled_batch(
    mass, pos, vel, t_end, tol, pc_tol, threads, escape_radius, close_radius, max_steps, softening
) -> Generator[Progress, None, dict]:
    """The compiled engine in chunks of systems, so callers get progress (and can stop between chunks)."""
    from backends.nbody.compiled import integrate_batch_compiled

    bsz = pos.shape[0]
    chunk = max(64, -(-bsz // 20))
    parts = []
    for lo in range(0, bsz, chunk):
        hi = min(bsz, lo + chunk)
        parts.append(
            integrate_batch_compiled(
                mass,
                pos[lo:hi],
                vel[lo:hi],
                t_end,
                tol,
                softening,
                escape_radius,
                close_radius,
                max_steps,
                "prs23",
                threads or None,
                pc_tol,
            )  # fmt: skip
        )
        yield Progress(hi / bsz, f"{hi}/{bsz} systems finished")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _torch_batch(
    mass, pos, vel, t_end, tol, escape_radius, close_radius, max_steps, softening, device, progress_every_s,
    check_every, tail,
) -> Generator[Progress, None, dict]:  # fmt: skip
    """The batched torch engine (CPU or GPU); batches of at most ``tail`` systems run in numpy."""
    if pos.shape[0] <= tail:
        return (
            yield from _small_batch(
                np.asarray(mass, float),
                pos,
                np.asarray(vel, float),
                t_end,
                tol,
                escape_radius,
                close_radius,
                max_steps,
                softening,
            )
        )
    import torch

    dev = torch.device(device)
    eps2 = float(softening) ** 2
    f64 = torch.float64
    pos = np.asarray(pos, float)
    bsz, n, _ = pos.shape
    m = torch.as_tensor(np.asarray(mass, float), dtype=f64, device=dev)
    iu = np.triu_indices(n, 1)
    I = torch.as_tensor(iu[0], device=dev)
    J = torch.as_tensor(iu[1], device=dev)
    T = lambda a: torch.as_tensor(np.asarray(a, float), dtype=f64, device=dev)  # noqa: E731
    cx1, linv, cg2b, deriv = T(CX[1:]), T(LINV), T(C_G2B), T(DERIV)
    wx, wv, binom = T(WX), T(WV), T(BINOM)
    h1, h2 = T(H[1:]), T(H[1:] ** 2)
    k1 = torch.arange(1, 8, dtype=f64, device=dev)
    sqrt7 = (tol * 5040.0) ** (1.0 / 7.0)

    x = torch.as_tensor(pos, dtype=f64, device=dev).clone()
    v = torch.as_tensor(np.asarray(vel, float), dtype=f64, device=dev).clone()
    e0_all = _energy(x, v, m, I, J, eps2)
    # outputs (full batch)
    out_t = torch.zeros(bsz, dtype=f64, device=dev)
    out_status = torch.zeros(bsz, dtype=torch.int64, device=dev)
    out_esc = torch.full((bsz,), -1, dtype=torch.int64, device=dev)
    out_de = torch.zeros(bsz, dtype=f64, device=dev)
    out_steps = torch.zeros(bsz, dtype=torch.int64, device=dev)
    out_x = x.clone()
    out_v = v.clone()
    # working set
    idx = torch.arange(bsz, device=dev)
    a0 = _acc(x, m, I, J, eps2)
    b = torch.zeros(bsz, 7, n, 3, dtype=f64, device=dev)
    e = torch.zeros_like(b)
    csx = torch.zeros_like(x)
    csv = torch.zeros_like(v)
    t = torch.zeros(bsz, dtype=f64, device=dev)
    steps = torch.zeros(bsz, dtype=torch.int64, device=dev)
    # first step: a fraction of the free-fall time of the closest pair
    d0 = (x[:, J] - x[:, I]).norm(dim=-1).amin(-1)
    dt = 0.01 * torch.sqrt(d0**3 / m.sum())
    others = [[k for k in range(n) if k != i] for i in range(n)]
    last = time.perf_counter()
    loop = 0
    while idx.numel():
        if idx.numel() <= tail:  # a few slow systems left: numpy steps them faster than batched torch
            for k in range(idx.numel()):
                st = _finish_single(
                    m.cpu().numpy(),
                    x[k].cpu().numpy(),
                    v[k].cpu().numpy(),
                    float(t[k]),
                    float(dt[k]),
                    int(steps[k]),
                    t_end,
                    tol,
                    escape_radius,
                    close_radius,
                    max_steps,
                    b[k].cpu().numpy(),
                    e[k].cpu().numpy(),
                    softening,
                )
                gi = int(idx[k])
                out_t[gi], out_status[gi], out_esc[gi], out_steps[gi] = st[0], st[1], st[2], st[3]
                out_x[gi] = torch.as_tensor(st[4], device=dev)
                out_v[gi] = torch.as_tensor(st[5], device=dev)
                e1 = _energy(out_x[gi : gi + 1], out_v[gi : gi + 1], m, I, J, eps2)[0]
                out_de[gi] = ((e1 - e0_all[gi]) / e0_all[gi].abs()).abs()
            break
        rem = t_end - t
        h = torch.minimum(dt, rem)
        hh = h[:, None, None, None]
        base = (
            x[:, None]
            + (hh * h1[None, :, None, None]) * v[:, None]
            + (0.5 * hh * hh * h2[None, :, None, None]) * a0[:, None]
        )
        amax = a0.abs().flatten(1).amax(1)
        conv = torch.zeros(idx.numel(), dtype=torch.bool, device=dev)
        last_err = torch.full_like(amax, math.inf)
        for it in range(12):
            xs = base + (hh * hh) * torch.einsum("nm,bmkc->bnkc", cx1, b)
            accs = _acc(xs, m, I, J, eps2)
            bn = torch.einsum("mn,bnkc->bmkc", cg2b, torch.einsum("nk,bkic->bnic", linv, accs - a0[:, None]))
            amax = torch.maximum(amax, accs[:, -1].abs().flatten(1).amax(1))
            err = (bn[:, 6] - b[:, 6]).abs().flatten(1).amax(1) / amax
            b = torch.where(conv[:, None, None, None], b, bn)
            conv = conv | (err < 1e-16) | ((err >= last_err) & (it >= 2)) | ~torch.isfinite(err)
            last_err = err
            if bool(conv.all()):
                break
        # REBOUND's global IAS15 criterion per system: dt (tol / (max|b6| / max|a|))^(1/7). (PRS23 stalls
        # when a body's acceleration passes through zero, which softened pass-throughs do all the time.)
        # Without softening: PRS23 (REBOUND's default), robust through close Newtonian passes.
        if eps2 > 0:
            errg = b[:, 6].abs().flatten(1).amax(1) / (a0 + b.sum(1)).abs().flatten(1).amax(1).clamp(
                min=1e-300
            )
            dt_new = torch.where(errg > 0, h * (tol / errg.clamp(min=1e-300)) ** (1.0 / 7.0), h / SAFETY)
        else:
            y = torch.einsum("km,bmic->bkic", deriv, b)
            y[:, 0] += a0
            y2, y3, y4 = (y * y).sum(-1).unbind(1)  # (W, N) each
            ts2 = 2.0 * y2 / (y3 + torch.sqrt(y4 * y2))
            ok = torch.isfinite(ts2) & (ts2 > 0) & ((a0 * a0).sum(-1) > 1e-300)
            ts2 = torch.where(ok, ts2, torch.full_like(ts2, math.inf)).amin(-1)
            dt_new = torch.where(torch.isfinite(ts2), torch.sqrt(ts2) * h * sqrt7, h / SAFETY)
        bad = ~torch.isfinite(b).flatten(1).all(1)
        reject = (dt_new < SAFETY * h) & (dt_new < rem) & ~bad
        acc_ = ~reject & ~bad
        # rejected systems: shrink step, rescale b
        q = (dt_new / h).clamp(min=0)[:, None] ** k1[None]
        b_rej = b * q[:, :, None, None]
        # accepted systems: advance
        dx = h[:, None, None] * v + (h * h)[:, None, None] * (0.5 * a0 + torch.einsum("m,bmic->bic", wx, b))
        dv = h[:, None, None] * (a0 + torch.einsum("m,bmic->bic", wv, b))
        yx = dx - csx
        tx = x + yx
        csx_new = (tx - x) - yx
        yv = dv - csv
        tv = v + yv
        csv_new = (tv - v) - yv
        A = acc_[:, None, None]
        x = torch.where(A, tx, x)
        v = torch.where(A, tv, v)
        csx = torch.where(A, csx_new, csx)
        csv = torch.where(A, csv_new, csv)
        t = torch.where(acc_, t + h, t)
        steps = steps + acc_.long()
        a0 = torch.where(A, _acc(x, m, I, J, eps2), a0)
        dtn = torch.minimum(dt_new, h / SAFETY)
        qn = (dtn / h)[:, None] ** k1[None]
        e_new = qn[:, :, None, None] * torch.einsum("jk,bkic->bjic", binom, b)
        b_acc = torch.where((steps > 1)[:, None, None, None], e_new + (b - e), e_new)
        A4 = acc_[:, None, None, None]
        b = torch.where(A4, b_acc, torch.where(reject[:, None, None, None], b_rej, b))
        e = torch.where(A4, e_new, e)
        dt = torch.where(acc_, dtn, torch.where(reject, dt_new, dt))
        loop += 1
        if loop % check_every and idx.numel() > tail:
            continue
        # status of each system in the working set
        status = torch.zeros_like(steps)
        esc_body = torch.full_like(steps, -1)
        for i in range(n):
            o = others[i]
            mo = m[o]
            xc = (mo[:, None] * x[:, o]).sum(1) / mo.sum()
            vc = (mo[:, None] * v[:, o]).sum(1) / mo.sum()
            dxi, dvi = x[:, i] - xc, v[:, i] - vc
            r = dxi.norm(dim=-1)
            unbound = 0.5 * (dvi * dvi).sum(-1) - (m[i] + mo.sum()) / torch.sqrt(r * r + eps2) > 0
            out = (r > escape_radius) & ((dxi * dvi).sum(-1) > 0) & unbound
            newly = out & (esc_body < 0)
            esc_body = torch.where(newly, torch.full_like(esc_body, i), esc_body)
        status = torch.where(esc_body >= 0, torch.full_like(status, ESCAPED), status)
        rmin = (x[:, J] - x[:, I]).norm(dim=-1).amin(-1)
        if eps2 == 0.0:  # with softening a pair may pass through each other harmlessly
            status = torch.where(
                (status == 0) & (rmin < close_radius), torch.full_like(status, CLOSE), status
            )
        status = torch.where(
            (status == 0) & (t >= t_end * (1 - 1e-14)), torch.full_like(status, DONE), status
        )
        tiny = dt < 1e-12 * torch.clamp(t, min=1.0)
        status = torch.where((status == 0) & (bad | tiny), torch.full_like(status, CLOSE), status)
        status = torch.where((status == 0) & (steps >= max_steps), torch.full_like(status, STALLED), status)
        fin = status > 0
        if bool(fin.any()):
            gi = idx[fin]
            out_t[gi] = t[fin]
            out_status[gi] = status[fin]
            out_esc[gi] = esc_body[fin]
            out_steps[gi] = steps[fin]
            out_x[gi] = x[fin]
            out_v[gi] = v[fin]
            e1 = _energy(x[fin], v[fin], m, I, J, eps2)
            out_de[gi] = ((e1 - e0_all[gi]) / e0_all[gi].abs()).abs()
            keep = ~fin
            idx, x, v, a0, b, e, csx, csv, t, dt, steps = (
                z[keep] for z in (idx, x, v, a0, b, e, csx, csv, t, dt, steps)
            )
        now = time.perf_counter()
        if now - last >= progress_every_s:
            last = now
            done = bsz - idx.numel()
            tmin = float(t.min()) if idx.numel() else t_end
            yield Progress(done / bsz, f"{done}/{bsz} systems finished, slowest at t={tmin:.3g}")
    return {
        k: val.cpu().numpy()
        for k, val in dict(
            t_stop=out_t,
            status=out_status,
            escaper=out_esc,
            energy_error=out_de,
            steps=out_steps,
            x=out_x,
            v=out_v,
        ).items()
    }


def _finish_single(
    mass, x, v, t, dt, steps, t_end, tol, escape_radius, close_radius, max_steps, b, e, softening=0.0
):
    """Continue one system with the numpy IAS15 from a batched state, with the same stop criteria."""
    from backends.nbody.integrators import IAS15

    n = len(mass)
    it = IAS15(mass, x, v, softening, t=t, tol=tol, dt0=dt, criterion="global" if softening > 0 else "prs23")
    it.b = b.reshape(7, -1).copy()
    it.e = e.reshape(7, -1).copy()
    it.steps = steps
    iu = np.triu_indices(n, 1)
    while True:
        try:
            it.step(t_end - it.t)
        except FloatingPointError:
            return it.t, CLOSE, -1, it.steps, it.x, it.v
        x, v = it.x, it.v
        for i in range(n):
            o = [k for k in range(n) if k != i]
            mo = mass[o]
            dxi = x[i] - mo @ x[o] / mo.sum()
            dvi = v[i] - mo @ v[o] / mo.sum()
            r = float(np.linalg.norm(dxi))
            ekin = 0.5 * dvi @ dvi - (mass[i] + mo.sum()) / math.sqrt(r * r + softening**2)
            if r > escape_radius and dxi @ dvi > 0 and ekin > 0:
                return it.t, ESCAPED, i, it.steps, x, v
        if softening == 0 and np.linalg.norm(x[iu[1]] - x[iu[0]], axis=1).min() < close_radius:
            return it.t, CLOSE, -1, it.steps, x, v
        if it.t >= t_end * (1 - 1e-14):
            return it.t, DONE, -1, it.steps, x, v
        if it.steps >= max_steps:
            return it.t, STALLED, -1, it.steps, x, v


def grid_initial_conditions(cfg: EnsembleConfig):
    # cell centres: keeps the grid off the symmetry lines x = 0 and y = 0 (exactly collinear / isosceles)
    xs = cfg.x_range[0] + (np.arange(cfg.nx) + 0.5) * (cfg.x_range[1] - cfg.x_range[0]) / cfg.nx
    ys = cfg.y_range[0] + (np.arange(cfg.ny) + 0.5) * (cfg.y_range[1] - cfg.y_range[0]) / cfg.ny
    gx, gy = np.meshgrid(xs, ys)
    bsz = gx.size
    pos = np.zeros((bsz, 3, 3))
    pos[:, 0, 0] = -0.5
    pos[:, 1, 0] = 0.5
    pos[:, 2, 0] = gx.ravel()
    pos[:, 2, 1] = gy.ravel()
    m = np.asarray(cfg.masses, float)
    com = np.einsum("n,bnc->bc", m, pos) / m.sum()
    pos -= com[:, None]
    # keep away from the two fixed bodies (a third body on top of another is a collision, not a system)
    d = np.minimum(np.hypot(gx.ravel() + 0.5, gy.ravel()), np.hypot(gx.ravel() - 0.5, gy.ravel()))
    return xs, ys, pos, np.zeros_like(pos), d


def escape_map(cfg: EnsembleConfig) -> Generator[Progress, None, EnsembleResult]:
    """Escape-time map over the third body's start position; see the module docstring."""
    wall0 = time.perf_counter()
    xs, ys, pos, vel, dmin = grid_initial_conditions(cfg)
    valid = dmin > 1e-3
    res = yield from integrate_batch(
        np.asarray(cfg.masses),
        pos[valid],
        vel[valid],
        cfg.t_end,
        cfg.tol,
        cfg.escape_radius,
        cfg.close_radius,
        cfg.max_steps,
        cfg.device,
        softening=cfg.softening,
        method=cfg.method,
        pc_tol=cfg.pc_tol,
        threads=cfg.threads,
        energy_target=cfg.energy_target,
    )
    shape = (cfg.ny, cfg.nx)

    def full(a, fill):
        o = np.full(pos.shape[0], fill, dtype=np.asarray(a).dtype if np.asarray(a).dtype != bool else bool)
        o[valid] = a
        return o.reshape(shape)

    status = full(res["status"], CLOSE)
    t_stop = full(res["t_stop"], 0.0)
    esc_t = np.where(status == ESCAPED, t_stop, np.nan)
    out = EnsembleResult(
        xs,
        ys,
        esc_t,
        full(res["escaper"], -1),
        status,
        full(res["energy_error"], np.nan),
        full(res["steps"], 0),
        cfg.t_end,
        time.perf_counter() - wall0,
        full(res["redone"], False),
        full(res["r_min"], np.nan) if "r_min" in res else None,
        "compiled" if "r_min" in res else "torch",
    )
    yield Progress(1.0, out.summary())
    return out
