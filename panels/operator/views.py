"""The operator panel's pictures: rows of image tiles with one shared colour bar, drawn from the model.

Three views in tabs: the selected test sample (input | truth | prediction | error), the Navier-Stokes rollout
(solver | operator | difference with the error against time) and the zero-shot view (the same four tiles at n
and at the fine grid, with the numbers). Each redraws only from :class:`~panels.operator.model.OperatorLab`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from panels.operator.render import ROLLOUT_TITLES, TITLES, shared_limits
from panels.widgets import make_plot


class TileGrid(pg.GraphicsLayoutWidget):
    """Rows of ImageItems (each in its own zoomable ViewBox) and one colour bar; ``items[title]``."""

    def __init__(self, rows: list[list[str]], grey_cols: tuple[int, ...] = ()):
        super().__init__()
        self.setBackground("#101418")
        self.items: dict[str, pg.ImageItem] = {}
        self.grey: set[str] = set()
        for r, row in enumerate(rows):
            for i, title in enumerate(row):
                vb = self.addViewBox(row=2 * r, col=i, lockAspect=True)
                vb.invertY(True)
                item = pg.ImageItem()
                vb.addItem(item)
                self.addLabel(title, row=2 * r + 1, col=i, color="#dddddd")
                self.items[title] = item
                if i in grey_cols:
                    item.setColorMap(pg.colormap.get("CET-L1"))
                    self.grey.add(title)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False)
        self.colorbar.setImageItem([it for t, it in self.items.items() if t not in self.grey])
        self.addItem(self.colorbar, row=0, col=max(len(r) for r in rows), rowspan=2 * len(rows))

    def show_fields(self, fields: dict[str, np.ndarray | None], limits: tuple[float, float]) -> None:
        """Draw ``fields[title]`` ((y, x) arrays; None clears); grey tiles on their own range."""
        for title, a in fields.items():
            item = self.items[title]
            if a is None:
                item.clear()
                continue
            levels = (float(a.min()), float(a.max()) or 1.0) if title in self.grey else limits
            item.setImage(np.asarray(a).T, levels=levels)  # ImageItem indexes [x, y]
        self.colorbar.setLevels(limits)


class RolloutView(QWidget):
    """solver | operator | difference at the latest step, and the relative L2 error against time."""

    def __init__(self):
        super().__init__()
        self.tiles = TileGrid([list(ROLLOUT_TITLES)])
        self.plot = make_plot("Rollout error", "time t", "relative L2 (operator vs solver)")
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=4)
        self.start_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888888", style=pg.QtCore.Qt.DashLine))
        self.plot.addItem(self.start_line)
        self.info = QLabel("Train on Navier-Stokes data, pick a test sample, press Roll out.")
        self.info.setWordWrap(True)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.tiles, 3)
        v.addWidget(self.plot, 2)
        v.addWidget(self.info)

    def draw(self, model) -> None:
        r = model.rollout
        f = model.rollout_fields()
        if r is None or f is None:
            for it in self.tiles.items.values():
                it.clear()
            self.curve.setData([], [])
            return
        self.tiles.show_fields({k: f[k] for k in ROLLOUT_TITLES}, r.limits())
        self.curve.setData([s.t for s in r.steps], [s.rel_l2 for s in r.steps])
        self.start_line.setValue(r.t_in - 1)
        last = r.steps[-1]
        self.info.setText(
            f"test sample {r.sample}: t = {last.t} ({len(r.steps) - r.t_in} predicted steps after "
            f"{r.t_in} given); relative L2 {last.rel_l2:.4f}"
        )


class ZeroShotView(QWidget):
    """The four tiles at n (top) and at the fine grid (bottom), one colour bar, and the numbers."""

    def __init__(self):
        super().__init__()
        self.tiles = TileGrid([[f"{t} (n)" for t in TITLES], [f"{t} (fine)" for t in TITLES]], grey_cols=(0,))
        self.info = QLabel("Train a model, then press Zero-shot 2n.")
        self.info.setWordWrap(True)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.tiles, 1)
        v.addWidget(self.info)

    def draw(self, model) -> None:
        rows = model.zeroshot_fields()
        if rows is None:
            for it in self.tiles.items.values():
                it.clear()
            self.info.setText("Train a model, then press Zero-shot 2n.")
            return
        coarse, fine = rows
        (a, b), (c, d) = shared_limits(coarse), shared_limits(fine)
        fields = {f"{t} (n)": coarse[t] for t in TITLES} | {f"{t} (fine)": fine[t] for t in TITLES}
        self.tiles.show_fields(fields, (min(a, c), max(b, d)))
        self.info.setText(zeroshot_text(model.zeroshot))


def zeroshot_text(z) -> str:
    """The zero-shot numbers in one paragraph (also what the panel's summary shows)."""
    return (
        f"trained at {z.n}x{z.n}, {len(z.fine)} samples at {z.m}x{z.m}: relative L2 at n {z.rel_l2_n:.4f}; "
        f"at {z.m} directly {z.rel_l2_fine:.4f}; the prediction at n interpolated to {z.m}: {z.rel_l2_up:.4f}; "
        f"direct vs interpolated differ by {z.gap:.4f} (relative)"
    )
