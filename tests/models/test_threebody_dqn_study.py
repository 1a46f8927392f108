"""A dqn-eval store read back as the cost–accuracy table (Qt-free): numbers computed by hand from a tiny store
whose chunk 0 is finished and whose chunk 1 holds data but is not marked done (a client killed between the
two writes): it must not count."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.batch import Study
from backends.batch.store import write_chunk
from backends.batch.workloads import DqnEval
from backends.common import UserError, drain
from panels.threebody.dqn_study import TABLE_HEADER, read_eval_store, table_columns, table_summary
from panels.threebody.model import ThreeBodyModel

ROWS = 11  # the policy and the 10 fixed etas


@pytest.fixture
def store(tmp_path):
    study = Study(DqnEval(systems=4, chunk=2), tmp_path / "d.zarr")
    g = study.open()
    k = np.arange(ROWS)[:, None]
    # chunk 0 (systems 0, 1): stepping k has |dE/E| 10^-(k+1) * (10, 1/10), evals 100 k + (0, 20), k % 2 blow-ups
    de = 10.0 ** -(k + 1.0) * np.array([[10.0, 0.1]])
    evals = 100 * k + np.array([[0, 20]])
    write_chunk(g, 0, study.region(0), {"de": de, "evals": evals, "blowups": (k % 2).astype("int32")})
    g["de"][:, 2:4] = 1.0  # chunk 1: written, never marked done
    g["evals"][:, 2:4] = 10**6
    g["blowups"][:, 1:2] = 7
    return study.store


def test_table_from_finished_chunks_by_hand(store):
    stored = drain(read_eval_store(store))
    assert stored.chunks == (1, 2)
    rows = stored.rows
    assert [r.stepping for r in rows][:3] == [
        "policy",
        "eta=0.0001",
        "eta=0.000215443",
    ]  # params["steppings"]
    for k, r in enumerate(rows):
        assert r.systems == 2
        assert r.mean_evals == pytest.approx(100 * k + 10)  # (100k + 100k + 20) / 2
        assert r.log_mean_de == pytest.approx(10.0 ** -(k + 1), rel=1e-12)  # sqrt(10 * 0.1) * 10^-(k+1)
        assert r.blowups == k % 2
    text = table_summary(stored)
    assert text.startswith("1/2 chunks, 2/4 systems; blow-ups: policy 0, fixed etas 5;")
    # the fixed eta nearest in cost to the policy (10 evals) is eta=0.0001 (110)
    assert "policy 1.00e-01 at 10 evals vs eta=0.0001 1.00e-02 at 110" in text


def test_model_columns_and_no_study_error(store):
    m = ThreeBodyModel()
    with pytest.raises(UserError, match="no dqn-eval study yet"):
        m.dqn_columns()
    events = []
    m.events.connect("dqn_study", lambda **_: events.append(1))
    m.show_dqn_study(drain(read_eval_store(store)))
    header, cols = m.dqn_columns()
    assert header == TABLE_HEADER and events == [1]
    assert list(cols[0][:2]) == ["policy", "eta=0.0001"]
    np.testing.assert_allclose(cols[3], 10.0 ** -(np.arange(ROWS) + 1.0), rtol=1e-12)
    assert [len(c) for c in table_columns(m.dqn_rows)] == [ROWS] * 5


def test_an_empty_store_shows_nothing_yet(tmp_path):
    study = Study(DqnEval(systems=3, chunk=2), tmp_path / "e.zarr")
    study.open()
    stored = drain(read_eval_store(study.store))
    assert stored.chunks == (0, 2) and all(r.systems == 0 for r in stored.rows)
    assert table_summary(stored) == "0/2 chunks, 0/3 systems finished: nothing to show yet"


def test_foreign_or_corrupt_stores_are_refused(store, tmp_path):
    doc_path = store / "zarr.json"
    doc = json.loads(doc_path.read_text())
    doc["attributes"]["visual_lab_batch"]["params"]["chunk"] = 0
    doc_path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"corrupt study parameters \(--chunk must be a whole number"):
        drain(read_eval_store(store))
    doc["attributes"]["visual_lab_batch"]["workload"] = "escape-map"
    doc_path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="holds a 'escape-map' study, not a dqn-eval"):
        drain(read_eval_store(store))
