"""Darcy flow -div(a grad u) = f on the unit square, zero Dirichlet, solved by PCG and by recycled CG.

The FNO benchmark: a(x) = 12 where a Gaussian random field is >= 0 and 3 elsewhere, f = 1. The field is
the FNO generator's cosine (Neumann) Karhunen-Loeve expansion with coefficients
``tau^(alpha-1) (pi^2 |k|^2 + tau^2)^(-alpha/2)``, alpha = 2, tau = 3, mean mode removed.

Discretisation: n x n nodes ``x_i = i / (n - 1)`` including the boundary; the (n-2)^2 interior values are
unknowns; the 5-point stencil uses harmonic-mean face coefficients ``2 a_p a_q / (a_p + a_q)`` (flux
continuity across jumps). The matrix is symmetric positive definite.

Solvers (numpy/scipy, CPU): Jacobi-preconditioned CG, and **deflated PCG with Krylov subspace recycling**
across a sequence of systems (the SKR idea, Wang et al. 2024, on top of Def-CG, Saad-Yeung-Erhel-Guyomarc'h
2000): the systems are sorted so neighbours have similar a(x) (greedy nearest neighbour in L2); each solve
is deflated by a recycle space W (search directions A-orthogonal to W, initial guess the Galerkin
projection onto W); after each solve W is refreshed by a Rayleigh-Ritz step for the pencil (A, M) on
span{W, first m search directions, the solution}, keeping the k Ritz vectors of smallest Ritz values,
which approximate the slow (near-kernel) modes of the next, similar system.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from backends.common import Progress, UserError, require, require_finite


# -- coefficient fields ---------------------------------------------------------------------------------------
def darcy_grf(n: int, batch: int = 1, *, alpha: float = 2.0, tau: float = 3.0, seed: int = 0) -> np.ndarray:
    """(batch, n, n) Gaussian random fields on the n x n node grid, cosine expansion as the FNO generator."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n)
    K = np.arange(n)
    C = np.cos(np.pi * np.outer(x, K))  # (n, modes)
    K1, K2 = np.meshgrid(K, K, indexing="ij")
    coef = tau ** (alpha - 1) * (np.pi**2 * (K1**2 + K2**2) + tau**2) ** (-alpha / 2)
    coef[0, 0] = 0.0
    xi = rng.standard_normal((batch, n, n))
    return np.einsum("ik,bkl,jl->bij", C, xi * coef, C, optimize=True)


def darcy_coefficients(
    n: int, count: int = 1, *, seed: int = 0, low: float = 3.0, high: float = 12.0
) -> np.ndarray:
    """(count, n, n) piecewise-constant a(x) in {low, high} from a thresholded GRF (FNO Darcy benchmark)."""
    g = darcy_grf(n, count, seed=seed)
    return np.where(g >= 0, high, low)


# -- assembly -------------------------------------------------------------------------------------------------
def assemble(a: np.ndarray, f: float | np.ndarray = 1.0) -> tuple[sp.csr_matrix, np.ndarray]:
    """5-point FD matrix (harmonic-mean faces) and right-hand side for the interior unknowns of an n x n grid."""
    a = np.asarray(a, dtype=float)
    require(a.ndim == 2 and a.shape[0] == a.shape[1], f"a must be a square 2D array, got shape {a.shape}")
    n = a.shape[0]
    require(n >= 4, f"grid size must be >= 4, got {n}")
    require_finite("coefficient field a", a)
    if not np.all(a > 0):
        raise UserError(f"coefficient field a must be positive everywhere (min {a.min():g})")
    h = 1.0 / (n - 1)
    m = n - 2
    # face coefficients between node (i, j) and its neighbours
    ax = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])  # (n, n-1): face between (i, j) and (i, j+1)
    ay = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])  # (n-1, n): face between (i, j) and (i+1, j)
    east = ax[1:-1, 1:]  # interior (i, j) -> (i, j+1)
    west = ax[1:-1, :-1]
    north = ay[1:, 1:-1]  # (i, j) -> (i+1, j)
    south = ay[:-1, 1:-1]
    diag = (east + west + north + south) / h**2
    idx = np.arange(m * m).reshape(m, m)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [diag.ravel()]
    # off-diagonals (only between interior nodes)
    rows += [idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel()]
    cols += [idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel()]
    e = -east[:, :-1].ravel() / h**2
    nn = -north[:-1, :].ravel() / h**2
    vals += [e, e, nn, nn]
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m)
    )
    fb = (
        np.broadcast_to(np.asarray(f, dtype=float), (n, n))[1:-1, 1:-1]
        if np.ndim(f)
        else np.full((m, m), float(f))
    )
    return A, np.ascontiguousarray(fb).ravel()


def embed(x: np.ndarray, n: int) -> np.ndarray:
    """Interior unknowns -> n x n field with zero boundary."""
    u = np.zeros((n, n))
    u[1:-1, 1:-1] = x.reshape(n - 2, n - 2)
    return u


def direct_solve(a: np.ndarray, f: float = 1.0) -> np.ndarray:
    """Reference: sparse direct (SuperLU) solution as an n x n field."""
    import scipy.sparse.linalg as spla

    A, b = assemble(a, f)
    return embed(spla.spsolve(A.tocsc(), b), a.shape[0])


