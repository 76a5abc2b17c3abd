"""FSDD experiment: figure ``test_audio_mnist`` (figure-2 layout, windows in ms), Table-3-style table
(accuracy and unweighted average recall, trainable vs fixed, with the model statistics of both), lambda
curves. The fixed torchaudio 25 ms reference (``audio_mnist_reference``) is added when run."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from figures.labels import data_caption
from figures.plotting import accuracy_and_window_grid, grid_row, lambda_curves, save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import PAIRED_CAPTION, PAIRED_COST_COLUMN, PAIRED_DIFF_COLUMN, PAIRED_STATS_CAPTION, \
    PAIRED_TEST_COLUMN, mean_std_cell, trainable_vs_fixed, uar_column, write_table

SAMPLE_RATE = 8000
# DMEL paper, Table 3 (AudioMNIST, LNet = mel_linear_net, 10 runs): init ms -> (learned ms, DMEL, fixed)
PAPER_TABLE3 = {10: ("(314, 442)", "94.9 ± 1.0", "89.3 ± 1.0"), 35: ("(398, 484)", "95.0 ± 0.8", "91.9 ± 1.2"),
                300: ("(516, 608)", "95.3 ± 0.6", "95.3 ± 0.8")}


def _with_ms(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["init_ms"] = (6000.0 * df["config/init_lambd"] / SAMPLE_RATE).round(1)
    return df


def table3(df: pd.DataFrame, ref: pd.DataFrame | None, acc_col: str, uar_col: str) -> pd.DataFrame:
    """One row per (model, initial window): :func:`figures.tables.trainable_vs_fixed`'s cells (accuracy and
    ``uar_col``, the unweighted average recall, trainable vs fixed; the paired difference; the model
    statistics of both), the fixed torchaudio reference's accuracy and UAR with the same model (``ref``;
    ``not run`` without it) and the AudioMNIST paper's Table 3 for ``mel_linear_net``."""
    rows = []
    for (model, init), part in df.groupby(["config/model_name", "init_ms"]):
        ours = trainable_vs_fixed(part, acc_col, "best_lambd_ms", ".0f", uar_col=uar_col)
        paper = PAPER_TABLE3.get(int(round(init))) if model == "mel_linear_net" else None
        ref_done = finished(ref[ref["config/model_name"] == model]) if ref is not None else None
        rows.append({
            "model": model, "init (ms)": f"{init:g}", "learned (ms, min-max)": ours["learned"],
            "DMEL acc %": ours["trainable"], "fixed acc %": ours["fixed"],
            PAIRED_DIFF_COLUMN: ours["difference"], PAIRED_TEST_COLUMN: ours["wilcoxon"],
            "torchaudio 25 ms %": mean_std_cell(ref_done, acc_col) if ref_done is not None else "not run",
            "DMEL UAR %": ours["trainable_uar"], "fixed UAR %": ours["fixed_uar"],
            "torchaudio 25 ms UAR %": mean_std_cell(ref_done, uar_col) if ref_done is not None else "not run",
            "n finished/total (trainable, fixed)": ours["n"], PAIRED_COST_COLUMN: ours["cost"], **ours["stats"],
            "AudioMNIST paper learned": paper[0] if paper else "-", "AudioMNIST paper DMEL %": paper[1] if paper else "-",
            "AudioMNIST paper fixed %": paper[2] if paper else "-",
        })
    return pd.DataFrame(rows)


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """``load(name)`` gives ``(df, histories)`` of an experiment or ``None``."""
    loaded = load("audio_mnist")
    if loaded is None:
        return
    everything, histories = _with_ms(loaded[0]), loaded[1]
    df = finished(everything)
    ref = load("audio_mnist_reference")
    ref_all = ref[0] if ref is not None else None
    ref_df = finished(ref_all) if ref_all is not None else None
    acc_col = "test_accuracy" if split == "test" else "best_valid_acc"
    fig = accuracy_and_window_grid(df, acc_col, "init_ms", "best_lambd_ms", "ms", acc_label=f"{split} accuracy (%)")
    if ref_df is not None:
        for row, model in enumerate(sorted(df["config/model_name"].unique())):
            acc = ref_df.loc[ref_df["config/model_name"] == model, acc_col] * 100
            if len(acc):
                ax_acc = grid_row(fig, row)[0]
                ax_acc.axhline(acc.mean(), color="gray", ls=":", label="torchaudio Hann 25 ms")
                ax_acc.legend(fontsize=8)
    save(fig, out_dir, f"{split}_audio_mnist")
    data = data_caption(everything, "audio_mnist", "FSDD (protocol dmel)")
    write_table(table3(everything, ref_all, acc_col, uar_column(split)[0]), table_dir, f"{split}_audio_mnist",
                f"{data}, {split} accuracy and UAR, mean ± std over samples. The paper's columns are "
                "AudioMNIST (DMEL Table 3, LNet = mel_linear_net; accuracy only): a trend to compare, not a number "
                "to match." + PAIRED_CAPTION + PAIRED_STATS_CAPTION,
                [source_line(everything)] + ([f"Reference: {source_line(ref_all)}"] if ref_all is not None else []))
    save(lambda_curves(df, histories, "init_ms", "lambd_ms", "ms"), out_dir, "lambda_curves_audio_mnist")
