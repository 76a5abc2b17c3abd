"""Read a Tune experiment into pandas: one row per trial, plus per-epoch histories.

An experiment is a local folder or a URI that ``pyarrow.fs.FileSystem.from_uri`` understands
(``file:///abs/path``, ``s3://bucket/prefix``, ``s3://bucket/prefix?endpoint_override=host:port&scheme=http``,
``gs://...``); Ray's ``ExperimentAnalysis`` reads either in place, nothing is copied.
"""
from __future__ import annotations

import io
import posixpath
import urllib.parse
from pathlib import Path

import pandas as pd
import pyarrow.fs


def is_uri(location: str | Path) -> bool:
    """Whether ``location`` is a URI (``scheme://...``) rather than a local path."""
    return "://" in str(location)


def experiment_location(storage: str | Path, name: str) -> str:
    """``<storage>/<name>``; a URI keeps its scheme and query (``?endpoint_override=...``)."""
    if not is_uri(storage):
        return str(Path(storage) / name)
    parts = urllib.parse.urlsplit(str(storage))
    return urllib.parse.urlunsplit(parts._replace(path=posixpath.join(parts.path or "/", name)))


def display_location(location: str | Path) -> str:
    """``location`` for messages: a local path made absolute, a URI without its query (which may hold keys)."""
    if not is_uri(location):
        return str(Path(location).expanduser().resolve())
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(str(location))._replace(query=""))


def _filesystem(location: str | Path) -> tuple[pyarrow.fs.FileSystem, str]:
    """The filesystem holding ``location`` and the path on it."""
    if is_uri(location):
        return pyarrow.fs.FileSystem.from_uri(str(location))
    return pyarrow.fs.LocalFileSystem(), str(Path(location).expanduser().resolve())


def read_checkpoint_file(checkpoint_dir: str | Path, name: str) -> bytes | None:
    """The bytes of the file ``name`` in a checkpoint folder (a local path or a URI); ``None`` if absent."""
    fs, path = _filesystem(checkpoint_dir)
    path = posixpath.join(path, name)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.readall()


