"""Our integrators: leapfrog (KDK), RK4, adaptive 4th-order Hermite, and IAS15 (15th-order Gauss-Radau).

Each integrator object owns the state (``x``, ``v``, ``t``) and advances it with ``step(dt_max)`` which returns
the step actually taken (never beyond ``dt_max``, so runs end exactly at ``t_end``). ``force_evals`` counts
evaluations of the N-body force (one per call of the acceleration routine, whatever N).

IAS15 follows Rein & Spiegel (2015, MNRAS 446, 1424): the acceleration over a step is a degree-7 polynomial in
the substep fraction fixed on 8 Gauss-Radau nodes by a predictor-corrector iteration; the step is chosen from
the PRS23 criterion (Pham, Rein & Spiegel 2024) with ``tol`` playing REBOUND's ``epsilon``; positions and
velocities are summed with Kahan compensation.
"""

from __future__ import annotations

import math

import numpy as np

from backends.common import UserError
from backends.nbody.core import accel, accel_jerk, collision_time
from backends.nbody.ias15_coeffs import _M, BINOM, C_G2B, CX, DERIV, H2, LINV, MIN_IT, SAFETY, WV, WX, H


class Integrator:
    name = "base"
    adaptive = False

    def __init__(self, mass: np.ndarray, x: np.ndarray, v: np.ndarray, eps: float = 0.0, t: float = 0.0):
        self.mass = np.asarray(mass, float)
        self.x = np.array(x, float)
        self.v = np.array(v, float)
        self.eps2 = float(eps) ** 2
        self.t = float(t)
        self.force_evals = 0
        self.steps = 0
        self.last_dt = 0.0

    def acc(self, x: np.ndarray) -> np.ndarray:
        self.force_evals += 1
        return accel(self.mass, x, self.eps2)

    def step(self, dt_max: float) -> float:
        raise NotImplementedError


class Leapfrog(Integrator):
    """Kick-drift-kick leapfrog with a fixed step: symplectic, 2nd order, one force evaluation per step."""

    name = "leapfrog"

    def __init__(self, mass, x, v, eps=0.0, t=0.0, dt: float = 1e-3):
        super().__init__(mass, x, v, eps, t)
        self.dt = dt
        self.a = self.acc(self.x)

    def step(self, dt_max: float) -> float:
        h = min(self.dt, dt_max)
        self.v += 0.5 * h * self.a
        self.x += h * self.v
        self.a = self.acc(self.x)
        self.v += 0.5 * h * self.a
        self.t += h
        self.steps += 1
        self.last_dt = h
        return h


class RK4(Integrator):
    """Classical 4th-order Runge-Kutta with a fixed step (4 force evaluations per step)."""

    name = "rk4"

    def __init__(self, mass, x, v, eps=0.0, t=0.0, dt: float = 1e-3):
        super().__init__(mass, x, v, eps, t)
        self.dt = dt

    def step(self, dt_max: float) -> float:
        h = min(self.dt, dt_max)
        x, v = self.x, self.v
        k1x, k1v = v, self.acc(x)
        k2x, k2v = v + 0.5 * h * k1v, self.acc(x + 0.5 * h * k1x)
        k3x, k3v = v + 0.5 * h * k2v, self.acc(x + 0.5 * h * k2x)
        k4x, k4v = v + h * k3v, self.acc(x + h * k3x)
        self.x = x + h / 6 * (k1x + 2 * k2x + 2 * k3x + k4x)
        self.v = v + h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)
        self.t += h
        self.steps += 1
        self.last_dt = h
        return h


