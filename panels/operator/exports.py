"""The panel's data exports: test predictions (NPZ), training metrics (CSV), weights (checkpoint directory),
the rollout (NPZ of the predicted and true sequences, CSV of the error against time) and the zero-shot tiles
(PNG). Written from the model through the shell's atomic writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.export import save_csv, save_npz, save_png
from backends.common import UserError
from backends.operator import checkpoint
from panels.operator.model import OperatorLab
from panels.operator.render import compose_zeroshot

ZEROSHOT_PNG_SIZE = (1600, 800)


def write_predictions(model: OperatorLab, path: Path) -> None:
    """x, y, prediction and per-sample rel_l2 of the test set."""
    if model.prediction is None:
        raise UserError("no predictions yet: press Train (or load weights) first")
    t = model.test_data
    save_npz(path, x=t.x, y=t.y, prediction=model.prediction, rel_l2=model.test_errors())


def write_metrics(model: OperatorLab, path: Path) -> None:
    """One row per epoch (training, then refinement): the EpochStats columns."""
    if not model.history:
        raise UserError("no training history yet: press Train")
    names, cols = model.metrics_columns()
    save_csv(path, names, cols)


def write_weights(model: OperatorLab, path: Path) -> None:
    net = model.network()
    if net is None:
        raise UserError("no model yet: press Train first")
    checkpoint.save(path, net, {"n_test": len(model.test_data)})


def _rollout(model: OperatorLab):
    r = model.rollout
    if r is None or not r.steps:
        raise UserError("no rollout yet: train on Navier-Stokes data and press Roll out")
    return r, *r.arrays()


def write_rollout_npz(model: OperatorLab, path: Path) -> None:
    """t (T,), truth and prediction (T, n, n), rel_l2 (T,), t_in and the test sample it started from."""
    r, t, truth, pred, err = _rollout(model)
    save_npz(
        path, t=t, truth=truth, prediction=pred, rel_l2=err, t_in=np.int64(r.t_in), sample=np.int64(r.sample)
    )


def write_rollout_csv(model: OperatorLab, path: Path) -> None:
    """Columns t, rel_l2, given (1 for the input snapshots, whose error is 0 by construction)."""
    r, t, _truth, _pred, err = _rollout(model)
    save_csv(path, ["t", "rel_l2", "given"], [t, err, (t < r.t_in).astype(int)])


def write_zeroshot_png(model: OperatorLab, path: Path) -> None:
    rows = model.zeroshot_fields()
    if rows is None:
        raise UserError("no zero-shot result yet: press Zero-shot 2n")
    save_png(path, compose_zeroshot(*rows, ZEROSHOT_PNG_SIZE))
