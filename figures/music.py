"""What the GTZAN and FMA figures share: the front-end comparison table and the best configuration."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from figures.plotting import confusion_figure, save
from figures.read import finished, summed_confusion
from figures.tables import COST_COLUMN, cost, count, mean_std, mean_std_cell, model_stat_cells

CONFIG_COLS = ["frontend", "init_ms"]


def comparison_table(df: pd.DataFrame, panel_col: str, panel_name: str, metrics: dict[str, str],
                     uar: tuple[str, str] | None = None, stats: bool = False) -> pd.DataFrame:
    """One row per (front-end, initial window, panel value): learned DMEL window (min-max ms over
    finished samples), each metric as ``mean ± std`` in percent over the finished samples ("not recorded"
    when the experiment has no such column), ``uar`` ``(metric, column name)`` (the unweighted average
    recall of the clip decisions, :func:`figures.tables.uar_column`) the same way beside the first metric
    (``-`` without it), the cost, ``n`` = finished/total samples and, with ``stats``, the model statistics
    (:func:`figures.tables.model_stat_cells`)."""
    rows = []
    for (fe, init, panel), part in df.groupby(CONFIG_COLS + [panel_col]):
        done = finished(part)
        learned = "-"
        if fe == "DMEL trainable" and len(done) and done["best_lambd_ms"].notna().any():
            learned = f"({done['best_lambd_ms'].min():.0f}, {done['best_lambd_ms'].max():.0f})"
        cells = [(label, mean_std(done[col]) if col in done else "not recorded") for col, label in metrics.items()]
        if uar is not None:
            cells.insert(1, (uar[1], mean_std_cell(done, uar[0])))
        rows.append({"front-end": fe, "init (ms)": f"{init:g}", panel_name: f"{panel:g}",
                     "learned (ms, min-max)": learned, **dict(cells), COST_COLUMN: cost(part),
                     "n finished/total": count(part), **(model_stat_cells(part) if stats else {})})
    return pd.DataFrame(rows)


def best_configuration(df: pd.DataFrame, panel_col: str, metric: str) -> pd.DataFrame:
    """The finished trials of the configuration (front-end, initial window, panel value) with the highest
    mean ``metric`` (ties: the first configuration in sorted order)."""
    df = finished(df)
    means = df.groupby(CONFIG_COLS + [panel_col])[metric].mean()
    fe, init, panel = means.idxmax()
    return df[(df["frontend"] == fe) & (df["init_ms"] == init) & (df[panel_col] == panel)]


def best_confusion(df: pd.DataFrame, panel_col: str, panel_text: str, metric: str, corpus: str, out_dir: Path) -> None:
    """``confusion_<corpus>``: the test confusion matrix of the best configuration by mean ``metric``,
    summed over its samples; ``panel_text`` formats the panel value for the title (``{}`` = the value)."""
    best = best_configuration(df, panel_col, metric)
    cm = summed_confusion(best)
    if cm is None:
        return
    row = best.iloc[0]
    title = (f"{corpus.upper()} test: {row['frontend']}, {row['init_ms']:g} ms, "
             f"{panel_text.format(row[panel_col])} (n = {len(best)})")
    save(confusion_figure(cm, title), out_dir, f"confusion_{corpus}")


def anchor_rows(anchors: list[tuple[str, str, str]], columns: list[str]) -> pd.DataFrame:
    """Published numbers as table rows: ``(system, setting, value in %)`` under the first metric column."""
    return pd.DataFrame([{c: "" for c in columns} | {"front-end": system, "init (ms)": setting, columns[4]: value}
                         for system, setting, value in anchors], columns=columns)
