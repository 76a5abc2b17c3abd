"""Read a Tune experiment into pandas: one row per trial, plus per-epoch histories and checkpoint files.

An experiment is a local folder or a URI that ``pyarrow.fs.FileSystem.from_uri`` understands
(``file:///abs/path``, ``s3://bucket/prefix``, ``s3://bucket/prefix?endpoint_override=host:port&scheme=http``,
``gs://...``); Ray's ``ExperimentAnalysis`` reads either in place, nothing is copied. Whether a trial
finished, was stopped early or is unfinished is decided by :mod:`tuning.status` (shared with ``main.py``'s
summary); :func:`finished` and :func:`ended` select those rows of a frame.
"""
from __future__ import annotations

import io
import posixpath
from pathlib import Path

import pandas as pd
import pyarrow.fs

from tuning import status
from tuning.storage import display as display_location
from tuning.storage import experiment_location, read_bytes
from tuning.storage import filesystem as _filesystem


def read_checkpoint_file(checkpoint_dir: str | Path, name: str) -> bytes | None:
    """The bytes of the file ``name`` in a checkpoint folder (a local path or a URI); ``None`` if absent."""
    return read_bytes(experiment_location(checkpoint_dir, name))


class UnreadableExperiment(RuntimeError):
    """The experiment's state (``experiment_state-*.json``) cannot be read."""


def load_experiment(location: str | Path, keep_unfinished: bool = False) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Final row of every trial (metric columns and ``config/*`` columns) and each trial's history (keyed by trial id).

    ``location``: the experiment folder (``<storage>/<name>``), a local path or a URI. Only trials
    whose last report says ``done`` (they were tested) are in the table, unless ``keep_unfinished``:
    then every trial of the experiment has a row (``done`` False for the unfinished and errored ones,
    config columns only for a trial that never reported) and ``status`` says Tune's state. A trial a
    scheduler stopped early (ASHA) is not ``done`` (it was never tested) but ``stopped_early``. The
    histories cover every trial whose ``result.json``/``progress.csv`` could be read.
    ``checkpoint_dir`` holds each trial's last checkpoint: a local path for a local (or ``file://``)
    experiment, else a URI (read its files with :func:`read_checkpoint_file`). ``df.attrs`` holds
    ``experiment`` (the location for messages) and ``trials`` (one row per trial: ``trial_id``,
    ``trial_dir``, ``status``, ``done``, ``stopped_early``). Raises ``FileNotFoundError`` when there is no experiment,
    :class:`UnreadableExperiment` when its state cannot be read.
    """
    from ray.tune import ExperimentAnalysis, ResultGrid
    from ray.tune.utils import flatten_dict

    fs, exp_path = _filesystem(location)
    if fs.get_file_info(exp_path).type != pyarrow.fs.FileType.Directory:
        raise FileNotFoundError(f"no experiment at {display_location(location)}")
    try:
        analysis = ExperimentAnalysis(exp_path, storage_filesystem=fs)
        grid = ResultGrid(analysis)
        results = list(grid)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign state file: say so, do not crash
        raise UnreadableExperiment(f"cannot read the experiment at {display_location(location)}: "
                                   f"{type(e).__name__}: {e}") from e
    # done: finished (tested); stopped_early: ended untested (the rule of tuning/status.py)
    trials = pd.DataFrame([{"trial_id": t.trial_id, "trial_dir": posixpath.basename(t.storage.trial_fs_path),
                            "status": t.status, "done": status.finished(t.last_result or {}),
                            "stopped_early": status.stopped_early(t.last_result or {})}
                           for t in analysis.trials],
                          columns=["trial_id", "trial_dir", "status", "done", "stopped_early"])
    reported = [r for r in results if r.metrics and "trial_id" in r.metrics]
    configs = {t.trial_id: t.config for t in analysis.trials}  # a trial that never reported has none in its Result
    # the last report as the experiment state holds it (Ray's get_dataframe reads result.json instead, and
    # drops a finished trial whose result.json is truncated)
    def columns(metrics: dict, config: dict | None) -> dict:  # Tune's names: config {"a": {"b": 1}} -> config/a/b
        reported_metrics = {k: v for k, v in metrics.items() if k != "config"}
        return flatten_dict({**reported_metrics, "config": config or {}}, delimiter="/")

    df = pd.DataFrame([{**columns(r.metrics, configs.get(r.metrics["trial_id"]) or r.config), "logdir": r.path}
                       for r in reported])
    if keep_unfinished:  # trials that never reported: their config only
        seen = set(df["trial_id"]) if "trial_id" in df else set()
        silent = [{"trial_id": t.trial_id, "done": False, **columns({}, t.config)}
                  for t in analysis.trials if t.trial_id not in seen]
        if silent:
            df = pd.concat([df, pd.DataFrame(silent)], ignore_index=True)
    df = _flatten_variants(df)
    histories = {r.metrics["trial_id"]: r.metrics_dataframe for r in reported
                 if r.metrics_dataframe is not None and len(r.metrics_dataframe)}
    checkpoints = {r.metrics["trial_id"]: _checkpoint_location(location, fs, exp_path, r.checkpoint.path)
                   if r.checkpoint else None for r in reported}
    if "trial_id" in df:
        df["checkpoint_dir"] = df["trial_id"].map(checkpoints)
        df["status"] = df["trial_id"].map(dict(zip(trials["trial_id"], trials["status"])))
    df = status.mark(df)  # done: finished; stopped_early: ended untested
    if not keep_unfinished:
        unfinished = ~status.ended(df)
        if unfinished.any():
            print(f"{posixpath.basename(exp_path)}: {unfinished.sum()} of {len(df)} trials unfinished; left out "
                  "(rerun main.py to resume)")
        df = finished(df).reset_index(drop=True)
    df.attrs.update(experiment=display_location(location), trials=trials)
    return df, histories


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


def summed_confusion(df: pd.DataFrame) -> pd.DataFrame | None:
    """The test confusion matrices of ``df``'s trials added up (``None`` if none was saved); the
    ``checkpoint_dir`` folders may be local paths or URIs. A missing or unreadable file is skipped
    with a message naming the checkpoint."""
    tables = []
    for folder in df["checkpoint_dir"].dropna():
        try:
            raw = read_checkpoint_file(folder, "confusion_matrix.csv")
            if raw is not None:
                tables.append(pd.read_csv(io.BytesIO(raw), index_col=0))
        except (OSError, ValueError, pd.errors.ParserError) as e:  # EmptyDataError is a ValueError
            print(f"skipped an unreadable confusion matrix in {display_location(folder)}: {type(e).__name__}: {e}")
    if not tables:
        return None
    shapes = {t.shape for t in tables}
    if len(shapes) > 1:  # a truncated file still parses, with fewer rows
        full = max(shapes)
        print(f"skipped {sum(t.shape != full for t in tables)} truncated confusion matrices")
        tables = [t for t in tables if t.shape == full]
    return sum(tables[1:], tables[0])


def finished(df: pd.DataFrame) -> pd.DataFrame:
    """The trials of ``df`` that finished (were tested: :func:`tuning.status.finished`)."""
    return df[status.finished(df)]


def ended(df: pd.DataFrame) -> pd.DataFrame:
    """The trials of ``df`` that ran to their end: finished, or stopped early by the scheduler
    (:func:`tuning.status.ended`)."""
    return df[status.ended(df)]
