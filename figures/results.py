"""Read a Tune experiment directory into pandas: one row per trial, plus per-epoch histories."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_experiment(exp_dir: str | Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Final row of every trial (metric columns and ``config/*`` columns) and each trial's history (keyed by trial id).

    Only trials whose last report says ``done`` (they were tested) are in the table; the
    histories cover every trial. Raises ``FileNotFoundError`` when there is no experiment.
    """
    from ray.tune import ExperimentAnalysis, ResultGrid

    exp_dir = Path(exp_dir).resolve()
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"no experiment at {exp_dir}")
    grid = ResultGrid(ExperimentAnalysis(str(exp_dir)))
    df = _flatten_variants(grid.get_dataframe())
    histories = {r.metrics["trial_id"]: r.metrics_dataframe for r in grid if r.metrics_dataframe is not None}
    checkpoints = {r.metrics["trial_id"]: r.checkpoint.path if r.checkpoint else None for r in grid if r.metrics}
    if "trial_id" in df:
        df["checkpoint_dir"] = df["trial_id"].map(checkpoints)
    if "done" not in df:
        return df.iloc[0:0], histories
    done = df["done"].fillna(False).astype(bool)
    if (~done).any():
        print(f"{exp_dir.name}: {(~done).sum()} of {len(df)} trials unfinished; left out (rerun main.py to resume)")
    return df[done].reset_index(drop=True), histories


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
    """The test confusion matrices of ``df``'s trials added up (``None`` if none was saved)."""
    tables = [pd.read_csv(Path(d) / "confusion_matrix.csv", index_col=0) for d in df["checkpoint_dir"].dropna()
              if (Path(d) / "confusion_matrix.csv").exists()]
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
