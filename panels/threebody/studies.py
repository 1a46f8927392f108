"""The three-body panel's batch studies (wiring, mixed into :class:`panels.threebody.panel.ThreeBodyPanel`):
the escape map computed as a study that fills in tile by tile, and escape-map / dqn-eval stores opened from
File > Open study…. The reading and tiling are Qt-free (:mod:`.escape_study`, :mod:`.dqn_study`); the results go
to the model on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from app.export import export_plot
from backends.batch.places import default_store, studies_dir
from backends.batch.study import Study, StudyReport
from backends.common import UserError
from backends.safeio import write_npz
from panels.study import run_study, where
from panels.threebody.dqn_study import StoredEval, eval_workload, read_eval_store, table_summary
from panels.threebody.escape_study import StoredMap, escape_workload, map_summary, prepare, read_store
from panels.threebody.model import ENS_ARRAYS


def _failures(failed: dict[int, str]) -> str:
    """Failed chunks named for the status line (the first three)."""
    shown = "; ".join(f"chunk {i} failed: {e}" for i, e in sorted(failed.items())[:3])
    return f"{len(failed)} tile(s) failed ({shown}{'; …' if len(failed) > 3 else ''})"


class EnsembleStudies:
    """Needs ``model``, ``tasks``, ``status``, ``tabs``, ``ensemble_map`` and ``rewards`` of the panel."""

    # -- the escape map: a batch study --------------------------------------------------------------------
    def ensemble_store(self, workload) -> Path:
        """Where Compute escape map writes: the store shown when it holds this very study (pressing again
        resumes it), else the per-user store of these parameters."""
        m = self.model
        if m.ens_store and m.ens_workload == workload:
            return Path(m.ens_store)
        return default_store(workload, label=f"{workload.grid}x{workload.shape[0]}-t{workload.t_end:g}")

    def start_ensemble(self, store: Path | str | None = None) -> None:
        """Run the escape map of the parameters as a batch study into ``store`` (default: :meth:`ensemble_store`):
        open (or create) the store, show what it holds, compute the missing tiles."""
        try:
            workload = self.model.ens_workload_of_params()
        except UserError as exc:
            self.status.emit(str(exc))
            return
        study = Study(workload, Path(store) if store else self.ensemble_store(workload))
        self.model.set_ensemble_message(f"opening {study.store} …")
        self.tasks.submit(
            prepare,
            study,
            group="ensemble",
            label="escape map store",
            on_done=lambda stored: stored is not None and self._run_study(study, stored),
            on_error=self._ensemble_failed,
        )

    def _choose_store(self) -> None:
        try:
            workload = self.model.ens_workload_of_params()
        except UserError as exc:
            self.status.emit(str(exc))
            return
        start = str(self.ensemble_store(workload)) if studies_dir().is_dir() else "escape-map.zarr"
        path, _ = QFileDialog.getSaveFileName(
            self, "Compute the escape map into a store", start, "Zarr store (*.zarr)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # an existing store of this study resumes
        )  # fmt: skip
        if path:
            p = Path(path)
            self.start_ensemble(p if p.suffix == ".zarr" else p.with_name(p.name + ".zarr"))

    def _run_study(self, study: Study, stored: StoredMap) -> None:
        m, here = self.model, where()
        done, total = stored.tiles
        if done == total:
            m.show_study(stored, f"{map_summary(stored.result, stored.tiles)}; complete in {study.store}")
            self.status.emit(f"escape map: all {total} tiles already in {study.store}")
            return
        m.show_study(stored, f"{done}/{total} tiles, computing the rest {here}; store {study.store}")
        self.status.emit(
            f"escape map: {total - done} of {total} tiles to compute {here}; store {study.store}"
        )
        failed: dict[int, str] = {}

        def on_tiles(results) -> None:
            for r in results:
                if r.error is not None:
                    failed[r.index] = r.error
                    self.status.emit(f"escape map: chunk {r.index} failed: {r.error}")
            m.put_tiles([(study.region(r.index), r.arrays) for r in results if r.error is None])
            if failed:
                m.set_ensemble_message(f"{m.ens_message}; {_failures(failed)}")

        def on_done(report: StudyReport | None) -> None:
            if report is None:
                return
            text = (
                f"escape map: {report.done}/{report.total} tiles ({report.skipped} resumed, "
                f"{len(report.computed)} computed {here} in {report.wall_s:.1f} s); store {study.store}"
            )
            if report.failed:
                text += f"; {_failures(report.failed)}: press Compute escape map to retry"
            m.set_ensemble_message(map_summary(m.ensemble, m.ens_tiles) + f"; store {study.store}")
            self.status.emit(text)

        run_study(
            self,
            study,
            on_tiles,
            on_done,
            self._ensemble_failed,
            group="ensemble",
            label=f"escape map {here}",
        )

    def _ensemble_failed(self, message: str) -> None:
        self.model.set_ensemble_message(f"escape map not computed: {message}")
        self.status.emit(message)

    def open_study(self, path: Path, meta: dict) -> None:
        """Show an escape-map store (partial or finished); when the form can describe its study, the form
        follows it, so Compute escape map resumes it. A dqn-eval store goes to Learned stepping."""
        if meta.get("workload") == "dqn-eval":
            self._open_dqn_study(Path(path), meta)
            return
        escape_workload(meta)  # a corrupt or foreign meta is refused here, before any reading
        self.tabs.setCurrentWidget(self.ensemble_map)
        self.model.set_ensemble_message(f"reading {path} …")
        self.tasks.submit(
            read_store,
            Path(path),
            group="ensemble",
            label=f"open {Path(path).name}",
            on_done=lambda stored: stored is not None and self._show_opened(stored),
            on_error=self._ensemble_failed,
        )

    def _show_opened(self, stored: StoredMap) -> None:
        m, w = self.model, stored.workload
        try:
            m.set_params(ens_n=w.grid, ens_t_end=float(w.t_end), ens_tile=w.tile)
            resumable = stored.seed == 0 and m.ens_workload_of_params() == w
        except UserError:
            resumable = False
        done, total = stored.tiles
        text = f"{map_summary(stored.result, stored.tiles)}; store {stored.path}"
        if done < total:
            text += (
                "; press Compute escape map to finish it"
                if resumable
                else f"; finish it with `visual-lab batch resume {stored.path}`"
            )
        m.show_study(stored, text)
        self.status.emit(f"opened {stored.path}: {done}/{total} tiles")

    def _open_dqn_study(self, path: Path, meta: dict) -> None:
        eval_workload(meta)  # a corrupt meta is refused here, before any reading
        self.tabs.setCurrentWidget(self.rewards)
        self.tasks.submit(
            read_eval_store,
            path,
            group="dqn-study",
            label=f"open {path.name}",
            on_done=lambda stored: stored is not None and self._show_dqn_study(stored),
            on_error=self.status.emit,
        )

    def _show_dqn_study(self, stored: StoredEval) -> None:
        done, total = stored.chunks
        text = table_summary(stored) + f"; store {stored.path}"
        if done < total:
            text += f"; finish it with `visual-lab batch resume {stored.path}`"
        self.model.show_dqn_study(stored, text)
        self.status.emit(f"opened {stored.path}: {done}/{total} chunks")

    # -- exports of what the studies show ---
    def _ensemble(self):
        if self.model.ensemble is None:
            raise UserError("no escape map yet: press Compute escape map in the Ensemble map tab")
        return self.model.ensemble

    def _write_ens_png(self, path: Path) -> None:
        self._ensemble()
        export_plot(self.ensemble_map.plot, path)

    def _write_ens_npz(self, path: Path) -> None:
        r = self._ensemble()
        write_npz(path, **{k: getattr(r, k) for k in ENS_ARRAYS}, t_end=np.float64(r.t_end))

    def _write_dqn_plot(self, path: Path) -> None:
        self.model.dqn_columns()  # no study yet: one clear line
        export_plot(self.rewards.study_plot, path)