# -- solvers --------------------------------------------------------------------------------------------------
@dataclass
class SolveInfo:
    iterations: int
    residuals: np.ndarray  # relative residual ||r|| / ||b|| per iteration (index 0 = start)
    converged: bool
    seconds: float


def pcg(
    A,
    b: np.ndarray,
    *,
    tol: float = 1e-10,
    maxiter: int = 10_000,
    x0: np.ndarray | None = None,
    W: np.ndarray | None = None,
    AW: np.ndarray | None = None,
    keep: int = 0,
):
    """Jacobi-preconditioned CG, deflated by the columns of W when given (Def-PCG, Saad et al. 2000).

    Returns (x, SolveInfo, P, AP): the first ``keep`` normalised search directions and their images, for the
    Rayleigh-Ritz refresh of a recycle space.
    """
    t0 = time.perf_counter()
    dinv = 1.0 / A.diagonal()
    bnorm = float(np.linalg.norm(b)) or 1.0
    x = np.zeros_like(b) if x0 is None else x0.copy()
    r = b - A @ x if x0 is not None else b.copy()
    if W is not None and W.shape[1] > 0:
        if AW is None:
            AW = A @ W
        E = W.T @ AW
        WE = W @ np.linalg.inv(0.5 * (E + E.T))  # W (W^T A W)^-1, k x k inverse once per system
        AWt = np.ascontiguousarray(AW.T)
        x = x + WE @ (W.T @ r)
        r = b - A @ x

        def project(z):
            return z - WE @ (AWt @ z)
    else:

        def project(z):
            return z

    z = dinv * r
    p = project(z)
    rz = float(r @ z)
    res = [float(np.linalg.norm(r)) / bnorm]
    P, AP = [], []
    it = 0
    converged = res[0] < tol
    while not converged and it < maxiter:
        Ap = A @ p
        pAp = float(p @ Ap)
        if pAp <= 0:
            break
        if len(P) < keep:
            s = 1.0 / np.sqrt(pAp)
            P.append(p * s)
            AP.append(Ap * s)
        alpha = rz / pAp
        x += alpha * p
        r -= alpha * Ap
        it += 1
        rn = float(np.linalg.norm(r)) / bnorm
        res.append(rn)
        if rn < tol:
            converged = True
            break
        z = dinv * r
        rz_new = float(r @ z)
        p = project(z) + (rz_new / rz) * p
        rz = rz_new
    info = SolveInfo(it, np.asarray(res), converged, time.perf_counter() - t0)
    Pm = np.stack(P, 1) if P else np.zeros((b.size, 0))
    APm = np.stack(AP, 1) if AP else np.zeros((b.size, 0))
    return x, info, Pm, APm


class RecyclingCG:
    """Deflated PCG that carries a k-dimensional recycle space from one system to the next."""

    def __init__(self, k: int = 16, m: int = 32, tol: float = 1e-10, maxiter: int = 10_000):
        require(k >= 0 and m >= 0, "recycle sizes must be >= 0")
        self.k, self.m, self.tol, self.maxiter = k, m, tol, maxiter
        self.W: np.ndarray | None = None

    def solve(self, A, b):
        W = self.W
        AW = A @ W if W is not None else None
        x, info, P, AP = pcg(A, b, tol=self.tol, maxiter=self.maxiter, W=W, AW=AW, keep=self.m)
        self._refresh(A, W, AW, P, AP, x)
        return x, info

    def _refresh(self, A, W, AW, P, AP, x) -> None:
        if self.k == 0:
            return
        cols, acols = [P], [AP]
        if W is not None:
            cols.insert(0, W)
            acols.insert(0, AW)
        xs = x / (np.linalg.norm(x) or 1.0)
        cols.append(xs[:, None])
        acols.append((A @ xs)[:, None])
        Z, AZ = np.hstack(cols), np.hstack(acols)
        # Rayleigh-Ritz for the pencil (A, M), M = diag(A): (Z^T A Z) y = theta (Z^T M Z) y
        G = Z.T @ AZ
        G = 0.5 * (G + G.T)
        B = Z.T @ (A.diagonal()[:, None] * Z)
        try:
            theta, Y = sla.eigh(G, B)
            Q = Z
        except np.linalg.LinAlgError:  # nearly dependent columns: orthonormalise first
            Q, R = np.linalg.qr(Z)
            Rinv = np.linalg.pinv(R)
            G = Rinv.T @ G @ Rinv
            theta, Y = np.linalg.eigh(0.5 * (G + G.T))
            Q = Z @ Rinv
        Wn = Q @ Y[:, : self.k]
        self.ritz_values = theta[: self.k]
        Wn /= np.linalg.norm(Wn, axis=0, keepdims=True)
        self.W = Wn


