"""Where a study's chunks run: ``none``, ``local[:N]``, ``tcp://HOST:PORT``, ``slurm:...``, ``pbs:...``.

* ``none``: in this process, one chunk after another; the reference and the debugging path.
* ``local[:N]``: an embedded Dask ``LocalCluster`` of N worker processes with one thread each (default N: the
  CPU count), listening on 127.0.0.1 only; its dashboard only when bokeh is installed.
* ``tcp://HOST:PORT``: an existing Dask scheduler (``dask scheduler`` + ``dask worker``); the workers must be
  able to import visual-lab (the same environment).
* ``slurm:OPT=V,...`` / ``pbs:OPT=V,...``: a dask-jobqueue cluster that submits batch jobs, each starting
  workers that connect back. Options (each maps to the dask-jobqueue argument of the same meaning):

  ========== ======================================================= ==========================
  jobs       number of batch jobs to start (cluster.scale(jobs=...))  1..10000, default 1
  cores      cores per job                                             1..1024, default 1
  processes  worker processes per job (cores split between them)       1..1024, default 1
  memory     memory per job, e.g. 16GB                                 required by dask-jobqueue
  walltime   job wall time, HH:MM:SS                                   default 01:00:00
  queue      partition (SLURM) / queue (PBS)
  account    account / project to charge
  interface  network interface the workers listen on, e.g. ib0
  extra      one extra job directive, e.g. extra=--gres=gpu:1 (repeatable)
  prologue   one shell command run before the worker starts, e.g. prologue=module load python (repeatable)
  ========== ======================================================= ==========================
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from backends.common import UserError

JOBQUEUE_KEYS = ("jobs", "cores", "processes", "memory", "walltime", "queue", "account", "interface")
REPEATABLE = ("extra", "prologue")
MAX_LOCAL_WORKERS = 512


@dataclass(frozen=True)
class SchedulerSpec:
    kind: str  # "none", "local", "tcp", "slurm", "pbs"
    workers: int = 0  # local: worker processes
    address: str = ""  # tcp: scheduler address
    options: dict = field(default_factory=dict)  # slurm/pbs


def parse_scheduler(text: str) -> SchedulerSpec:
    """Parse ``--scheduler``; bad text is a one-line :class:`UserError`."""
    t = text.strip()
    if t == "none":
        return SchedulerSpec("none")
    if t == "local" or t.startswith("local:"):
        n_text = t[6:] if t.startswith("local:") else ""
        if n_text and not n_text.isdigit():
            raise UserError(f"--scheduler {text!r}: local:N needs a whole number of workers")
        n = int(n_text) if n_text else (os.cpu_count() or 1)
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise UserError(f"--scheduler {text!r}: local workers must be 1..{MAX_LOCAL_WORKERS}")
        return SchedulerSpec("local", workers=n)
    if t.startswith("tcp://"):
        if (
            not re.fullmatch(r"tcp://[A-Za-z0-9.\-\[\]:]+:\d{1,5}", t)
            or not 0 < int(t.rsplit(":", 1)[1]) < 65536
        ):
            raise UserError(f"--scheduler {text!r}: expected tcp://HOST:PORT")
        return SchedulerSpec("tcp", address=t)
    for kind in ("slurm", "pbs"):
        if t == kind or t.startswith(kind + ":"):
            return SchedulerSpec(kind, options=_parse_options(text, t[len(kind) + 1 :]))
    raise UserError(f"--scheduler {text!r}: expected none, local[:N], tcp://HOST:PORT, slurm:... or pbs:...")


def _parse_options(text: str, body: str) -> dict:
    opts: dict = {"jobs": 1, "cores": 1, "processes": 1, "walltime": "01:00:00", "extra": [], "prologue": []}
    for item in filter(None, body.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not value:
            raise UserError(f"--scheduler {text!r}: option {item!r} must be KEY=VALUE")
        if key in REPEATABLE:
            opts[key].append(value)
        elif key in ("jobs", "cores", "processes"):
            hi = 10_000 if key == "jobs" else 1024
            if not value.isdigit() or not 1 <= int(value) <= hi:
                raise UserError(f"--scheduler {text!r}: {key} must be a whole number 1..{hi}")
            opts[key] = int(value)
        elif key == "walltime":
            if not re.fullmatch(r"(\d+-)?\d{1,3}:\d{2}:\d{2}", value):
                raise UserError(f"--scheduler {text!r}: walltime must be HH:MM:SS, got {value!r}")
            opts[key] = value
        elif key == "memory":
            if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B)", value, re.I):
                raise UserError(f"--scheduler {text!r}: memory must look like 16GB, got {value!r}")
            opts[key] = value
        elif key in JOBQUEUE_KEYS:
            opts[key] = value
        else:
            known = ", ".join(JOBQUEUE_KEYS + REPEATABLE)
            raise UserError(f"--scheduler {text!r}: unknown option {key!r} (known: {known})")
    if "memory" not in opts:
        raise UserError(f"--scheduler {text!r}: memory=... is required (memory per job, e.g. memory=16GB)")
    if opts["processes"] > opts["cores"]:
        raise UserError(f"--scheduler {text!r}: processes ({opts['processes']}) > cores ({opts['cores']})")
    return opts


def jobqueue_cluster(spec: SchedulerSpec):
    """The dask-jobqueue cluster for a slurm/pbs spec (jobs are not submitted until it is scaled)."""
    if spec.kind not in ("slurm", "pbs"):
        raise ValueError(f"not a job-queue scheduler: {spec.kind}")
    try:
        import dask_jobqueue
    except ImportError:
        raise UserError("slurm:/pbs: schedulers need dask-jobqueue: pip install dask-jobqueue") from None
    o = spec.options
    kw = dict(
        cores=o["cores"],
        processes=o["processes"],
        memory=o["memory"],
        walltime=o["walltime"],
        job_extra_directives=list(o["extra"]),
        job_script_prologue=list(o["prologue"]),
    )
    for key in ("queue", "account", "interface"):
        if key in o:
            kw[key] = o[key]
    cls = dask_jobqueue.SLURMCluster if spec.kind == "slurm" else dask_jobqueue.PBSCluster
    return cls(**kw)


def job_script(spec: SchedulerSpec) -> str:
    """The batch script one job would run (what ``sbatch``/``qsub`` gets), without submitting anything."""
    cluster = jobqueue_cluster(spec)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def local_cluster(workers: int, *, dashboard: bool | None = None):
    """An embedded LocalCluster: ``workers`` processes x 1 thread, scheduler and workers on 127.0.0.1."""
    from distributed import LocalCluster

    dashboard = _has_bokeh() if dashboard is None else dashboard
    with _workers_ignore_ctrl_c():
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            # the scheduler always serves HTTP (health, metrics; the dashboard when asked): on 127.0.0.1, any port
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": dashboard},
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=40,  # logging.ERROR: a study's progress line is the user's view, not worker chatter
        )


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Ctrl-C in a terminal reaches the whole process group: worker processes started meanwhile inherit an
    ignored SIGINT (so they do not print tracebacks); the client cancels and closes them itself."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def client_for(spec: SchedulerSpec) -> Iterator:
    """A Dask client for ``spec`` (None for ``none``); clusters started here are closed on exit."""
    if spec.kind == "none":
        yield None
        return
    from distributed import Client

    if spec.kind == "tcp":
        try:
            client = Client(spec.address, timeout="10s")
        except OSError as exc:
            raise UserError(f"--scheduler {spec.address}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    cluster = local_cluster(spec.workers) if spec.kind == "local" else jobqueue_cluster(spec)
    with cluster, Client(cluster) as client:
        if spec.kind in ("slurm", "pbs"):
            cluster.scale(jobs=spec.options["jobs"])
        yield client
