"""Pedestrian trajectory data: ETH/UCY text files, user CSV files, Social-GAN windowing, leave-one-out splits.

Conventions (Social-GAN ``TrajectoryDataset``, reused unchanged by EigenTrajectory ``utils/dataloader.py``):

* a file holds rows ``frame  ped  x  y`` (tab separated, metres); one annotation step is 0.4 s;
* the time axis is the sorted list of *unique* frame ids of the file (gaps in frame ids are ignored);
* windows of ``seq_len = obs_len + pred_len = 20`` consecutive time indices start at every index
  (``skip = 1``);
* a pedestrian is kept in a window only when it is present at all 20 time indices;
* a window is kept only when it holds more than ``min_ped = 1`` such pedestrians (i.e. >= 2);
* positions are rounded to 4 decimals (``np.around(..., 4)``) as in the reference loader.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.common import UserError

SCENES = ("eth", "hotel", "univ", "zara1", "zara2")
PHASES = ("train", "val", "test")
STEP_SECONDS = 0.4


# -- raw tracks ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tracks:
    """All annotations of one recording: ``rows`` is (M, 4) float64 = frame, ped, x, y, sorted by frame."""

    name: str
    rows: np.ndarray

    @property
    def frames(self) -> np.ndarray:
        return np.unique(self.rows[:, 0])

    def at_frame(self, frame: float) -> np.ndarray:
        """(n, 3) ped, x, y of everybody annotated at ``frame``."""
        sel = self.rows[:, 0] == frame
        return self.rows[sel][:, 1:4]


def _check_duplicates(rows: np.ndarray, lines: np.ndarray, path: Path) -> None:
    key = np.stack([rows[:, 0], rows[:, 1]], axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    k = key[order]
    dup = np.nonzero(np.all(k[1:] == k[:-1], axis=1))[0]
    if dup.size:
        i, j = order[dup[0]], order[dup[0] + 1]
        raise UserError(
            f"{path}: line {lines[j]}: duplicated frame {k[dup[0], 0]:g} for pedestrian "
            f"{k[dup[0], 1]:g} (first seen on line {lines[i]})"
        )


MAX_FILE_BYTES = 2 * 2**30  # text files larger than this are refused before reading


def _read_text(p: Path) -> str:
    from backends.safeio import read_text

    return read_text(p, "trajectory file", max_bytes=MAX_FILE_BYTES)


def read_ethucy(path: str | Path) -> Tracks:
    """Read a standard ETH/UCY file (``frame ped x y``, tab or whitespace separated).

    Raises :class:`UserError` naming the file and line for malformed rows, non-numeric or non-finite
    values, and a pedestrian annotated twice in the same frame. A well-formed file is parsed by NumPy's C
    reader (a million rows in about a second); any problem is located by the line-by-line reader.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    text = _read_text(p)
    arr = _fast_rows(text)
    if arr is None:
        arr, ln = _slow_rows(text, p)
        _check_duplicates(arr, ln, p)
    elif _has_duplicates(arr):
        _check_duplicates(*_slow_rows(text, p), p)
    order = np.argsort(arr[:, 0], kind="stable")
    return Tracks(p.stem, arr[order])


def _fast_rows(text: str) -> np.ndarray | None:
    """(M, 4) rows when every non-comment line holds 4 finite numbers, else None (let the slow path say why)."""
    import io
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "empty input": handled below
            arr = np.loadtxt(io.StringIO(text), dtype=np.float64, comments="#", ndmin=2)
    except (ValueError, IndexError):
        return None
    if arr.ndim != 2 or arr.shape[1] != 4 or len(arr) == 0 or not np.all(np.isfinite(arr)):
        return None
    return arr


def _has_duplicates(rows: np.ndarray) -> bool:
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    k = rows[order, :2]
    return bool(np.any(np.all(k[1:] == k[:-1], axis=1)))


def _slow_rows(text: str, p: Path) -> tuple[np.ndarray, np.ndarray]:
    rows, lines = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split("\t") if "\t" in s else s.split()
        if len(parts) != 4:
            raise UserError(
                f"{p}: line {n}: expected 4 tab-separated columns (frame, ped, x, y), "
                f"got {len(parts)}: {s[:60]!r}"
            )
        try:
            vals = [float(v) for v in parts]
        except ValueError:
            raise UserError(f"{p}: line {n}: non-numeric value in {s[:60]!r}") from None
        if not all(np.isfinite(vals)):
            raise UserError(f"{p}: line {n}: NaN or infinite value in {s[:60]!r}")
        rows.append(vals)
        lines.append(n)
    if not rows:
        raise UserError(f"{p}: file holds no trajectory rows")
    return np.asarray(rows, dtype=np.float64), np.asarray(lines)


