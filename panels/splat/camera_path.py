"""The camera-path list of the splat viewer: keyframes listed, looked through, reordered and deleted.

A widget over :class:`panels.splat.model.SplatModel`'s keyframes (the model holds them; this only shows them
and turns clicks into model calls). Problems a user can fix go to ``on_message`` as one line.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QGridLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from backends.common import UserError


class CameraPath(QWidget):
    def __init__(self, model, on_message: Callable[[str], None], parent=None) -> None:
        super().__init__(parent)
        self.model, self.on_message = model, on_message
        self.keyframe_list = QListWidget()
        self.keyframe_list.setMaximumHeight(110)
        self.keyframe_list.setToolTip("camera-path keyframes: double-click one to look through it")
        self.keyframe_list.itemDoubleClicked.connect(lambda _item: self.preview_keyframe())
        buttons = QGridLayout()
        for i, (text, slot) in enumerate(
            (
                ("Reset view", model.reset_view),
                ("Add keyframe", self.add_keyframe),
                ("Preview", self.preview_keyframe),
                ("Move up", lambda: self.move_keyframe(-1)),
                ("Move down", lambda: self.move_keyframe(+1)),
                ("Delete", self.delete_keyframe),
                ("Clear path", model.clear_keyframes),
            )
        ):
            b = QPushButton(text)
            b.clicked.connect(lambda _=False, f=slot: self._guard(f))
            buttons.addWidget(b, i // 2, i % 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(buttons)
        lay.addWidget(QLabel("<b>Camera path</b>"))
        lay.addWidget(self.keyframe_list)
        model.events.connect("keyframes", self._on_keyframes)

    def _guard(self, fn) -> None:
        try:
            fn()
        except UserError as exc:
            self.on_message(str(exc))

    def _on_keyframes(self) -> None:
        row = self.keyframe_list.currentRow()
        self.keyframe_list.clear()
        for i, k in enumerate(self.model.keyframes):
            t = ", ".join(f"{x:.2f}" for x in k.target)
            self.keyframe_list.addItem(
                f"{i + 1}. az {k.azimuth:.0f}, el {k.elevation:.0f}, dist {k.distance:.2f}, at ({t})"
            )
        self.keyframe_list.setCurrentRow(min(row, self.keyframe_list.count() - 1))

    def add_keyframe(self) -> None:
        self.model.add_keyframe()
        self.keyframe_list.setCurrentRow(len(self.model.keyframes) - 1)
        self.on_message(f"camera path: {len(self.model.keyframes)} keyframes")

    def _selected(self) -> int:
        i = self.keyframe_list.currentRow()
        if not 0 <= i < len(self.model.keyframes):
            raise UserError("select a keyframe in the camera path list first")
        return i

    def preview_keyframe(self) -> None:
        self.model.set_orbit(self.model.keyframes[self._selected()])

    def move_keyframe(self, by: int) -> None:
        i = self._selected()
        self.model.move_keyframe(i, i + by)
        self.keyframe_list.setCurrentRow(min(max(i + by, 0), len(self.model.keyframes) - 1))

    def delete_keyframe(self) -> None:
        self.model.remove_keyframe(self._selected())