class Hermite(Integrator):
    """4th-order Hermite predictor-corrector (Makino & Aarseth 1992), shared adaptive step.

    ``criterion="collision"``: dt = eta x min over pairs of (r/|v_rel|, sqrt(r^3/(m_i+m_j))).
    ``criterion="aarseth"``: dt = min_i sqrt(eta (|a||a''| + |a'|^2) / (|a'||a'''| + |a''|^2)), with the
    2nd/3rd derivatives taken from the Hermite interpolant of the previous step.
    """

    name = "hermite"
    adaptive = True

    def __init__(self, mass, x, v, eps=0.0, t=0.0, eta: float = 0.01, criterion: str = "collision"):
        super().__init__(mass, x, v, eps, t)
        if criterion not in ("collision", "aarseth"):
            raise UserError(f"unknown Hermite step criterion {criterion!r}: use collision or aarseth")
        self.eta = eta
        self.criterion = criterion
        self.force_evals += 1
        self.a, self.j = accel_jerk(self.mass, self.x, self.v, self.eps2)
        self.snap = None
        self.crackle = None

    def next_dt(self) -> float:
        if self.criterion == "aarseth" and self.snap is not None:
            na = np.linalg.norm(self.a, axis=1)
            nj = np.linalg.norm(self.j, axis=1)
            ns = np.linalg.norm(self.snap, axis=1)
            nc = np.linalg.norm(self.crackle, axis=1)
            den = nj * nc + ns**2
            with np.errstate(divide="ignore", invalid="ignore"):
                dts = np.sqrt(self.eta * (na * ns + nj**2) / den)
            dts = dts[np.isfinite(dts) & (dts > 0)]
            if dts.size:
                return float(dts.min())
            return self.eta * collision_time(self.mass, self.x, self.v)
        if self.criterion == "aarseth":  # first step: a gentle start as in Aarseth's codes
            return 0.01 * math.sqrt(self.eta) * collision_time(self.mass, self.x, self.v)
        return self.eta * collision_time(self.mass, self.x, self.v)

    def step(self, dt_max: float) -> float:
        h = min(self.next_dt(), dt_max)
        x0, v0, a0, j0 = self.x, self.v, self.a, self.j
        xp = x0 + h * (v0 + h * (0.5 * a0 + h / 6.0 * j0))
        vp = v0 + h * (a0 + 0.5 * h * j0)
        self.force_evals += 1
        a1, j1 = accel_jerk(self.mass, xp, vp, self.eps2)
        v1 = v0 + 0.5 * h * (a0 + a1) + h * h / 12.0 * (j0 - j1)
        x1 = x0 + 0.5 * h * (v0 + v1) + h * h / 12.0 * (a0 - a1)
        # derivatives of the interpolating polynomial at the end of the step (for the Aarseth criterion)
        s0 = (-6.0 * (a0 - a1) - h * (4.0 * j0 + 2.0 * j1)) / (h * h)
        c0 = (12.0 * (a0 - a1) + 6.0 * h * (j0 + j1)) / (h**3)
        self.snap, self.crackle = s0 + h * c0, c0
        self.x, self.v, self.a, self.j = x1, v1, a1, j1
        self.t += h
        self.steps += 1
        self.last_dt = h
        return h

    def advance(self, t_end: float, max_steps: int, compiled: bool | None = None) -> int:
        """Step until ``t_end`` (no overshoot). Returns 0 on arrival, 1 on a non-finite state, 2 after
        ``max_steps`` steps. Compiled (numba) when available: ~100x faster than calling :meth:`step` for N = 3."""
        use = HERMITE_COMPILED if compiled is None else compiled and HERMITE_COMPILED
        if not use:
            n0 = self.steps
            while self.t < t_end * (1 - 1e-14):
                if self.steps - n0 >= max_steps:
                    return 2
                self.step(t_end - self.t)
                if not np.all(np.isfinite(self.x)):
                    return 1
            return 0
        has = self.snap is not None
        snap = np.array(self.snap, float) if has else np.zeros_like(self.x)
        crackle = np.array(self.crackle, float) if has else np.zeros_like(self.x)
        x, v = np.array(self.x, float), np.array(self.v, float)
        a, j = np.array(self.a, float), np.array(self.j, float)
        state = np.array([self.t, float(has), self.last_dt])
        steps, flag = hermite_advance(
            self.mass,
            x,
            v,
            a,
            j,
            snap,
            crackle,
            state,
            float(self.eta),
            self.eps2,
            float(t_end),
            int(max_steps),
            self.criterion == "aarseth",
        )
        self.x, self.v, self.a, self.j = x, v, a, j
        if state[1] > 0:
            self.snap, self.crackle = snap, crackle
        self.t, self.last_dt = float(state[0]), float(state[2])
        self.steps += int(steps)
        self.force_evals += int(steps)
        return int(flag)