def read_csv_tracks(
    path: str | Path,
    *,
    frame_col: str | int = "frame",
    ped_col: str | int = "ped",
    x_col: str | int = "x",
    y_col: str | int = "y",
    fps: float = 2.5,
    delimiter: str = ",",
    target_step: float = STEP_SECONDS,
) -> Tracks:
    """Read a user CSV with named (header) or numbered columns; ``fps`` is the frame rate of the frame
    column. Rows are resampled to ``target_step`` seconds (0.4 s, the ETH/UCY rate): only frames on that
    grid (relative to the first frame) are kept, and frame ids are rewritten as ``10 * step index``."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    if not (np.isfinite(fps) and 1e-3 <= fps <= 1e4):
        raise UserError(f"frame rate (--fps) must be in 0.001..10000 frames per second, got {fps}")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise UserError(
            f"CSV delimiter (--delimiter) must be one character other than a quote or newline, got {delimiter!r}"
        )
    for c in (frame_col, ped_col, x_col, y_col):
        if isinstance(c, int) and not 0 <= c < 10_000:
            raise UserError(f"CSV column number {c} out of range 0..9999")
    text = _read_text(p)
    lines_iter = iter(enumerate(text.splitlines(), start=1))
    first_n, first = next(((n, ln) for n, ln in lines_iter if ln.strip()), (0, ""))
    if not first:
        raise UserError(f"{p}: file is empty")
    cols = [frame_col, ped_col, x_col, y_col]
    skip = 0
    if any(isinstance(c, str) for c in cols):
        try:
            header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
        except csv.Error as exc:
            raise UserError(f"{p}: line {first_n}: malformed CSV header ({exc})") from None
        idx = []
        for c in cols:
            if isinstance(c, int):
                idx.append(c)
            elif c in header:
                idx.append(header.index(c))
            else:
                raise UserError(f"{p}: line {first_n}: column {c!r} not in header {header[:20]}")
        skip = first_n
    else:
        idx = [int(c) for c in cols]
    arr = _fast_csv(text, delimiter, skip, idx)
    if arr is None or _has_duplicates(arr):
        arr, lines = _slow_csv(text, p, delimiter, skip, idx)
        _check_duplicates(arr, lines, p)
    t = (arr[:, 0] - arr[:, 0].min()) / fps
    k = np.round(t / target_step)
    on_grid = np.abs(t - k * target_step) < 0.25 / fps + 1e-9
    arr = arr[on_grid]
    if arr.size == 0:
        raise UserError(f"{p}: no rows on the {target_step} s grid at {fps} fps")
    arr[:, 0] = 10.0 * k[on_grid]
    order = np.argsort(arr[:, 0], kind="stable")
    return Tracks(p.stem, arr[order])


def _fast_csv(text: str, delimiter: str, skip: int, idx: list[int]) -> np.ndarray | None:
    """NumPy's C reader for a well-formed file (seconds for a million rows); None when anything is off."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(
                io.StringIO(text),
                delimiter=delimiter,
                skiprows=skip,
                usecols=idx,
                ndmin=2,
                comments=None,
                quotechar='"',
                dtype=np.float64,
            )
    except (ValueError, IndexError):
        return None
    if arr.shape[0] == 0 or arr.shape[1] != 4 or not np.all(np.isfinite(arr)):
        return None
    return arr


