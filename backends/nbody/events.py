"""Close encounters and escapes, written to an event log ("t=59.4: body 0 escapes; binary (1,2) e=0.99")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.nbody.core import kepler_elements


@dataclass(frozen=True)
class Event:
    t: float
    kind: str  # "close" or "escape"
    bodies: tuple[int, ...]
    text: str
    value: float = float("nan")  # r_min for close encounters, binary eccentricity for escapes


class EventDetector:
    """Watches a run step by step.

    * close encounter: a pair distance has a local minimum below ``close_frac`` x the initial mean separation;
    * escape: a body is farther than ``escape_factor`` x the initial radius from the centre of mass of the
      others, moving away, with positive two-body energy relative to them. For three bodies the event also
      reports the Kepler elements of the remaining binary.
    """

    def __init__(
        self, mass: np.ndarray, pos: np.ndarray, close_frac: float = 0.01, escape_factor: float = 5.0
    ):
        self.mass = np.asarray(mass, float)
        n = len(self.mass)
        self.iu = np.triu_indices(n, 1)
        d = np.linalg.norm(pos[self.iu[0]] - pos[self.iu[1]], axis=1)
        self.r_close = close_frac * float(d.mean())
        com = self.mass @ pos / self.mass.sum()
        self.r_esc = escape_factor * max(float(np.max(np.linalg.norm(pos - com, axis=1))), 1e-12)
        self.prev_d = d
        self.prev_dd = np.zeros_like(d)
        self.escaped: set[int] = set()
        self.events: list[Event] = []

    def check(self, t: float, pos: np.ndarray, vel: np.ndarray) -> list[Event]:
        new: list[Event] = []
        d = np.linalg.norm(pos[self.iu[0]] - pos[self.iu[1]], axis=1)
        dd = d - self.prev_d
        # local minimum at the previous sample: was approaching, now receding
        mins = np.flatnonzero((self.prev_dd < 0) & (dd > 0) & (self.prev_d < self.r_close))
        for p in mins:
            i, j = int(self.iu[0][p]), int(self.iu[1][p])
            r = float(self.prev_d[p])
            new.append(Event(t, "close", (i, j), f"t={t:.4g}: close encounter ({i},{j}) r_min={r:.3g}", r))
        self.prev_d, self.prev_dd = d, dd
        n = len(self.mass)
        if n - len(self.escaped) >= 2:
            for i in range(n):
                if i in self.escaped:
                    continue
                rest = [k for k in range(n) if k != i and k not in self.escaped]
                if not rest:
                    continue
                mr = self.mass[rest]
                mrest = mr.sum()
                xc = mr @ pos[rest] / mrest
                vc = mr @ vel[rest] / mrest
                dx, dv = pos[i] - xc, vel[i] - vc
                r = float(np.linalg.norm(dx))
                if r < self.r_esc or float(dx @ dv) <= 0:
                    continue
                mu = self.mass[i] + mrest
                if 0.5 * float(dv @ dv) - mu / r <= 0:
                    continue
                self.escaped.add(i)
                text = f"t={t:.4g}: body {i} escapes"
                ecc = float("nan")
                if len(rest) == 2:
                    a, b = rest
                    sma, ecc, eb = kepler_elements(
                        self.mass[a], self.mass[b], pos[b] - pos[a], vel[b] - vel[a]
                    )
                    state = (
                        f"binary ({a},{b}) a={sma:.3g} e={ecc:.3g}" if eb < 0 else f"pair ({a},{b}) unbound"
                    )
                    text += f"; {state}"
                new.append(Event(t, "escape", (i,), text, ecc))
        self.events.extend(new)
        return new