class IAS15(Integrator):
    """15th-order Gauss-Radau integrator with adaptive step (IAS15). ``tol`` is REBOUND's epsilon.

    With numba installed (``compiled=None`` or True) a step runs in :func:`backends.nbody.compiled.step`,
    REBOUND's algorithm compiled: ~1 us of arithmetic instead of ~100 us of numpy calls for N = 3.
    The numpy fallback (``compiled=False``) differs from REBOUND's C code in one point, for speed in numpy:
    each predictor-corrector iteration evaluates the forces at all 7 substeps from the current polynomial at
    once (a Jacobi sweep of the same collocation equations) instead of updating the polynomial after every
    substep (Gauss-Seidel). Both converge to the same Gauss-Radau solution; Jacobi needs ~one more iteration.
    """

    name = "highorder"
    adaptive = True

    def __init__(
        self,
        mass,
        x,
        v,
        eps=0.0,
        t=0.0,
        tol: float = 1e-9,
        dt0: float | None = None,
        criterion: str = "prs23",
        compiled: bool | None = None,
    ):
        super().__init__(mass, x, v, eps, t)
        from backends.nbody import compiled as _c

        if compiled and not _c.AVAILABLE:
            raise UserError("the compiled IAS15 needs numba: pip install numba")
        self.compiled = _c.AVAILABLE if compiled is None else bool(compiled)
        n = len(self.mass)
        self.tol = tol
        if criterion not in ("prs23", "global"):
            raise UserError(f"unknown IAS15 step criterion {criterion!r}: use prs23 or global")
        self.criterion = criterion
        self._shape = self.x.shape
        self._I, self._J = np.triu_indices(n, 1)
        p = len(self._I)
        # acc_i = sum_p S[i, p] f_p with f_p = (x_J - x_I)/r^3: body I feels +m_J f, body J feels -m_I f
        self._S = np.zeros((n, p))
        self._S[self._I, np.arange(p)] = self.mass[self._J]
        self._S[self._J, np.arange(p)] = -self.mass[self._I]
        self.xf = self.x.reshape(-1).copy()
        self.vf = self.v.reshape(-1).copy()
        self.a0 = self.acc_many(self.xf[None])[0]
        self.b = np.zeros((7, self.xf.size))
        self.e = np.zeros_like(self.b)  # prediction of b made at the end of the previous step
        self.csx = np.zeros_like(self.xf)
        self.csv = np.zeros_like(self.vf)
        self.dt = dt0 if dt0 is not None else 0.01 * collision_time(self.mass, self.x, self.v)
        self.rejected = 0
        self.iterations = 0
        if self.compiled:
            self._work = (np.zeros((7, self.xf.size)), np.empty(self.xf.size), np.empty(self.xf.size))
            self._work += (np.empty(self.xf.size), np.zeros(3, np.int64))

    def acc_many(self, xs: np.ndarray) -> np.ndarray:
        """Accelerations for K flat position sets at once, (K, 3N): the 7 substeps in one call."""
        k = xs.shape[0]
        self.force_evals += k
        x3 = xs.reshape(k, -1, 3)
        d = x3[:, self._J] - x3[:, self._I]
        r2 = np.einsum("kpc,kpc->kp", d, d)
        if self.eps2:
            r2 += self.eps2
        f = d * (r2**-1.5)[..., None]
        return np.matmul(self._S, f).reshape(k, -1)

    def step(self, dt_max: float) -> float:
        if self.compiled:
            return self._step_compiled(dt_max)
        x0, v0, a0 = self.xf, self.vf, self.a0
        amax0 = np.abs(a0).max()
        while True:
            dt = min(self.dt, dt_max)
            b = self.b
            base = x0 + np.outer(dt * H[1:], v0) + np.outer((0.5 * dt * dt) * H2, a0)
            cx = (dt * dt) * CX[1:]
            last_err = math.inf
            amax = amax0
            for _it in range(12):
                # predictor: positions at the 7 substeps from the current b; corrector: b from their forces
                accs = self.acc_many(base + cx @ b)
                b_new = C_G2B @ (LINV @ (accs - a0))  # two stages: 1000x less roundoff than one matrix
                self.iterations += 1
                amax = max(np.abs(accs[-1]).max(), amax)
                err = np.abs(b_new[6] - b[6]).max() / amax if amax > 0 else 0.0
                b = b_new
                if not math.isfinite(err) or err < 1e-16 or (_it >= MIN_IT and err >= last_err):
                    break
                last_err = err
            if self.criterion == "global":  # REBOUND's original criterion: max|b6| / max|a| over all bodies
                err = np.abs(b[6]).max() / max(np.abs(a0 + b.sum(0)).max(), 1e-300)
                dt_new = dt * (self.tol / err) ** (1.0 / 7.0) if err > 0 else dt / SAFETY
                ts2 = None
            # PRS23 step-size criterion from the derivatives of the acceleration at the end of the step
            y = (DERIV @ b).reshape(3, -1, 3)
            y[0] += a0.reshape(-1, 3)
            y2, y3, y4 = np.einsum("kic,kic->ki", y, y)
            with np.errstate(divide="ignore", invalid="ignore"):
                ts2 = 2.0 * y2 / (y3 + np.sqrt(y4 * y2))
            a0i = np.einsum("ic,ic->i", a0.reshape(-1, 3), a0.reshape(-1, 3))
            ts2 = ts2[np.isfinite(ts2) & (ts2 > 0) & (a0i > 1e-300)]  # as REBOUND: skip bodies with a0 = 0
            if self.criterion == "global":
                pass
            elif ts2.size:
                dt_new = math.sqrt(ts2.min()) * dt * (self.tol * 5040.0) ** (1.0 / 7.0)
            else:
                dt_new = dt / SAFETY
            if not math.isfinite(dt_new) or not np.all(np.isfinite(b)):
                raise FloatingPointError(f"IAS15 produced non-finite values at t={self.t:.6g}")
            if dt_new < SAFETY * dt and dt_new < dt_max:
                # reject: retry with the smaller step, rescaling the b-polynomial to the new step fraction
                if dt_new < 1e-14 * max(1.0, abs(self.t)):
                    raise FloatingPointError(f"IAS15 step size underflow at t={self.t:.6g} (collision?)")
                self.b = b * (dt_new / dt) ** (_M[:, None] + 1.0)
                self.dt = dt_new
                self.rejected += 1
                continue
            break
        # accept: advance with compensated summation
        dx = dt * v0 + (dt * dt) * (0.5 * a0 + WX @ b)
        dv = dt * (a0 + WV @ b)
        self.xf, self.csx = _kahan(x0, self.csx, dx)
        self.vf, self.csv = _kahan(v0, self.csv, dv)
        self.x = self.xf.reshape(self._shape)
        self.v = self.vf.reshape(self._shape)
        self.a0 = self.acc_many(self.xf[None])[0]
        self.t += dt
        self.steps += 1
        self.last_dt = dt
        dt_new = min(dt_new, dt / SAFETY)
        # predict the next step's b from this step's polynomial (and the last prediction's error)
        q = dt_new / dt
        e_new = (q ** (_M[:, None] + 1.0)) * (BINOM @ b)
        self.b = e_new + (b - self.e) if self.steps > 1 else e_new
        self.e = e_new
        self.dt = dt_new
        return dt

    def _step_compiled(self, dt_max: float) -> float:
        from backends.nbody.compiled import NONFINITE, OK, step

        g, xs, at, bold, cnt = self._work
        cnt[:] = 0
        code, dt, dt_next = step(
            self.mass, self.eps2, self.tol, self.criterion == "global", self.xf, self.vf, self.a0,
            self.b, self.e, self.csx, self.csv, g, xs, at, bold, float(self.dt), float(dt_max), float(self.t),
            int(self.steps), cnt, 1e-16,
            len(self.mass), 3,
        )  # fmt: skip
        self.force_evals += int(cnt[0])
        self.iterations += int(cnt[1])
        self.rejected += int(cnt[2])
        if code != OK:
            what = "non-finite values" if code == NONFINITE else "step size underflow"
            raise FloatingPointError(f"IAS15 produced {what} at t={self.t:.6g} (collision?)")
        self.x = self.xf.reshape(self._shape).copy()  # state arrays are updated in place: hand out copies
        self.v = self.vf.reshape(self._shape).copy()
        self.t += dt
        self.steps += 1
        self.last_dt = dt
        self.dt = dt_next
        return dt


