"""Batch studies on Dask: a workload, chunks seeded by their index, a resumable Zarr store (see study.py)."""

from backends.batch.schedulers import SchedulerSpec, parse_scheduler
from backends.batch.store import ArraySpec, read_meta, status
from backends.batch.study import ChunkResult, Study, StudyReport, chunk_seed
from backends.batch.workloads import DarcyDataset, EscapeMap

__all__ = [
    "ArraySpec",
    "ChunkResult",
    "DarcyDataset",
    "EscapeMap",
    "SchedulerSpec",
    "Study",
    "StudyReport",
    "chunk_seed",
    "parse_scheduler",
    "read_meta",
    "status",
]
