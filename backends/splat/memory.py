"""How much memory a scene needs, checked against what is free before anything large is decoded."""

from __future__ import annotations

from pathlib import Path

from backends.common import UserError


def bytes_per_gaussian(sh_degree: int = 3, is_4d: bool = False) -> int:
    """In-memory float32 footprint of one Gaussian (means, scales, quats, opacity, SH, 4D fields)."""
    return 4 * (3 + 3 + 4 + 1 + 3 * (sh_degree + 1) ** 2 + (6 if is_4d else 0))


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_estimate(count: int, sh_degree: int = 3, is_4d: bool = False) -> int:
    """Bytes needed to load ``count`` Gaussians (x2 for the raw file buffer and decoding temporaries)."""
    return 2 * count * bytes_per_gaussian(sh_degree, is_4d)


def _check_memory(count: int, sh_degree: int, path: Path, is_4d: bool = False) -> None:
    need = memory_estimate(count, sh_degree, is_4d)
    avail = available_memory()
    if avail is not None and need > avail:
        raise UserError(
            f"{path.name}: {count:,} Gaussians need about {need / 2**30:.1f} GiB but only "
            f"{avail / 2**30:.1f} GiB of memory is free; use a subsampled file"
        )
