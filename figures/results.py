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
    df = grid.get_dataframe()
    histories = {r.metrics["trial_id"]: r.metrics_dataframe for r in grid if r.metrics_dataframe is not None}
    if "done" not in df:
        return df.iloc[0:0], histories
    done = df["done"].fillna(False).astype(bool)
    if (~done).any():
        print(f"{exp_dir.name}: {(~done).sum()} of {len(df)} trials unfinished; left out (rerun main.py to resume)")
    return df[done].reset_index(drop=True), histories


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
