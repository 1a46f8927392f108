"""Batch studies on real Dask clusters, all on 127.0.0.1: an embedded LocalCluster, an external scheduler with
two worker subprocesses (one killed mid-study), and a CLI client killed mid-study then rerun."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import cloudpickle
import pytest

from backends.batch import Study
from backends.batch.schedulers import local_cluster

from . import helpers
from .helpers import REPO, SMALL_MAP, FaultyMap, assert_same_store, done_files, listening

cloudpickle.register_pickle_by_value(helpers)  # workers need not import the tests package


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _all_on_loopback(client, pids) -> None:
    """Scheduler and workers announce 127.0.0.1, and every socket these processes listen on is on it."""
    info = client.scheduler_info()
    assert info["address"].startswith("tcp://127.0.0.1:")
    assert info["workers"] and all(a.startswith("tcp://127.0.0.1:") for a in info["workers"])
    socks = listening(pids)
    assert len(socks) >= 2 * len(pids) and {ip for _, ip, _ in socks} == {"127.0.0.1"}, socks


def test_local_cluster_cancel_then_resume_is_identical(tmp_path, reference_store):
    """local:2: cancel after 3 chunks (kept), resume on the same cluster, a failing chunk named; store == none."""
    from distributed import Client

    path = tmp_path / "l.zarr"
    with local_cluster(2) as cluster, Client(cluster) as client:
        _all_on_loopback(client, [os.getpid(), *client.run(os.getpid).values()])
        study = Study(SMALL_MAP, path)
        got = []
        for res in study.results(client):
            assert res.error is None
            got.append(res.index)
            if len(got) == 3:
                study.cancel()
        assert len(got) == 3 and sorted(map(int, done_files(path))) == sorted(got)
        report = Study(SMALL_MAP, path).run(client)
        assert report.skipped == 3 and len(report.computed) == 13 and not report.failed
        assert_same_store(path, reference_store)

        bad = Study(FaultyMap(grid=12, tile=6, t_end=1.0, fail_index=1), tmp_path / "f.zarr").run(client)
        assert bad.failed == {1: "FloatingPointError: overflow in tile 1"} and sorted(bad.computed) == [
            0,
            2,
            3,
        ]


@pytest.fixture
def external_cluster():
    """`dask scheduler` and two `dask worker` processes (no nanny: killing one kills that worker). Their HTTP
    servers default to every interface (":8787", ":0"): --dashboard-address keeps them on 127.0.0.1 too."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    py = [sys.executable, "-m"]
    procs = [
        subprocess.Popen(
            py + ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                  "--dashboard-address", "127.0.0.1:0"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                py
                + [
                    "distributed.cli.dask_worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--dashboard-address",
                    "127.0.0.1:0",
                ],
                env=_env(),
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )
    try:
        yield address, procs
    finally:
        for p in procs[::-1]:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def test_external_scheduler_worker_killed_mid_study_store_identical(
    external_cluster, tmp_path, reference_store
):
    """--scheduler tcp://...: the study's own client; a worker killed (SIGKILL) after 2 of 16 chunks."""
    from distributed import Client

    address, procs = external_cluster
    workers = procs[1:]
    with Client(address, timeout="30s") as watcher:
        watcher.wait_for_workers(2, timeout=40)
        _all_on_loopback(watcher, [p.pid for p in procs])

        def kill_one(res, report):
            assert res.error is None, res.error
            if len(report.computed) == 2:
                workers[0].send_signal(signal.SIGKILL)  # mid-study: 14 chunks still to go
                workers[0].wait(10)

        report = Study(SMALL_MAP, tmp_path / "x.zarr").run(address, on_result=kill_one)
        assert sorted(report.computed) == list(range(16)) and not report.failed
        assert workers[0].returncode == -signal.SIGKILL
        assert len(watcher.scheduler_info()["workers"]) == 1  # the other worker finished the study
    assert_same_store(tmp_path / "x.zarr", reference_store)


def _run_until(cmd, out, chunks: int, sig) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 40
    while len(done_files(out)) < chunks and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(20)
    return proc


def test_cli_ctrl_c_then_killed_client_then_rerun_resumes(tmp_path, reference_store):
    """The CLI (scheduler none): Ctrl-C keeps the finished chunks; killed later; the rerun skips every finished
    chunk (their files untouched) and the store equals the reference."""
    out = tmp_path / "k.zarr"
    cmd = [sys.executable, "-m", "app", "batch", "escape-map", "--grid", "24", "--tile", "6", "--t-end", "10",
           "--scheduler", "none", "--quiet", "--out", str(out)]  # fmt: skip
    interrupted = _run_until(cmd, out, 2, signal.SIGINT)
    kept = len(done_files(out))
    assert interrupted.returncode == 130 and 2 <= kept < 16
    err = interrupted.stderr.read().strip()
    assert err.endswith(f"cancelled: {kept}/16 chunks kept in {out}; rerun the same command to resume"), err
    _run_until(cmd, out, kept + 3, signal.SIGKILL)
    finished = done_files(out)
    assert kept + 3 <= len(finished) < 16, finished
    tiles = [divmod(int(i), 4) for i in finished]  # chunk i is tile row i // 4, column i % 4
    files = [
        out / name / "c" / str(r) / str(c) for name in ("escape_time", "status", "steps") for r, c in tiles
    ]
    before = {p: p.stat().st_mtime_ns for p in files if p.exists()}
    assert len(before) >= 2 * len(finished)  # (escape_time may hold no file where no body escaped: all NaN)
    rerun = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert f"16/16 chunks ({len(finished)} resumed, {16 - len(finished)} computed)" in rerun.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # finished chunks untouched
    assert_same_store(out, reference_store)