def similarity_order(a: np.ndarray) -> np.ndarray:
    """Greedy nearest-neighbour ordering of the fields a (count, n, n) by L2 distance, starting at 0."""
    count = a.shape[0]
    flat = a.reshape(count, -1).astype(float)
    sq = (flat**2).sum(1)
    D = sq[:, None] + sq[None, :] - 2 * flat @ flat.T
    order = [0]
    seen = np.zeros(count, bool)
    seen[0] = True
    for _ in range(count - 1):
        d = D[order[-1]].copy()
        d[seen] = np.inf
        j = int(np.argmin(d))
        order.append(j)
        seen[j] = True
    return np.asarray(order)


@dataclass(frozen=True)
class DarcyConfig:
    n: int = 64
    count: int = 100
    seed: int = 0
    tol: float = 1e-10
    recycle_k: int = 16
    recycle_m: int = 32
    sort: bool = True
    f: float = 1.0

    def __post_init__(self):
        require(
            isinstance(self.n, int) and self.n >= 16, f"grid size n must be an integer >= 16, got {self.n}"
        )
        require(self.n <= 1024, f"grid size n = {self.n} too large for the CPU solvers (at most 1024)")
        require(self.count >= 1, f"count must be >= 1, got {self.count}")
        require(0 < self.tol < 1, f"tol must be in (0, 1), got {self.tol}")
        require(0 <= self.recycle_k <= 200 and 0 <= self.recycle_m <= 400, "recycle sizes out of range")
        require_finite("f", self.f)


@dataclass
class DarcyResult:
    a: np.ndarray  # (count, n, n) in generation order
    u: np.ndarray  # (count, n, n)
    iterations: np.ndarray  # (count,) per system, generation order
    seconds: float
    order: np.ndarray  # solve order
    residuals: list  # per solve (solve order) relative residual history
    recycled: bool


def solve_sequence(
    a: np.ndarray,
    *,
    recycle: bool = True,
    sort: bool = True,
    tol: float = 1e-10,
    k: int = 16,
    m: int = 32,
    f: float = 1.0,
    label: str = "",
) -> Iterator[Progress]:
    """Solve -div(a_i grad u_i) = f for every field; yields Progress(fraction, message, None); returns DarcyResult."""
    a = np.asarray(a, dtype=float)
    require(a.ndim == 3, f"a must be (count, n, n), got shape {a.shape}")
    with _single_thread_blas():
        return (yield from _solve_sequence(a, recycle, sort, tol, k, m, f, label))


class _single_thread_blas:
    """Small dense BLAS calls (n x k) are slower multi-threaded on a busy machine: pin BLAS to one thread."""

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits

            self._ctx = threadpool_limits(1, user_api="blas")
        except ImportError:
            self._ctx = None
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.unregister() if hasattr(
                self._ctx, "unregister"
            ) else self._ctx.restore_original_limits()
        return False


def _solve_sequence(a, recycle, sort, tol, k, m, f, label):
    count, n = a.shape[0], a.shape[1]
    t0 = time.perf_counter()
    order = similarity_order(a) if sort else np.arange(count)
    solver = RecyclingCG(k if recycle else 0, m if recycle else 0, tol)
    u = np.zeros_like(a)
    iters = np.zeros(count, dtype=int)
    residuals = []
    name = label or ("recycled CG" if recycle else "PCG")
    for j, i in enumerate(order):
        A, b = assemble(a[i], f)
        if recycle:
            x, info = solver.solve(A, b)
        else:
            x, info, _, _ = pcg(A, b, tol=tol)
        if not info.converged:
            raise UserError(f"Darcy system {i} did not converge in {len(info.residuals) - 1} iterations")
        u[i] = embed(x, n)
        iters[i] = info.iterations
        residuals.append(info.residuals)
        yield Progress((j + 1) / count, f"{name}: system {j + 1}/{count}, {info.iterations} iterations")
    return DarcyResult(a, u, iters, time.perf_counter() - t0, order, residuals, recycle)


def generate_dataset(cfg: DarcyConfig, compare: bool = True) -> Iterator[Progress]:
    """Darcy dataset for neural operators: sample a, solve with recycling (and plain PCG to compare).

    Returns ``{"a", "u", "iterations", "iterations_plain", "seconds", "seconds_plain"}``.
    """
    a = darcy_coefficients(cfg.n, cfg.count, seed=cfg.seed)
    rec = yield from _scaled(
        solve_sequence(
            a, recycle=True, sort=cfg.sort, tol=cfg.tol, k=cfg.recycle_k, m=cfg.recycle_m, f=cfg.f
        ),
        0.0,
        0.5 if compare else 1.0,
    )
    out = {"a": a, "u": rec.u, "iterations": rec.iterations, "seconds": rec.seconds, "order": rec.order}
    if compare:
        plain = yield from _scaled(
            solve_sequence(a, recycle=False, sort=False, tol=cfg.tol, f=cfg.f), 0.5, 0.5
        )
        out.update(
            iterations_plain=plain.iterations,
            seconds_plain=plain.seconds,
            max_diff=float(np.abs(plain.u - rec.u).max()),
        )
    return out


def _scaled(gen, offset: float, scale: float):
    try:
        while True:
            p = next(gen)
            yield Progress(offset + scale * (p.fraction or 0.0), p.message, p.data)
    except StopIteration as stop:
        return stop.value
