"""The trajectory panel's scene sweep (wiring, mixed into :class:`panels.trajectory.panel.TrajectoryPanel`):
the model shown (and a constant-velocity baseline) run over scenes × seeds as ``trajectory-sweep`` batch
studies whose table fills in as chunks land, sweep stores opened from File > Open study…, and the table's CSV.
The workloads and the store reading are Qt-free (:mod:`.sweep`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.export import save_csv
from backends.batch.store import read_meta
from backends.common import UserError
from panels.study import refuse, report_line, run_study, where
from panels.trajectory.sweep import TABLE_HEADER, SceneSweep, read_store, study_for, sweep_workloads


class SceneSweepStudies:
    """Needs ``model``, ``tasks``, ``plots``, ``study_dir``, ``stop_button`` and ``_report`` of the panel."""

    def sweep(self, scenes: tuple[str, ...] = ()) -> dict:
        """Run the scene sweep (and its constant-velocity baseline) as ``trajectory-sweep`` studies, on the
        cluster or in this process; the table fills in as chunks land. Pressing it again with the same
        settings resumes the stores. ``scenes``: a subset (default: every scene of the folder)."""
        p = self.model.params
        try:
            main, base = sweep_workloads(p, p.sweep_seeds, scenes)
            studies = {"sweep": study_for(main, p.seed, self.study_dir)}
            if base is not None:
                studies["baseline"] = study_for(base, 0, self.study_dir)
            self.study_dir.mkdir(parents=True, exist_ok=True)
            stored = {}
            for kind, st in studies.items():
                st.open()  # create, or open to resume (a store of another study: refused)
                stored[kind] = read_store(st.store, read_meta(st.store))
        except (UserError, OSError) as exc:
            self._refuse(str(exc))
            return {}
        self.tasks.cancel("sweep")
        self.tasks.cancel("baseline")
        scenes_main, model, seeds, arrays, _ = stored["sweep"]
        sweep = SceneSweep(model, scenes_main, seeds, arrays, stores=[str(s.store) for s in studies.values()])
        if "baseline" in stored:
            b_scenes, _, _, b_arrays, b_done = stored["baseline"]
            sweep.put_baselines(b_scenes, b_arrays, b_done)
        self.model.set_sweep(sweep)
        self.plots.setCurrentWidget(self.plots.sweep_tab)
        self._report(
            f"scene sweep {where()}: {sweep.done}/{sweep.total} runs already in {studies['sweep'].store}"
        )
        self.studies = studies
        for kind, st in studies.items():
            run_study(
                self, st, lambda res, kind=kind, st=st: self._on_sweep_chunks(kind, st, res),
                on_done=lambda rep, kind=kind: self._on_sweep_done(kind, rep), on_error=self._report,
                group=kind, label="scene sweep" if kind == "sweep" else "CV baseline",
            )  # fmt: skip
        self.stop_button.setEnabled(True)  # Stop cancels the studies' futures (finished runs stay stored)
        return studies

    def _on_sweep_chunks(self, kind: str, study, results) -> None:
        ok = [(r.index, r.arrays) for r in results if r.error is None]
        scenes = None if kind == "sweep" else list(study.workload.scene_list())
        self.model.put_sweep_chunks(ok, scenes)
        failed = [f"{kind} chunk {r.index} failed: {r.error}" for r in results if r.error is not None]
        if failed:
            self._report("; ".join(failed))

    def _on_sweep_done(self, kind: str, report) -> None:
        if kind != "sweep":
            return
        if self.model.training is None:
            self.stop_button.setEnabled(False)
        text = report_line("scene sweep", report, unit="runs", again="press Sweep again")
        self._report(text)

    def _refuse(self, msg: str) -> None:
        """A sweep that cannot start (no data folder, a store holding another study): one line, in a dialog."""
        self._report(msg)
        self._dialog = refuse(self, "Scene sweep", msg)

    def open_study(self, path: Path, meta: dict) -> None:
        """Show a ``trajectory-sweep`` store's table (finished chunks only)."""
        scenes, model, seeds, arrays, done = read_store(Path(path), meta)
        self.tasks.cancel("sweep")
        self.tasks.cancel("baseline")
        self.model.set_sweep(SceneSweep(model, scenes, seeds, arrays, stores=[str(path)]))
        self.plots.setCurrentWidget(self.plots.sweep_tab)
        self._report(f"study {Path(path).name}: {int(done.sum())}/{done.size} runs of {model}")

    def _write_sweep_csv(self, path: Path) -> None:
        """The scene sweep table: per scene the seeds done, mean and std (ddof 1) of minADE/minFDE, CV."""
        sw = self.model.sweep
        if sw is None:
            raise UserError("no scene sweep to export: press Sweep scenes × seeds (or open a study)")
        rows = sw.rows()
        save_csv(
            path,
            TABLE_HEADER,
            [np.array([r[c] for r in rows], dtype=object) for c in range(len(TABLE_HEADER))],
        )
