"""Gaussian mixtures with the exact noised denoiser and score in closed form.

If ``x1 ~ sum_k w_k N(mu_k, S_k)`` and ``x = a*x1 + s*n`` with ``n ~ N(0, I)``, then
``x | k ~ N(a mu_k, a^2 S_k + s^2 I)`` and ``E[x1 | x, k] = mu_k + a S_k (a^2 S_k + s^2 I)^-1 (x - a mu_k)``;
the posterior mean ``E[x1 | x]`` weights these by the component responsibilities. With ``a = 1, s = sigma``
this is the EDM denoiser D(x; sigma); the score is ``(D - x) / sigma^2``. Everything runs in torch, batched.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from backends.common import require


class GaussianMixture:
    def __init__(self, weights, means, covs):
        w = np.asarray(weights, dtype=np.float64)
        mu = np.asarray(means, dtype=np.float64)
        cov = np.asarray(covs, dtype=np.float64)
        require(
            w.ndim == 1 and mu.ndim == 2 and cov.ndim == 3, "mixture: weights (K,), means (K,d), covs (K,d,d)"
        )
        require(
            len(w) == len(mu) == len(cov) and cov.shape[1:] == (mu.shape[1],) * 2, "mixture: shapes differ"
        )
        require(bool(np.all(w > 0)), "mixture weights must be > 0")
        self.weights = w / w.sum()
        self.means = mu
        self.covs = cov
        self.dim = mu.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        chol = np.linalg.cholesky(self.covs)
        z = rng.standard_normal((n, self.dim))
        return self.means[k] + np.einsum("nij,nj->ni", chol[k], z)

    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    def _t(self, x: torch.Tensor):
        kw = dict(dtype=x.dtype, device=x.device)
        if not hasattr(self, "_eig"):
            lam, u = np.linalg.eigh(self.covs)  # covs = U diag(lam) U^T, once
            self._eig = (np.maximum(lam, 0.0), u)
        lam, u = self._eig
        return (
            torch.as_tensor(self.weights, **kw),
            torch.as_tensor(self.means, **kw),
            torch.as_tensor(lam, **kw),
            torch.as_tensor(u, **kw),
        )

    def posterior_mean(
        self, x: torch.Tensor, a: float | torch.Tensor, s: float | torch.Tensor
    ) -> torch.Tensor:
        """E[x1 | a*x1 + s*n = x] for x (n, d); a and s scalars (float or 0-d tensor)."""
        w, mu, lam, u = self._t(x)
        a = float(a)
        s = float(s)
        d = self.dim
        if a == 0.0:
            return (w @ mu).expand_as(x).clone()
        c = a * a * lam + s * s  # eigenvalues of a^2 S_k + s^2 I, (K, d)
        diff = x[:, None, :] - a * mu[None]  # (n, K, d)
        z = torch.einsum("nkd,kde->nke", diff, u)  # coordinates in each component's eigenbasis
        maha = (z * z / c[None]).sum(-1)  # (n, K)
        logdet = torch.log(c).sum(-1)  # (K,)
        logp = torch.log(w)[None] - 0.5 * maha - 0.5 * logdet[None] - 0.5 * d * math.log(2 * math.pi)
        r = torch.softmax(logp, dim=1)  # (n, K)
        # E[x1 | x, k] = mu_k + a S_k (a^2 S_k + s^2 I)^-1 (x - a mu_k)  =  mu_k + U diag(a lam / c) U^T diff
        zc = r[..., None] * z * (a * lam / c)[None]  # responsibility-weighted, (n, K, d)
        return r @ mu + torch.einsum("nke,kde->nd", zc, u)

    def log_prob(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        w = torch.as_tensor(self.weights, dtype=x.dtype, device=x.device)
        mu = torch.as_tensor(self.means, dtype=x.dtype, device=x.device)
        cov = torch.as_tensor(self.covs, dtype=x.dtype, device=x.device)
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        dist = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov + sigma**2 * eye)
        return torch.logsumexp(dist.log_prob(x[:, None, :]) + torch.log(w)[None], dim=1)


class MixtureDenoiser:
    """The exact EDM denoiser D(x; sigma) of a Gaussian mixture: ``model(x, sigma)``."""

    def __init__(self, mixture: GaussianMixture):
        self.mixture = mixture

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        return self.mixture.posterior_mean(x, 1.0, float(sigma))


class EmpiricalDenoiser:
    """Exact denoiser of an empirical point set (a mixture of Dirac masses), optionally PFGM++-noised.

    ``D = None``: Gaussian kernel (EDM). Finite ``D``: the PFGM++ kernel
    ``p_r(x|y) ~ (|x-y|^2 + r^2)^(-(N+D)/2)`` with ``r = sigma*sqrt(D)``, so the posterior weights are
    ``w_i ~ (|x-y_i|^2 + r^2)^(-(N+D)/2)``. As D -> inf they become ``exp(-|x-y_i|^2 / 2 sigma^2)``.
    """

    def __init__(self, points: np.ndarray | torch.Tensor, D: float | None = None):
        self.points = torch.as_tensor(np.asarray(points), dtype=torch.float64)
        self.D = D

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        y = self.points.to(dtype=x.dtype, device=x.device)
        sigma = float(sigma)
        d2 = torch.cdist(x, y).pow(2)  # (n, m)
        if self.D is None:
            logw = -d2 / (2 * sigma * sigma)
        else:
            n_dim = x.shape[1]
            r2 = sigma * sigma * self.D
            logw = -0.5 * (n_dim + self.D) * torch.log1p(d2 / r2)
        return torch.softmax(logw, dim=1) @ y
