"""Read a Tune experiment into pandas: one row per trial, plus per-epoch histories.

An experiment is a local folder or a URI that ``pyarrow.fs.FileSystem.from_uri`` understands
(``file:///abs/path``, ``s3://bucket/prefix``, ``s3://bucket/prefix?endpoint_override=host:port&scheme=http``,
``gs://...``); Ray's ``ExperimentAnalysis`` reads either in place, nothing is copied.
"""
from __future__ import annotations

import io
import posixpath
from pathlib import Path

import pandas as pd
import pyarrow.fs

from figures.paired import PairedStats, difference_cell, paired_difference, wilcoxon_cell
from training.config import DEFAULTS
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
    trials = pd.DataFrame([{"trial_id": t.trial_id, "trial_dir": posixpath.basename(t.storage.trial_fs_path),
                            "status": t.status, "done": bool((t.last_result or {}).get("done", False)),
                            "stopped_early": bool(stopped_early(pd.DataFrame([t.last_result or {}])).iloc[0])}
                           for t in analysis.trials],
                          columns=["trial_id", "trial_dir", "status", "done", "stopped_early"])
    trials.loc[trials["stopped_early"], "done"] = False
    reported = [r for r in results if r.metrics and "trial_id" in r.metrics]
    configs = {t.trial_id: t.config for t in analysis.trials}  # a trial that never reported has none in its Result
    # the last report as the experiment state holds it (Ray's get_dataframe reads result.json instead, and
    # drops a finished trial whose result.json is truncated)
    df = pd.DataFrame([{**_flat({k: v for k, v in r.metrics.items() if k != "config"}),
                        **{f"config/{k}": v for k, v in _flat(configs.get(r.metrics["trial_id"]) or r.config or {}).items()},
                        "logdir": r.path}
                       for r in reported])
    if keep_unfinished:  # trials that never reported: their config only
        seen = set(df["trial_id"]) if "trial_id" in df else set()
        silent = [{"trial_id": t.trial_id, "done": False, **{f"config/{k}": v for k, v in _flat(t.config).items()}}
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
    df["stopped_early"] = stopped_early(df)
    df["done"] = (df["done"].fillna(False).astype(bool) & ~df["stopped_early"]) if "done" in df \
        else pd.Series(False, index=df.index)
    if not keep_unfinished:
        unfinished = ~df["done"] & ~df["stopped_early"]
        if unfinished.any():
            print(f"{posixpath.basename(exp_path)}: {unfinished.sum()} of {len(df)} trials unfinished; left out "
                  "(rerun main.py to resume)")
        df = df[df["done"]].reset_index(drop=True)
    df.attrs.update(experiment=display_location(location), trials=trials)
    return df, histories


def _flat(config: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}`` (Tune's ``config/*`` column names)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


TESTED_COLUMN = "test_loss"  # only a trial's own last report (after its final test) holds a number here


def stopped_early(df: pd.DataFrame) -> pd.Series:
    """Which trials a scheduler (ASHA) stopped: Tune marks their last report ``done`` although the trial
    never reached its final test (``test_loss`` missing). A rerun does not resume them."""
    if "done" not in df or TESTED_COLUMN not in df:
        return pd.Series(False, index=df.index)
    return df["done"].fillna(False).astype(bool) & df[TESTED_COLUMN].isna()


def finished(df: pd.DataFrame) -> pd.DataFrame:
    """The trials of ``df`` that finished (were tested); ``df`` itself when it has no ``done`` column."""
    if "done" not in df:
        return df
    return df[df["done"].fillna(False).astype(bool)]


def missing_trials(df: pd.DataFrame) -> list[str]:
    """``"<trial folder> (<status>)"`` for each trial of the experiment that did not finish (a trial the
    scheduler stopped early is not missing: it ended)."""
    trials = df.attrs.get("trials")
    if trials is None or trials.empty:
        return []
    return [f"{t.trial_dir} ({t.status})" for t in trials.itertuples()
            if not t.done and not getattr(t, "stopped_early", False)]


def source_line(df: pd.DataFrame) -> str:
    """Where a table's numbers come from: the experiment, its trials, the budget and the code's commit.

    ``df``: an experiment as :func:`load_experiment` returns it (``keep_unfinished`` or not)."""
    trials = df.attrs.get("trials")
    total = len(trials) if trials is not None else len(df)
    done = finished(df)
    counts = f"{len(done)} of {total} trials finished"
    if trials is not None and len(trials):
        errored = int((trials["status"] == "ERROR").sum())
        stopped = int(trials["stopped_early"].sum()) if "stopped_early" in trials else 0
        notes = [f"{errored} errored"] * bool(errored) + [f"{stopped} stopped early by the scheduler"] * bool(stopped)
        counts += f" ({', '.join(notes)})" if notes else ""
    budget = []
    if "config/max_epochs" in df and df["config/max_epochs"].notna().any():
        budget.append("max_epochs " + "/".join(f"{v:g}" for v in sorted(df["config/max_epochs"].dropna().unique())))
    if "epoch" in done and len(done):
        epochs = (done["epoch"] + 1).astype(int)
        budget.append(f"epochs run {epochs.min()}-{epochs.max()}" if epochs.min() != epochs.max()
                      else f"epochs run {epochs.min()}")
    if "config/seed" in df:
        budget.append(f"{df['config/seed'].nunique()} samples (seeds) per configuration")
    if "config/n_samples" in df and df["config/n_samples"].notna().any():
        budget.append("n_samples " + "/".join(f"{v:g}" for v in sorted(df["config/n_samples"].dropna().unique())))
    versions = sorted(done["code_version"].dropna().astype(str).unique()) if "code_version" in done else []
    code = ", ".join(versions) if versions else "not recorded"
    return (f"Source: {df.attrs.get('experiment', 'unknown experiment')}; {counts}; "
            f"budget: {', '.join(budget) or 'unknown'}; code: {code}.")


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


FRONTEND_NAMES = {"leaf": "LEAF", "efficientleaf": "EfficientLEAF", "sincnet": "SincNet",
                  "trainable_mel": "trainable mel", "dstft": "DSTFT"}
# leaf_compression -> label suffix (sPCEN, the default: none)
LEAF_COMPRESSION_NAMES = {"pcen": "", "log_tbn": " (log+TBN)", "log_tbn_median": " (log+TBN, median)"}


def _setting(row: pd.Series, key: str, default):
    """``config/<key>`` of one trial; ``default`` (the config default) where the experiment never set it."""
    value = row.get(f"config/{key}")
    return default if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def frontend_label(row: pd.Series) -> str:
    """A short name for the front-end of one trial (``config/*`` columns)."""
    kind = row["config/frontend"]
    pcen = " + PCEN" if row.get("config/compression") == "pcen" else ""
    if kind == "gaussian":
        return ("DMEL trainable" if row["config/trainable"] else "DMEL fixed") + pcen
    if kind == "adastft":
        learned = ("window+kernels" if _setting(row, "learn_kernels", False) else
                   "window" if _setting(row, "learn_window", True) else "fixed")
        window = _setting(row, "stft_window", "hann")
        return f"Ada-STFT {learned}" + ("" if window == "hann" else f" ({window})") + pcen
    if kind == "torchaudio_mel":
        return ("fixed mel (dB)" if pd.notna(row.get("config/top_db")) else "fixed mel") + pcen
    if kind in ("leaf", "efficientleaf"):
        return FRONTEND_NAMES[kind] + LEAF_COMPRESSION_NAMES[_setting(row, "leaf_compression", "pcen")]
    return FRONTEND_NAMES.get(kind, kind) + pcen


# front-end -> the config key of its initial window in ms (DMEL, DSTFT and Ada-STFT: see initial_window_ms)
WINDOW_KEYS = {"torchaudio_mel": "fixed_win_ms", "trainable_mel": "fixed_win_ms", "leaf": "leaf_window_ms",
               "efficientleaf": "leaf_window_ms", "sincnet": "sinc_window_ms"}


def initial_window_ms(row: pd.Series) -> float:
    """Initial window length in ms: 6 lambda for DMEL and DSTFT, n_fft for Ada-STFT, the Hann length for
    the fixed and trainable mel, the filter length for LEAF, EfficientLEAF and SincNet (a key the
    experiment never set: its ``training/config.py`` default)."""
    rate = row["config/sample_rate"]
    kind = row["config/frontend"]
    if kind in ("gaussian", "dstft"):
        ms = _setting(row, "init_window_ms", None)
        return round(ms if ms is not None else 6000.0 * _setting(row, "init_lambd", DEFAULTS["init_lambd"]) / rate, 1)
    if kind == "adastft":
        return round(1000.0 * row["config/n_fft"] / rate, 1)
    key = WINDOW_KEYS[kind]
    return round(_setting(row, key, DEFAULTS[key]), 1)


def with_frontends(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus ``frontend`` (label) and ``init_ms`` columns."""
    df = df.copy()
    df["frontend"] = df.apply(frontend_label, axis=1)
    df["init_ms"] = df.apply(initial_window_ms, axis=1)
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


def mean_std(values: pd.Series, scale: float = 100.0) -> str:
    """``'mean ± std'`` of ``values * scale`` with one decimal (std over samples, ddof=1)."""
    v = values.dropna() * scale
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v.iloc[0]:.1f}"  # one sample: no spread to show
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


COST_COLUMN = "cost: s/trial, epochs (mean)"
PAIRED_COST_COLUMN = "cost: s/trial, epochs (trainable; fixed)"


def ended(df: pd.DataFrame) -> pd.DataFrame:
    """The trials of ``df`` that ran to their end: finished, or stopped early by the scheduler."""
    if "done" not in df:
        return df
    done = df["done"].fillna(False).astype(bool)
    return df[done | df["stopped_early"].fillna(False).astype(bool)] if "stopped_early" in df else df[done]


def cost(part: pd.DataFrame) -> str:
    """``"<s> s, <epochs> ep"``: mean training time per trial (Tune's ``time_total_s``, seconds) and mean
    epochs run (the trial's ``epoch`` + 1, else Tune's ``training_iteration``) over the trials of ``part``
    that ended (:func:`ended`; an unfinished or errored trial has not paid its whole cost). ``"-"`` when
    none ended, ``"not recorded"`` when the results hold no time."""
    if "time_total_s" not in part:
        return "not recorded"
    done = ended(part)
    epochs = done["epoch"] + 1 if "epoch" in done else done.get("training_iteration")
    if done["time_total_s"].notna().sum() == 0 or epochs is None:
        return "-"
    return f"{done['time_total_s'].mean():.1f} s, {epochs.mean():.1f} ep"


def count(part: pd.DataFrame) -> str:
    """``"finished/total"`` trials of ``part`` (every row counts as finished without a ``done`` column)."""
    return f"{len(finished(part))}/{len(part)}"


# the paired columns of the DMEL tables (trainable minus fixed runs of one seed; figures/paired.py)
PAIRED_DIFF_COLUMN = "Δ trainable−fixed (pp) [95 % CI]"
PAIRED_TEST_COLUMN = "p (Wilcoxon), n"
PAIRED_CAPTION = (" Δ: trainable minus fixed accuracy of the runs that share a seed (pp), mean and"
                  " percentile-bootstrap 95 % CI; p: two-sided Wilcoxon signed-rank test over those pairs; n: pairs.")


def trainable_fixed_pairs(part: pd.DataFrame, acc_col: str, unit: str | None = None) -> pd.DataFrame:
    """The trainable/fixed pairs of one table row: one row per pair, ``trainable`` and ``fixed`` the
    ``acc_col`` of its two trials in % (x 100).

    A pair is a finished trainable and a finished fixed trial (:func:`finished`, with a number in
    ``acc_col``) whose ``config/*`` values are equal apart from ``trainable``: the same seed, and the
    same value of any other grid setting inside the row. A seed present on one side only pairs nothing,
    nor does a key that more than one trial of a side holds. Rows in ascending ``config/seed``, then the
    other keys. ``unit`` (e.g. ``"config/fold"``): one row per value of ``unit`` instead, ``trainable``
    and ``fixed`` the means over that value's pairs, rows in ascending ``unit``."""
    done = finished(part)
    done = done[done[acc_col].notna()] if acc_col in done else done.iloc[:0]
    keys = [c for c in part.columns if c.startswith("config/") and c.rsplit("/", 1)[-1] != "trainable"]
    key = pd.Series(["\x1f".join(map(str, row)) for row in done[keys].itertuples(index=False)], index=done.index,
                    dtype=object)
    carried = [c for c in dict.fromkeys((unit, "config/seed")) if c is not None and c in done]
    sides = []
    for trainable in (True, False):
        mine = done["config/trainable"] == trainable  # noqa: E712 - a bool column, or None where unset
        # a new frame: the experiment's attrs (a DataFrame of trials) cannot pass through merge
        side = pd.DataFrame({"key": key[mine].to_numpy(), "acc": done.loc[mine, acc_col].to_numpy(dtype=float) * 100.0,
                             **{c: done.loc[mine, c].to_numpy() for c in carried}})
        sides.append(side.drop_duplicates("key", keep=False))  # an ambiguous key pairs nothing
    pairs = sides[0].merge(sides[1].drop(columns=carried), on="key", suffixes=("_trainable", "_fixed"))
    pairs = pairs.rename(columns={"acc_trainable": "trainable", "acc_fixed": "fixed"})
    if unit is not None:
        return pairs.groupby(unit, sort=True)[["trainable", "fixed"]].mean().reset_index()
    order = [c for c in ("config/seed",) if c in pairs] + ["key"]
    return pairs.sort_values(order, kind="stable").drop(columns="key").reset_index(drop=True)


def paired_stats(part: pd.DataFrame, acc_col: str, unit: str | None = None) -> PairedStats:
    """:func:`figures.paired.paired_difference` of trainable minus fixed ``acc_col`` in percentage points over
    the pairs of :func:`trainable_fixed_pairs` (``unit`` as there)."""
    pairs = trainable_fixed_pairs(part, acc_col, unit)
    return paired_difference(pairs["trainable"], pairs["fixed"])


def trainable_vs_fixed(part: pd.DataFrame, acc_col: str, learned_col: str, fmt: str, unit: str | None = None) -> dict:
    """Summary of one (model, initial window) group: learned window ``(min, max)`` over finished trainable
    runs (``fmt`` formats one value), accuracy ``mean ± std`` of finished trainable and fixed runs,
    ``n``: ``"finished/total"`` of the trainable runs, then of the fixed ones (unfinished rows count in
    the totals only), ``cost``: :func:`cost` of the trainable runs, then of the fixed ones (the column
    :data:`PAIRED_COST_COLUMN`), and the paired statistics of trainable minus fixed accuracy in
    percentage points over :func:`trainable_fixed_pairs` (``unit`` as there): ``difference`` (the column
    :data:`PAIRED_DIFF_COLUMN`, :func:`figures.paired.difference_cell`) and ``wilcoxon``
    (:data:`PAIRED_TEST_COLUMN`, :func:`figures.paired.wilcoxon_cell`; the count in ``unit`` values,
    e.g. ``"n=5 folds"``, when given)."""
    tr, fx = part[part["config/trainable"] == True], part[part["config/trainable"] == False]  # noqa: E712
    tr_done, fx_done = finished(tr), finished(fx)
    learned = (f"({tr_done[learned_col].min():{fmt}}, {tr_done[learned_col].max():{fmt}})"
               if len(tr_done) and tr_done[learned_col].notna().any() else "-")
    paired = paired_stats(part, acc_col, unit)
    return {"learned": learned, "trainable": mean_std(tr_done[acc_col]) if acc_col in tr_done else "-",
            "fixed": mean_std(fx_done[acc_col]) if acc_col in fx_done else "-", "n": f"{count(tr)}, {count(fx)}",
            "cost": f"{cost(tr)}; {cost(fx)}", "difference": difference_cell(paired),
            "wilcoxon": wilcoxon_cell(paired, f" {unit.rsplit('/', 1)[-1]}s" if unit else "")}


def _latex_escape(text: str) -> str:
    """``text`` for LaTeX (pdflatex): its special characters escaped; ``<``, ``>`` and the non-ASCII symbols
    of the tables (``±``, ``−``, ``Δ``, ``λ``, ``σ``) in math mode."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
               "<": "$<$", ">": "$>$", "±": r"$\pm$", "−": "$-$", "Δ": r"$\Delta$", "λ": r"$\lambda$",
               "σ": r"$\sigma$"}
    return "".join(special.get(c, c) for c in str(text))


def _is_number(cell) -> bool:
    try:
        float(cell)
        return True
    except (TypeError, ValueError):
        return False


def write_table(df: pd.DataFrame, out_dir: Path, stem: str, caption: str, source: str | list[str] | None = None) -> None:
    """Write ``df`` as ``<stem>.md`` and ``<stem>.tex`` into ``out_dir``; ``source`` (see
    :func:`source_line`) is written under the table. The LaTeX cells, headers and caption are escaped
    (:func:`_latex_escape`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [source] if isinstance(source, str) else list(source or [])
    below = "".join(f"\n{line}\n" for line in sources)
    # cells as computed ("94.0" stays "94.0"; tabulate would print it as 94), numbers right-aligned
    align = ["right" if df[c].map(_is_number).all() else "left" for c in df.columns]
    markdown = df.to_markdown(index=False, disable_numparse=True, colalign=align)
    (out_dir / f"{stem}.md").write_text(f"{caption}\n\n{markdown}\n{below}")
    escaped = df.map(_latex_escape).rename(columns=_latex_escape)
    tex = escaped.to_latex(index=False, escape=False, caption=_latex_escape(caption), label=f"tab:{stem}")
    if sources:
        note = "\n".join(r"\par\footnotesize " + _latex_escape(line) for line in sources)
        tex = tex.replace("\\end{table}", note + "\n\\end{table}")
    (out_dir / f"{stem}.tex").write_text(tex)
    print(f"wrote {out_dir / stem}.md/.tex")
