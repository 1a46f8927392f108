"""The diffusion panel's NFE sweep (wiring, mixed into :class:`panels.diffusion.panel.DiffusionPanel`): the
samplers of the model shown swept over NFE as an ``nfe-sweep`` batch study whose points stream into the plot,
LightSB's one sampler swept in a worker, and sweep stores opened from File > Open study…. The workload and the
store reading are Qt-free (:mod:`.sweep`).
"""

from __future__ import annotations

from pathlib import Path

from backends.batch.store import read_meta
from backends.batch.study import Study
from backends.common import UserError
from backends.diffusion.live import curves_job, model_for
from panels.study import refuse, report_line, run_study, where

from .sweep import SWEEP_COUNT, chunk_point, describe, store_points, study_for, sweep_workload


class NFESweepStudies:
    """Needs ``model``, ``tasks``, ``study_dir``, ``study`` and ``_say`` of the panel."""

    def compare(
        self,
        *,
        nfes: tuple[int, ...] | None = None,
        samplers: tuple[str, ...] | None = None,
        count: int = SWEEP_COUNT,
    ) -> Study | None:
        """The NFE-vs-sliced-W2 curves of every sampler of the model shown, as an ``nfe-sweep`` study: on the
        cluster (Compute > Cluster…) or in this process, points (mean and spread over the seeds) appear as
        chunks land; the store is kept, so pressing it again resumes (LightSB, one sampler: in the panel)."""
        m = self.model
        if m.params.model == "lightsb":
            return self._compare_in_panel()
        try:
            work = sweep_workload(
                m, self.study_dir, seeds=m.params.sweep_seeds, count=count, nfes=nfes, samplers=samplers
            )
        except (UserError, OSError) as exc:
            self._say(str(exc))
            return None
        try:
            study = study_for(work, m.params.seed, self.study_dir)
            study.open()  # creates the store, or opens it to resume (another study there: refused)
            meta = read_meta(study.store)
            old, done, total = store_points(study.store, meta)
        except (UserError, OSError) as exc:
            self._refuse(str(exc))
            return None
        about = f"{m.params.model} on {m.params.dataset}, {work.seeds} seed" + "s" * (work.seeds > 1)
        m.set_curves([])
        m.put_curve_points(old, about)
        self.study = study
        self._say(f"NFE sweep {where()}: {done}/{total} chunks already in {study.store}")

        def on_chunks(results) -> None:
            failed = [f"chunk {r.index} failed: {r.error}" for r in results if r.error is not None]
            got = [
                chunk_point(work.samplers, len(work.nfes), r.index, r.arrays)
                for r in results
                if r.error is None
            ]
            if got:
                m.put_curve_points(got, about)
            if failed:
                self._say("; ".join(failed))

        run_study(self, study, on_chunks, on_done=self._on_sweep_done, on_error=self._say, group="sweep",
                  label="NFE sweep")  # fmt: skip
        return study

    def _on_sweep_done(self, report) -> None:
        text = report_line("NFE sweep", report, again="press NFE sweep")
        self._say(f"{text}. Store: {self.study.store if self.study else ''}")

    def _refuse(self, msg: str) -> None:
        """A study that cannot start (a store holding another study, missing data): one line, in a dialog."""
        self._say(msg)
        self._dialog = refuse(self, "NFE sweep", msg)

    def _compare_in_panel(self) -> None:
        """LightSB's one sampler, swept in a worker of this panel (no study store)."""
        m = self.model
        try:
            if not m.can_sample():
                raise UserError("train a model first to compare samplers")
            gen = model_for(m.weights, m.dataset(), m.params.model, m.interpolant())
        except UserError as exc:
            self._say(str(exc))
            return
        m.set_curves([])
        self.tasks.submit(
            curves_job, gen, m.dataset(), m.sample_config(), group="sweep", label="NFE sweep",
            on_yield=m.set_curves, on_done=m.set_curves, on_error=self._say,
        )  # fmt: skip

    def open_study(self, path: Path, meta: dict) -> None:
        """Plot an ``nfe-sweep`` store's curves (finished chunks only; the model shown is not changed)."""
        points, done, total = store_points(Path(path), meta)
        self.tasks.cancel("sweep")
        self.model.set_curves([])
        self.model.put_curve_points(points, f"{Path(path).name}: {describe(meta)}")
        self._say(f"study {Path(path).name}: {done}/{total} chunks")