def load_experiment(location: str | Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Final row of every trial (metric columns and ``config/*`` columns) and each trial's history (keyed by trial id).

    ``location``: the experiment folder (``<storage>/<name>``), a local path or a URI. Only trials
    whose last report says ``done`` (they were tested) are in the table; the histories cover
    every trial. ``checkpoint_dir`` holds each trial's last checkpoint: a local path for a local
    (or ``file://``) experiment, else a URI (read its files with :func:`read_checkpoint_file`).
    Raises ``FileNotFoundError`` when there is no experiment.
    """
    from ray.tune import ExperimentAnalysis, ResultGrid

    fs, exp_path = _filesystem(location)
    if fs.get_file_info(exp_path).type != pyarrow.fs.FileType.Directory:
        raise FileNotFoundError(f"no experiment at {display_location(location)}")
    grid = ResultGrid(ExperimentAnalysis(exp_path, storage_filesystem=fs))
    df = _flatten_variants(grid.get_dataframe())
    histories = {r.metrics["trial_id"]: r.metrics_dataframe for r in grid if r.metrics_dataframe is not None}
    checkpoints = {r.metrics["trial_id"]: _checkpoint_location(location, fs, exp_path, r.checkpoint.path)
                   if r.checkpoint else None for r in grid if r.metrics}
    if "trial_id" in df:
        df["checkpoint_dir"] = df["trial_id"].map(checkpoints)
    if "done" not in df:
        return df.iloc[0:0], histories
    done = df["done"].fillna(False).astype(bool)
    if (~done).any():
        print(f"{posixpath.basename(exp_path)}: {(~done).sum()} of {len(df)} trials unfinished; left out "
              "(rerun main.py to resume)")
    return df[done].reset_index(drop=True), histories


def _checkpoint_location(location: str | Path, fs: pyarrow.fs.FileSystem, exp_path: str, ckpt_path: str) -> str:
    """A checkpoint's folder as a local path (local filesystem) or as a URI under ``location``."""
    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        return ckpt_path
    return experiment_location(location, posixpath.relpath(ckpt_path, exp_path))


def _flatten_variants(df: pd.DataFrame) -> pd.DataFrame:
    """``config/variant*/<key>`` columns (keys set together by a variant grid axis) become ``config/<key>``."""
    for col in sorted(c for c in df.columns if c.startswith("config/variant")):
        parts = col.split("/")
        if len(parts) == 3:
            df[f"config/{parts[2]}"] = df[col]
    return df


def frontend_label(row: pd.Series) -> str:
    """A short name for the front-end of one trial (``config/*`` columns)."""
    kind = row["config/frontend"]
    if kind == "gaussian":
        return "DMEL trainable" if row["config/trainable"] else "DMEL fixed"
    if kind == "adastft":
        learned = "window+kernels" if row["config/learn_kernels"] else "window" if row["config/learn_window"] else "fixed"
        return f"Ada-STFT {learned}" + ("" if row["config/stft_window"] == "hann" else f" ({row['config/stft_window']})")
    return "fixed mel (dB)" if pd.notna(row.get("config/top_db")) else "fixed mel"


def initial_window_ms(row: pd.Series) -> float:
    """Initial window length in ms: 6 lambda for DMEL, n_fft for Ada-STFT, the Hann length for the fixed mel."""
    rate = row["config/sample_rate"]
    kind = row["config/frontend"]
    if kind == "gaussian":
        ms = row.get("config/init_window_ms")
        return round(ms if pd.notna(ms) else 6000.0 * row["config/init_lambd"] / rate, 1)
    if kind == "adastft":
        return round(1000.0 * row["config/n_fft"] / rate, 1)
    return round(row["config/fixed_win_ms"], 1)


def with_frontends(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus ``frontend`` (label) and ``init_ms`` columns."""
    df = df.copy()
    df["frontend"] = df.apply(frontend_label, axis=1)
    df["init_ms"] = df.apply(initial_window_ms, axis=1)
    return df


def summed_confusion(df: pd.DataFrame) -> pd.DataFrame | None:
    """The test confusion matrices of ``df``'s trials added up (``None`` if none was saved); the
    ``checkpoint_dir`` folders may be local paths or URIs."""
    raw = [read_checkpoint_file(d, "confusion_matrix.csv") for d in df["checkpoint_dir"].dropna()]
    tables = [pd.read_csv(io.BytesIO(r), index_col=0) for r in raw if r is not None]
    return sum(tables[1:], tables[0]) if tables else None


def mean_std(values: pd.Series, scale: float = 100.0) -> str:
    """``'mean ± std'`` of ``values * scale`` with one decimal (std over samples, ddof=1)."""
    v = values.dropna() * scale
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v.iloc[0]:.1f}"  # one sample: no spread to show
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


def trainable_vs_fixed(part: pd.DataFrame, acc_col: str, learned_col: str, fmt: str) -> dict:
    """Summary of one (model, initial window) group: learned window ``(min, max)`` over trainable
    runs (``fmt`` formats one value), accuracy ``mean ± std`` of trainable and fixed, and counts."""
    tr, fx = part[part["config/trainable"] == True], part[part["config/trainable"] == False]  # noqa: E712
    learned = f"({tr[learned_col].min():{fmt}}, {tr[learned_col].max():{fmt}})" if len(tr) else "-"
    return {"learned": learned, "trainable": mean_std(tr[acc_col]), "fixed": mean_std(fx[acc_col]),
            "n": f"{len(tr)}/{len(fx)}"}


def write_table(df: pd.DataFrame, out_dir: Path, stem: str, caption: str) -> None:
    """Write ``df`` as ``<stem>.md`` and ``<stem>.tex`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.md").write_text(f"{caption}\n\n{df.to_markdown(index=False)}\n")
    (out_dir / f"{stem}.tex").write_text(df.to_latex(index=False, caption=caption, label=f"tab:{stem}")
                                         .replace("±", r"$\pm$"))
    print(f"wrote {out_dir / stem}.md/.tex")
