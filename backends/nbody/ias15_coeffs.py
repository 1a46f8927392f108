"""IAS15 constants (Rein & Spiegel 2015): the Gauss-Radau nodes and the matrices built from them.

Shared by the numpy IAS15 in :mod:`backends.nbody.integrators` and the compiled one in
:mod:`backends.nbody.compiled`, so neither has to import the other's module for them.
"""

from __future__ import annotations

import math

import numpy as np

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
