"""Gravitational N-body physics in G = 1 units, float64: forces, jerks, energy, angular momentum, presets.

A :class:`System` holds masses, positions and velocities (N, 3) and an optional Plummer softening ``eps``.
Presets carry exact published initial conditions (figure-eight of Chenciner & Montgomery in Simo's digits,
Burrau's Pythagorean 3-4-5 problem, Lagrange's equilateral solution, Suvakov & Dmitrasinovic (2013) orbits,
Sun-Jupiter-Saturn) plus seeded random equal-mass systems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from backends.common import UserError

MAX_BODIES = 64


@dataclass(frozen=True)
class System:
    """Masses (N,), positions and velocities (N, 3) in G = 1 units; ``eps`` = Plummer softening length."""

    mass: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    eps: float = 0.0
    name: str = "custom"
    period: float | None = None  # known period of a periodic orbit (None: not periodic / unknown)
    names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        m = np.asarray(self.mass, dtype=np.float64).reshape(-1)
        x = np.asarray(self.pos, dtype=np.float64)
        v = np.asarray(self.vel, dtype=np.float64)
        object.__setattr__(self, "mass", m)
        object.__setattr__(self, "pos", _as_n3(x, len(m), "positions"))
        object.__setattr__(self, "vel", _as_n3(v, len(m), "velocities"))
        validate_system(self.mass, self.pos, self.vel, self.eps)

    @property
    def n(self) -> int:
        return len(self.mass)

    def copy_with(self, pos: np.ndarray | None = None, vel: np.ndarray | None = None) -> System:
        return System(
            self.mass.copy(),
            self.pos if pos is None else pos,
            self.vel if vel is None else vel,
            self.eps,
            self.name,
            self.period,
            self.names,
        )


def _as_n3(a: np.ndarray, n: int, what: str) -> np.ndarray:
    if a.ndim == 2 and a.shape == (n, 2):
        a = np.concatenate([a, np.zeros((n, 1))], axis=1)
    if a.shape != (n, 3):
        raise UserError(f"{what} must have shape ({n}, 3) to match {n} masses, got {a.shape}")
    return np.ascontiguousarray(a)


def validate_system(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray, eps: float = 0.0) -> None:
    """Clear messages for every input that would make the integration meaningless."""
    n = len(mass)
    if n < 2:
        raise UserError(f"need at least 2 bodies, got {n}")
    if n > MAX_BODIES:
        raise UserError(f"at most {MAX_BODIES} bodies are supported, got {n}")
    for name, arr in (("masses", mass), ("positions", pos), ("velocities", vel)):
        if not np.all(np.isfinite(arr)):
            raise UserError(f"{name} contain NaN or infinity")
    bad = np.flatnonzero(mass <= 0)
    if bad.size:
        raise UserError(f"masses must be > 0: body {int(bad[0])} has mass {mass[bad[0]]:g}")
    if not math.isfinite(eps) or eps < 0:
        raise UserError(f"softening must be a finite number >= 0, got {eps}")
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    d[np.diag_indices(n)] = np.inf
    i, j = np.unravel_index(np.argmin(d), d.shape)
    if d[i, j] == 0.0:
        raise UserError(f"bodies {min(i, j)} and {max(i, j)} start at the same position (coincident bodies)")


# -- forces -------------------------------------------------------------------------------------------------
def accel(mass: np.ndarray, pos: np.ndarray, eps2: float = 0.0) -> np.ndarray:
    """Accelerations (N, 3): a_i = sum_j m_j (x_j - x_i) / (|x_j - x_i|^2 + eps^2)^(3/2)."""
    d = pos[None, :, :] - pos[:, None, :]  # d[i, j] = x_j - x_i
    r2 = np.einsum("ijk,ijk->ij", d, d) + eps2
    np.fill_diagonal(r2, 1.0)
    inv3 = r2**-1.5
    np.fill_diagonal(inv3, 0.0)
    return np.einsum("ij,ijk->ik", inv3 * mass[None, :], d)


def accel_jerk(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray, eps2: float = 0.0):
    """Accelerations and jerks (time derivatives of the accelerations), both (N, 3)."""
    d = pos[None, :, :] - pos[:, None, :]
    dv = vel[None, :, :] - vel[:, None, :]
    r2 = np.einsum("ijk,ijk->ij", d, d) + eps2
    np.fill_diagonal(r2, 1.0)
    inv2 = 1.0 / r2
    inv3 = inv2 * np.sqrt(inv2)
    np.fill_diagonal(inv3, 0.0)
    w = inv3 * mass[None, :]
    rv = np.einsum("ijk,ijk->ij", d, dv) * inv2
    a = np.einsum("ij,ijk->ik", w, d)
    j = np.einsum("ij,ijk->ik", w, dv) - 3.0 * np.einsum("ij,ijk->ik", w * rv, d)
    return a, j


def energy(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray, eps2: float = 0.0) -> float:
    """Total energy: kinetic - sum_{i<j} m_i m_j / sqrt(r_ij^2 + eps^2)."""
    kin = 0.5 * float(np.sum(mass * np.einsum("ij,ij->i", vel, vel)))
    n = len(mass)
    iu = np.triu_indices(n, 1)
    d = pos[iu[0]] - pos[iu[1]]
    r = np.sqrt(np.einsum("ij,ij->i", d, d) + eps2)
    pot = -float(np.sum(mass[iu[0]] * mass[iu[1]] / r))
    return kin + pot


def angular_momentum(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
    return np.sum(mass[:, None] * np.cross(pos, vel), axis=0)


def to_com_frame(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray):
    """Positions and velocities relative to the centre of mass (which then sits at rest at the origin)."""
    mt = mass.sum()
    return pos - (mass @ pos) / mt, vel - (mass @ vel) / mt


def collision_time(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray) -> float:
    """min over pairs of min(r/|v_rel|, sqrt(r^3 / (m_i + m_j))): the collision / free-fall time scale."""
    n = len(mass)
    iu = np.triu_indices(n, 1)
    d = pos[iu[0]] - pos[iu[1]]
    dv = vel[iu[0]] - vel[iu[1]]
    r = np.sqrt(np.einsum("ij,ij->i", d, d))
    v = np.sqrt(np.einsum("ij,ij->i", dv, dv))
    with np.errstate(divide="ignore"):
        tc = np.where(v > 0, r / np.where(v > 0, v, 1.0), np.inf)
    tff = np.sqrt(r**3 / (mass[iu[0]] + mass[iu[1]]))
    return float(min(tc.min(), tff.min()))


def kepler_elements(m1: float, m2: float, dx: np.ndarray, dv: np.ndarray) -> tuple[float, float, float]:
    """(semi-major axis, eccentricity, specific orbital energy) of a two-body relative orbit."""
    mu = m1 + m2
    r = float(np.linalg.norm(dx))
    v2 = float(dv @ dv)
    eps = 0.5 * v2 - mu / r
    h = np.cross(dx, dv)
    e_vec = np.cross(dv, h) / mu - dx / r
    e = float(np.linalg.norm(e_vec))
    a = -mu / (2 * eps) if eps != 0 else math.inf
    return a, e, eps


# -- presets ------------------------------------------------------------------------------------------------
# Suvakov & Dmitrasinovic (2013), PRL 110, 114301: x1 = (-1, 0) = -x2, x3 = 0, v1 = v2 = (p1, p2),
# v3 = -2 (p1, p2), equal unit masses, G = 1. The periods below are where our high-order integrator finds the
# orbit back at its start (Newton refinement of the return time; state returns to 2.6e-7 and 7.7e-7, limited
# by the 15 digits of p in these unstable orbits).
SUVAKOV = {
    "butterfly1": (0.306892758965492, 0.125506782829762, 6.2346704311),
    "moth1": (0.464445237398184, 0.396059973403921, 14.8943064556),
}

PRESETS = ("figure8", "pythagorean", "lagrange", "butterfly1", "moth1", "sun-jupiter-saturn", "random")


def _planar(mass, xy, vxy, **kw) -> System:
    pos = np.zeros((len(mass), 3))
    vel = np.zeros((len(mass), 3))
    pos[:, :2] = xy
    vel[:, :2] = vxy
    return System(np.asarray(mass, float), pos, vel, **kw)


def preset(name: str, seed: int = 0, n: int = 3, eps: float = 0.0) -> System:
    """A named preset system (centre-of-mass frame)."""
    if name == "figure8":
        # Chenciner & Montgomery (2000) choreography with Simo's initial conditions; T = 6.32591398.
        x1 = np.array([0.97000436, -0.24308753])
        v3 = np.array([-0.93240737, -0.86473146])
        s = _planar(
            [1, 1, 1], [x1, -x1, [0, 0]], [-v3 / 2, -v3 / 2, v3], eps=eps, name=name, period=6.32591398
        )
    elif name == "pythagorean":
        # Burrau (1913); Szebehely & Peters (1967): masses 3, 4, 5 at rest at the corners of a 3-4-5 triangle.
        s = _planar([3, 4, 5], [[1, 3], [-2, -1], [1, -1]], np.zeros((3, 2)), eps=eps, name=name)
    elif name == "lagrange":
        # Equal masses on an equilateral triangle of side sqrt(3) (circumradius 1), rigid rotation.
        ang = np.deg2rad([90, 210, 330])
        xy = np.stack([np.cos(ang), np.sin(ang)], 1)
        m = 1.0
        # centripetal: omega^2 R = sum_j m / d^2 * cos(30deg) with d = sqrt(3) R -> omega^2 = m / (sqrt(3) R^3)
        omega = math.sqrt(m / math.sqrt(3.0))
        vxy = omega * np.stack([-xy[:, 1], xy[:, 0]], 1)
        s = _planar([m, m, m], xy, vxy, eps=eps, name=name, period=2 * math.pi / omega)
    elif name in SUVAKOV:
        p1, p2, period = SUVAKOV[name]
        v = np.array([p1, p2])
        s = _planar([1, 1, 1], [[-1, 0], [1, 0], [0, 0]], [v, v, -2 * v], eps=eps, name=name, period=period)
    elif name == "sun-jupiter-saturn":
        # Units: AU, solar masses, G = 1 -> one year = 2 pi. Circular coplanar orbits, real masses and radii.
        m = np.array([1.0, 9.547919e-4, 2.858860e-4])
        a = np.array([0.0, 5.2026, 9.5549])
        xy = np.stack([a, np.zeros(3)], 1)
        vy = np.zeros(3)
        vy[1:] = np.sqrt((m[0] + m[1:]) / a[1:])
        vxy = np.stack([np.zeros(3), vy], 1)
        s = _planar(m, xy, vxy, eps=eps, name=name, names=("Sun", "Jupiter", "Saturn"))
    elif name == "random":
        s = random_system(seed, n, eps)
    else:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    p, v = to_com_frame(s.mass, s.pos, s.vel)
    return System(s.mass, p, v, s.eps, s.name, s.period, s.names)


def random_system(
    seed: int, n: int = 3, eps: float = 0.0, virial: float = 0.5, planar: bool = True
) -> System:
    """Seeded equal-mass system: positions uniform in the unit disc, velocities scaled to virial ratio Q."""
    if n < 2:
        raise UserError(f"a random system needs at least 2 bodies, got {n}")
    rng = np.random.default_rng(seed)
    while True:
        r = np.sqrt(rng.uniform(0, 1, n))
        phi = rng.uniform(0, 2 * np.pi, n)
        pos = np.stack(
            [r * np.cos(phi), r * np.sin(phi), np.zeros(n) if planar else rng.normal(0, 0.3, n)], 1
        )
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(n)
        if d.min() > 0.1:
            break
    vel = rng.normal(0, 1, (n, 3))
    if planar:
        vel[:, 2] = 0
    mass = np.full(n, 1.0 / n)
    pos, vel = to_com_frame(mass, pos, vel)
    kin = 0.5 * np.sum(mass * np.sum(vel**2, 1))
    pot = -energy(mass, pos, np.zeros_like(vel))
    vel *= math.sqrt(virial * pot / kin)
    return System(mass, pos, vel, eps=eps, name=f"random(seed={seed})")
