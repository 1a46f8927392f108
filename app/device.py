"""Torch device choice for every panel: "auto" = cuda > mps > cpu, with a message when falling back.

torch is imported lazily: the shell starts without it.
"""

from __future__ import annotations

import os

_choice = "auto"
_threads: int | None = None


def set_choice(choice: str) -> None:
    """Set "auto", "cpu", "cuda" or "mps" (cheap: torch is not imported here)."""
    global _choice
    if choice not in ("auto", "cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {choice!r}; use auto, cpu, cuda or mps")
    _choice = choice


def describe() -> str:
    """Which device will be used and why (imports torch)."""
    dev, why = resolve()
    return f"compute device: {dev}" + (f" ({why})" if why else "")


def choice() -> str:
    return _choice


def set_threads(n: int | None) -> None:
    """Limit torch's intra-op threads (None = torch default)."""
    global _threads
    _threads = n
    if n:
        import torch

        torch.set_num_threads(int(n))
    else:
        apply_thread_policy()


NATIVE_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads() -> None:
    """On small machines (<= 4 cores) give BLAS/OpenMP one thread in the GUI process.

    Must run before numpy is imported. Spinning BLAS threads in a worker otherwise starve the GUI thread
    (the event loop stalls for hundreds of ms on 2 cores). Variables the user set are left alone.
    """
    if (os.cpu_count() or 1) <= 4:
        for var in NATIVE_THREAD_VARS:
            os.environ.setdefault(var, "1")


def apply_thread_policy() -> int:
    """Set torch's intra-op threads once for the GUI process and return the count.

    An explicit choice (Compute > Threads) wins. Otherwise, on small machines (<= 4 cores) use one thread:
    the GUI thread needs a core, and small models lose 10x when torch's pool fights it for two.
    """
    import torch

    n = _threads or (1 if (os.cpu_count() or 1) <= 4 else torch.get_num_threads())
    torch.set_num_threads(n)
    return n


def resolve() -> tuple[str, str]:
    """(device string, reason for a fallback or '')."""
    import torch

    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if _choice == "auto":
        if torch.cuda.is_available():
            return "cuda", ""
        return ("mps", "") if has_mps else ("cpu", "")
    if _choice == "cuda" and not torch.cuda.is_available():
        return "cpu", "CUDA is not available on this machine; using the CPU"
    if _choice == "mps" and not has_mps:
        return "cpu", "MPS is not available on this machine; using the CPU"
    return _choice, ""