def _kahan(x: np.ndarray, cs: np.ndarray, dx: np.ndarray):
    y = dx - cs
    t = x + y
    cs = (t - x) - y
    return t, cs


# -- compiled Hermite (numba, optional) -------------------------------------------------------------------------
# Why: for N = 3 a numpy Hermite step is ~170 us of call overhead for ~300 flops; the learned-stepping
# environment runs millions of steps in training. The kernel below is the same algorithm as Hermite.step /
# next_dt, written as scalar loops (equal to the numpy path to rounding).
try:  # optional dependency
    import numba as _numba

    HERMITE_COMPILED = True
except ImportError:  # pragma: no cover - exercised only without numba
    _numba = None
    HERMITE_COMPILED = False


def _njit(fn):
    if not HERMITE_COMPILED:
        return fn
    return _numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


@_njit
def _acc_jerk_into(mass, x, v, eps2, a, j):
    n = x.shape[0]
    for i in range(n):
        for c in range(3):
            a[i, c] = 0.0
            j[i, c] = 0.0
    for i in range(n):
        for k in range(i + 1, n):
            dx0, dx1, dx2 = x[k, 0] - x[i, 0], x[k, 1] - x[i, 1], x[k, 2] - x[i, 2]
            dv0, dv1, dv2 = v[k, 0] - v[i, 0], v[k, 1] - v[i, 1], v[k, 2] - v[i, 2]
            r2 = dx0 * dx0 + dx1 * dx1 + dx2 * dx2 + eps2
            inv2 = 1.0 / r2
            inv3 = inv2 * math.sqrt(inv2)
            rv = 3.0 * (dx0 * dv0 + dx1 * dv1 + dx2 * dv2) * inv2
            j0, j1, j2 = dv0 - rv * dx0, dv1 - rv * dx1, dv2 - rv * dx2
            wk, wi = mass[k] * inv3, mass[i] * inv3
            a[i, 0] += wk * dx0
            a[i, 1] += wk * dx1
            a[i, 2] += wk * dx2
            a[k, 0] -= wi * dx0
            a[k, 1] -= wi * dx1
            a[k, 2] -= wi * dx2
            j[i, 0] += wk * j0
            j[i, 1] += wk * j1
            j[i, 2] += wk * j2
            j[k, 0] -= wi * j0
            j[k, 1] -= wi * j1
            j[k, 2] -= wi * j2


