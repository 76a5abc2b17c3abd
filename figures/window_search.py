"""window_search experiment: the DMEL paper's cost argument, measured on FSDD. Searching for the best fixed
window against learning it, each answer with the compute it took.

``<split>_window_search``: accuracy against cumulative compute (trial-seconds: Tune's ``time_total_s`` summed
in order of trial completion). The fixed-window search is a step line: after each trial, the accuracy of the
window the search would pick so far (the tested trial with the lowest ``best_valid_loss``, the loss every
trial selects its best epoch by; selecting on the test split would flatter the search), with every tested
trial as a grey dot. Each trainable DMEL run is one point at its own compute.
``tables/<split>_window_search``: the window the search found, its accuracy, unweighted average recall (UAR) and
the search's total compute, against each trainable run's learned window, accuracy, UAR and compute, with the
shared cost column and the model statistics of the chosen trial and of each trainable run.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from figures.labels import data_caption
from figures.plotting import save
from figures.provenance import source_line
from figures.read import ended, finished
from figures.tables import COST_COLUMN, cost, count, model_stat_cells, stats_caption, uar_column, write_table

SEARCH, TRAINABLE = "window_search/search", "window_search/trainable"  # the experiment's two parts


def search_curve(df: pd.DataFrame, acc_col: str) -> pd.DataFrame:
    """The search's trials that ended, in order of completion (their last report's ``timestamp``), with
    ``compute_s``: trial-seconds spent up to and including each, ``chosen``: the row of the tested trial with
    the lowest ``best_valid_loss`` so far (``<NA>`` before the first), and ``chosen_ms``/``chosen_acc``: its
    window and ``acc_col`` (NaN before the first). Trials stopped early by the scheduler add compute but are
    never chosen (they were not tested)."""
    trials = ended(df).sort_values("timestamp").reset_index(drop=True)
    trials["compute_s"] = trials["time_total_s"].cumsum()
    best_loss, chosen, chosen_ms, chosen_acc = math.inf, [], [], []
    for k, trial in trials.iterrows():
        if trial["done"] and trial["best_valid_loss"] < best_loss:
            best_loss, row, ms, acc = trial["best_valid_loss"], k, trial["config/init_window_ms"], trial[acc_col]
        chosen.append(row if best_loss < math.inf else None)
        chosen_ms.append(ms if best_loss < math.inf else math.nan)
        chosen_acc.append(acc if best_loss < math.inf else math.nan)
    return trials.assign(chosen=pd.array(chosen, dtype="Int64"), chosen_ms=chosen_ms, chosen_acc=chosen_acc)


def compute_figure(curve: pd.DataFrame, trainable: pd.DataFrame, acc_col: str, acc_label: str):
    """Accuracy (%) against compute (trial-seconds, log axis): the search's choice so far (step line), its
    tested trials (grey dots) and one marker per trainable run, labelled with its initial and learned window."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    tested = curve[curve["done"]]
    ax.scatter(tested["compute_s"], tested[acc_col] * 100, s=12, color="lightgray", zorder=1,
               label=f"fixed: each tested trial ({len(tested)})")
    ax.step(curve["compute_s"], curve["chosen_acc"] * 100, where="post", color="tab:orange", zorder=2,
            label=f"fixed: search's choice so far ({len(curve)} trials)")
    if len(curve) and pd.notna(curve["chosen_ms"].iloc[-1]):
        last = curve.iloc[-1]
        ax.annotate(f"{last['chosen_ms']:.0f} ms", (last["compute_s"], last["chosen_acc"] * 100), fontsize=8,
                    xytext=(-4, 4), textcoords="offset points", ha="right", color="tab:orange")  # left of the point: inside the figure
    for k, (_, run) in enumerate(trainable.sort_values("config/init_window_ms").iterrows()):
        ax.scatter([run["time_total_s"]], [run[acc_col] * 100], marker="os^vD"[k % 5], color="tab:blue", zorder=3,
                   label=f"trainable from {run['config/init_window_ms']:g} ms → {run['best_lambd_ms']:.0f} ms")
    ax.set_xscale("log")
    ax.set_xlabel("compute (trial-seconds, cumulative for the search)")
    ax.set_ylabel(acc_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _percent(run: pd.DataFrame, column: str) -> str:
    """``column`` of the one trial in ``run`` in % with one decimal; ``-`` without that trial or a number
    (results from before the column existed)."""
    values = run[column].dropna() if column in run else ()
    return f"{100 * values.iloc[0]:.1f}" if len(values) else "-"


def cost_table(search: pd.DataFrame, curve: pd.DataFrame, trainable: pd.DataFrame, acc_col: str,
               uar_col: str) -> pd.DataFrame:
    """One row for the fixed-window search (the window it chose, its accuracy and ``uar_col``, the unweighted
    average recall, the compute of every trial, the chosen trial's model statistics) and one per trainable
    run (initial -> learned window, its accuracy and UAR, its compute, its model statistics:
    :func:`figures.tables.model_stat_cells`)."""
    chosen = curve.dropna(subset=["chosen_ms"])
    pick = curve.loc[[chosen["chosen"].iloc[-1]]] if len(chosen) else curve.iloc[:0]
    rows = [{"run": "fixed window, search",
             "window (ms)": f"{chosen['chosen_ms'].iloc[-1]:.1f} (best found)" if len(chosen) else "-",
             "accuracy %": _percent(pick, acc_col), "UAR %": _percent(pick, uar_col),
             "compute (trial-s)": f"{curve['time_total_s'].sum():.1f}",
             "epochs": f"{curve['epoch'].add(1).sum():.0f}",
             "trials": f"{count(search)} tested, {int(search.get('stopped_early', pd.Series(dtype=bool)).sum())} "
                       "stopped early",
             COST_COLUMN: cost(search), **model_stat_cells(pick)}]
    for init, part in trainable.groupby("config/init_window_ms"):
        done = finished(part)
        run = done.iloc[:1]
        rows.append({"run": f"trainable from {init:g} ms",
                     "window (ms)": f"{init:g} → {run['best_lambd_ms'].iloc[0]:.1f} (learned)" if len(run) else "-",
                     "accuracy %": _percent(run, acc_col), "UAR %": _percent(run, uar_col),
                     "compute (trial-s)": f"{done['time_total_s'].sum():.1f}" if len(run) else "-",
                     "epochs": f"{done['epoch'].add(1).sum():.0f}" if len(run) else "-",
                     "trials": count(part), COST_COLUMN: cost(part), **model_stat_cells(run)})
    return pd.DataFrame(rows)


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """``load(name)`` gives ``(df, histories)`` of an experiment or ``None``; needs both parts."""
    search, trainable = load(SEARCH), load(TRAINABLE)
    if search is None or trainable is None:
        return
    search, trainable = search[0], trainable[0]
    acc_col = "test_accuracy" if split == "test" else "best_valid_acc"
    curve = search_curve(search, acc_col)
    save(compute_figure(curve, finished(trainable), acc_col, f"{split} accuracy (%)"), out_dir,
         f"{split}_window_search")
    data = data_caption(search, "audio_mnist", "FSDD (protocol dmel)")
    write_table(cost_table(search, curve, trainable, acc_col, uar_column(split)[0]), table_dir,
                f"{split}_window_search",
                f"{data}, mel_linear_net, {split} accuracy and unweighted average recall (UAR): the best fixed DMEL "
                "window found by search (chosen by validation loss) against one trainable DMEL run per initial window, "
                "with the compute each answer took (trial-seconds from the results; the search's includes the trials "
                "stopped early)." + stats_caption("of the chosen trial and of each trainable run"),
                [source_line(search), f"Trainable runs: {source_line(trainable)}"])
