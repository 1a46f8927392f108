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

# -- IAS15 constants ------------------------------------------------------------------------------------------
H = np.array(
    [
        0.0,
        0.0562625605369221464656521910318,
        0.180240691736892364987579942780,
        0.352624717113169637373907769648,
        0.547153626330555383001448554766,
        0.734210177215410531523210605558,
        0.885320946839095768090359771030,
        0.977520613561287501891174488626,
    ]
)


def _newton_to_monomial() -> np.ndarray:
    """C[m, k]: coefficient of s^(m+1) in N_{k+1}(s) = s (s - h_1) ... (s - h_k); b = C g."""
    c = np.zeros((7, 7))
    for k in range(7):
        poly = np.poly1d([1.0, 0.0])  # s
        for j in range(1, k + 1):
            poly = poly * np.poly1d([1.0, -H[j]])
        coeffs = poly.coeffs[::-1]  # ascending powers
        for p, cval in enumerate(coeffs):
            if p >= 1:
                c[p - 1, k] = cval
    return c


C_G2B = _newton_to_monomial()
C_B2G = np.linalg.inv(C_G2B)
_M = np.arange(7)
# x(s) = x0 + dt s v0 + dt^2 (a0 s^2/2 + sum_m b_m s^(m+3)/((m+2)(m+3))); v(s) = v0 + dt (a0 s + sum b_m s^(m+2)/(m+2))
CX = np.array([[s ** (m + 3) / ((m + 2) * (m + 3)) for m in _M] for s in H])
CV = np.array([[s ** (m + 2) / (m + 2) for m in _M] for s in H])
# binomial coefficients used to shift the b-polynomial to the next step
BINOM = np.array([[math.comb(k + 1, j + 1) if k >= j else 0 for k in _M] for j in _M], float)
SAFETY = 0.25
MIN_IT = 2
H2 = H[1:] ** 2
# a(h_n) - a0 = sum_k g_k N_k(h_n) (lower triangular L) -> g = L^-1 (a(h_n) - a0), b = C_G2B g
_L = np.array(
    [
        [h * np.prod([h - H[j] for j in range(1, k + 1)]) if k < n else 0.0 for k in range(7)]
        for n, h in enumerate(H[1:], start=1)
    ]
)
for _n in range(7):
    _L[_n, _n + 1 :] = 0.0
LINV = np.linalg.inv(_L)  # Newton divided differences as one triangular matrix
DERIV = np.array([np.ones(7), np.arange(1, 8.0), [0, 2, 6, 12, 20, 30, 42]])  # a(1)-a0, dt a'(1), dt^2 a''(1)
WX = 1.0 / ((_M + 2.0) * (_M + 3.0))
WV = 1.0 / (_M + 2.0)


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