@_njit
def _collision_time(mass, x, v):
    n = x.shape[0]
    best = np.inf
    for i in range(n):
        for k in range(i + 1, n):
            r2 = 0.0
            u2 = 0.0
            for c in range(3):
                r2 += (x[i, c] - x[k, c]) ** 2
                u2 += (v[i, c] - v[k, c]) ** 2
            r = math.sqrt(r2)
            u = math.sqrt(u2)
            if u > 0:
                best = min(best, r / u)
            best = min(best, math.sqrt(r**3 / (mass[i] + mass[k])))
    return best


@_njit
def _norm3(a, i):
    return math.sqrt(a[i, 0] * a[i, 0] + a[i, 1] * a[i, 1] + a[i, 2] * a[i, 2])


@_njit
def hermite_advance(mass, x, v, a, j, snap, crackle, state, eta, eps2, t_end, max_steps, aarseth):
    """Advance a Hermite state in place until t_end (steps never overshoot), at most ``max_steps`` steps.

    ``state`` = [t, has_snap (0/1), last_dt]; x, v, a, j, snap, crackle are (N, 3) arrays updated in place.
    Returns (steps taken, flag): flag 0 = reached t_end, 1 = non-finite state, 2 = max_steps reached."""
    n = x.shape[0]
    xp = np.empty_like(x)
    vp = np.empty_like(v)
    a1 = np.empty_like(a)
    j1 = np.empty_like(j)
    steps = 0
    t = state[0]
    stop = t_end * (1 - 1e-14)
    while t < stop:
        if steps >= max_steps:
            state[0] = t
            return steps, 2
        # next_dt
        if aarseth and state[1] > 0:
            dt = np.inf
            for i in range(n):
                na, nj = _norm3(a, i), _norm3(j, i)
                ns, nc = _norm3(snap, i), _norm3(crackle, i)
                d = math.sqrt(eta * (na * ns + nj * nj) / (nj * nc + ns * ns))
                if math.isfinite(d) and d > 0 and d < dt:
                    dt = d
            if not math.isfinite(dt):
                dt = eta * _collision_time(mass, x, v)
        elif aarseth:
            dt = 0.01 * math.sqrt(eta) * _collision_time(mass, x, v)
        else:
            dt = eta * _collision_time(mass, x, v)
        h = min(dt, t_end - t)
        for i in range(n):
            for c in range(3):
                xp[i, c] = x[i, c] + h * (v[i, c] + h * (0.5 * a[i, c] + h / 6.0 * j[i, c]))
                vp[i, c] = v[i, c] + h * (a[i, c] + 0.5 * h * j[i, c])
        _acc_jerk_into(mass, xp, vp, eps2, a1, j1)
        finite = True
        for i in range(n):
            for c in range(3):
                a0, j0 = a[i, c], j[i, c]
                v1 = v[i, c] + 0.5 * h * (a0 + a1[i, c]) + h * h / 12.0 * (j0 - j1[i, c])
                x1 = x[i, c] + 0.5 * h * (v[i, c] + v1) + h * h / 12.0 * (a0 - a1[i, c])
                s0 = (-6.0 * (a0 - a1[i, c]) - h * (4.0 * j0 + 2.0 * j1[i, c])) / (h * h)
                c0 = (12.0 * (a0 - a1[i, c]) + 6.0 * h * (j0 + j1[i, c])) / (h**3)
                snap[i, c] = s0 + h * c0
                crackle[i, c] = c0
                x[i, c], v[i, c], a[i, c], j[i, c] = x1, v1, a1[i, c], j1[i, c]
                finite = finite and math.isfinite(x1)
        state[1] = 1.0
        state[2] = h
        t += h
        steps += 1
        if not finite:
            state[0] = t
            return steps, 1
    state[0] = t
    return steps, 0