def _slow_csv(text: str, p: Path, delimiter: str, skip: int, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Row by row, to name the line and the problem."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, lines = [], []
    try:
        for n, r in enumerate(reader, start=1):
            if n <= skip or not r or not any(c.strip() for c in r):
                continue
            if max(idx) >= len(r):
                raise UserError(f"{p}: line {n}: expected at least {max(idx) + 1} columns, got {len(r)}")
            try:
                vals = [float(r[i]) for i in idx]
            except ValueError:
                raise UserError(f"{p}: line {n}: non-numeric value in {delimiter.join(r)[:60]!r}") from None
            if not all(np.isfinite(vals)):
                raise UserError(f"{p}: line {n}: NaN or infinite value")
            rows.append(vals)
            lines.append(n)
    except csv.Error as exc:
        raise UserError(f"{p}: line {reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise UserError(f"{p}: no data rows")
    return np.asarray(rows, dtype=np.float64), np.asarray(lines)


# -- windows ---------------------------------------------------------------------------------------------
@dataclass
class Windows:
    """Social-GAN windows, concatenated: agent arrays (N, ...) and per-window offsets ``starts`` (W + 1)."""

    obs: np.ndarray  # (N, obs_len, 2) float32
    pred: np.ndarray  # (N, pred_len, 2) float32
    starts: np.ndarray  # (W + 1,) int64 offsets into the agent axis
    ped_ids: np.ndarray  # (N,)
    frames: np.ndarray  # (W, seq_len) frame ids of each window
    source: np.ndarray  # (W,) index into ``names``
    names: list[str] = field(default_factory=list)

    @property
    def num_windows(self) -> int:
        return len(self.starts) - 1

    @property
    def num_agents(self) -> int:
        return int(self.obs.shape[0])

    def window(self, w: int) -> slice:
        return slice(int(self.starts[w]), int(self.starts[w + 1]))

    def window_index(self) -> np.ndarray:
        """(N,) window index of every agent."""
        return np.repeat(np.arange(self.num_windows), np.diff(self.starts))

    def subset(self, windows: np.ndarray) -> Windows:
        windows = np.asarray(windows, dtype=int)
        sl = [np.arange(self.starts[w], self.starts[w + 1]) for w in windows]
        idx = np.concatenate(sl) if sl else np.zeros(0, int)
        counts = np.array([len(s) for s in sl], dtype=np.int64)
        return Windows(
            self.obs[idx],
            self.pred[idx],
            np.concatenate([[0], np.cumsum(counts)]),
            self.ped_ids[idx],
            self.frames[windows],
            self.source[windows],
            list(self.names),
        )


def concat_windows(parts: list[Windows]) -> Windows:
    parts = [p for p in parts if p.num_windows]
    if not parts:
        raise UserError("no 20-step windows with >= 2 pedestrians found")
    names: list[str] = []
    srcs, starts, off = [], [np.zeros(1, np.int64)], 0
    for p in parts:
        srcs.append(p.source + len(names))
        names += p.names
        starts.append(p.starts[1:] + off)
        off += p.num_agents
    return Windows(
        np.concatenate([p.obs for p in parts]),
        np.concatenate([p.pred for p in parts]),
        np.concatenate(starts),
        np.concatenate([p.ped_ids for p in parts]),
        np.concatenate([p.frames for p in parts]),
        np.concatenate(srcs),
        names,
    )


def make_windows(
    tracks: Tracks, obs_len: int = 8, pred_len: int = 12, skip: int = 1, min_ped: int = 1
) -> Windows:
    """Social-GAN windowing of one recording (see module docstring)."""
    seq_len = obs_len + pred_len
    rows = tracks.rows
    frames = np.unique(rows[:, 0])
    fidx = np.searchsorted(frames, rows[:, 0])
    # One sort by (pedestrian, time) instead of one scan of all rows per pedestrian: linear after the sort,
    # however many pedestrians share a frame (the per-pedestrian scan took minutes for 200k of them).
    order = np.lexsort((fidx, rows[:, 1]))
    ped_s, fi_s = rows[order, 1], fidx[order].astype(np.int64)
    xy_s = np.around(rows[order, 2:4], decimals=4)
    n = len(order)
    # a run of consecutive time indices of one pedestrian starts where the pedestrian changes or time jumps
    new_run = np.ones(n, bool)
    if n > 1:
        new_run[1:] = (ped_s[1:] != ped_s[:-1]) | (np.diff(fi_s) != 1)
    run_end = np.r_[np.nonzero(new_run)[0][1:], n][np.cumsum(new_run) - 1]
    # row s starts a window when its run holds seq_len rows from s on and its time index is on the skip grid
    ok = (run_end - np.arange(n) >= seq_len) & (fi_s % skip == 0)
    first = np.nonzero(ok)[0]
    if len(first):
        t0 = fi_s[first]
        counts = np.bincount(t0, minlength=len(frames))
        keep_t0 = np.nonzero(counts > min_ped)[0]
        first = first[np.isin(t0, keep_t0)]
    obs, pred, pids, starts, wframes = [], [], [], [0], []
    if len(first):
        t0 = fi_s[first]
        by = np.lexsort((ped_s[first], t0))  # windows in time order, members by pedestrian id
        first, t0 = first[by], t0[by]
        seq = xy_s[first[:, None] + np.arange(seq_len)]  # (N, seq_len, 2)
        bounds = np.r_[0, np.nonzero(np.diff(t0))[0] + 1, len(t0)]
        obs, pred, pids = [seq[:, :obs_len]], [seq[:, obs_len:]], [ped_s[first]]
        starts = bounds.tolist()
        wframes = [frames[t : t + seq_len] for t in t0[bounds[:-1]]]
    if not obs:
        return Windows(
            np.zeros((0, obs_len, 2), np.float32),
            np.zeros((0, pred_len, 2), np.float32),
            np.zeros(1, np.int64),
            np.zeros(0),
            np.zeros((0, seq_len)),
            np.zeros(0, int),
            [tracks.name],
        )
    return Windows(
        np.concatenate(obs).astype(np.float32),
        np.concatenate(pred).astype(np.float32),
        np.asarray(starts, np.int64),
        np.concatenate(pids),
        np.stack(wframes),
        np.zeros(len(wframes), int),
        [tracks.name],
    )


def scene_files(root: str | Path, scene: str, phase: str) -> list[Path]:
    """The ``*.txt`` files of ``root/scene/phase`` with clear errors when the layout is wrong."""
    r = Path(root).expanduser()
    if not r.is_dir():
        raise UserError(f"dataset folder {r} does not exist")
    if phase not in PHASES:
        raise UserError(f"phase must be one of {PHASES}, got {phase!r}")
    d = r / scene
    if not d.is_dir():
        have = sorted(p.name for p in r.iterdir() if p.is_dir())
        raise UserError(f"dataset folder {r} has no scene {scene!r} (found: {', '.join(have) or 'nothing'})")
    missing = [ph for ph in PHASES if not (d / ph).is_dir()]
    if missing:
        raise UserError(f"{d} lacks the expected splits {', '.join(missing)}/ (need train/, val/, test/)")
    files = sorted((d / phase).glob("*.txt"))
    if not files:
        raise UserError(f"{d / phase} holds no .txt trajectory files")
    return files


def load_split(root: str | Path, scene: str, phase: str, obs_len: int = 8, pred_len: int = 12) -> Windows:
    """Windows of one split of one leave-one-out fold (e.g. scene 'eth', phase 'test')."""
    files = scene_files(root, scene, phase)
    parts = [make_windows(read_ethucy(f), obs_len, pred_len) for f in files]
    try:
        return concat_windows(parts)
    except UserError:
        raise UserError(
            f"{Path(root) / scene / phase}: no 20-step windows with >= 2 pedestrians "
            "(tracks shorter than 20 steps, or only one agent at a time)"
        ) from None


def available_scenes(root: str | Path) -> list[str]:
    r = Path(root).expanduser()
    if not r.is_dir():
        return []
    return sorted(p.name for p in r.iterdir() if p.is_dir() and all((p / ph).is_dir() for ph in PHASES))


def load_homography(root: str | Path, scene: str) -> np.ndarray:
    """3x3 H with world = H @ pixel (ETH-UCY-Trajectory-Visualizer convention)."""
    p = Path(root).expanduser() / scene / "H.txt"
    if not p.is_file():
        raise UserError(f"no homography file {p}")
    try:
        H = np.loadtxt(p)
    except ValueError as exc:
        raise UserError(f"{p}: malformed homography ({exc})") from None
    if H.shape != (3, 3) or not np.all(np.isfinite(H)):
        raise UserError(f"{p}: expected a 3x3 matrix, got shape {H.shape}")
    return H


def world_to_image(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates of world points: ``inv(H) @ [x, y, 1]`` then divide by the third component."""
    xy = np.asarray(xy, dtype=float)
    hom = np.concatenate([xy.reshape(-1, 2), np.ones((xy.size // 2, 1))], axis=1)
    q = hom @ np.linalg.inv(H).T
    return (q[:, :2] / q[:, 2:3]).reshape(xy.shape)
