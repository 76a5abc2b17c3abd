"""GTZAN experiment: every front-end into ResNet18 on the fault-filtered split.

``test_gtzan``: clip-level accuracy (mean of segment logits) and majority-vote accuracy against
the initial window, one panel per ``split_parts``; a table (those accuracies, the unweighted average
recall of the mean-logit decisions, the cost and the model statistics) beside the published anchors;
``windows_gtzan``: the learned DMEL window against its initial value and the Ada-STFT windows
(best checkpoint of each seed-0 trial) against their Hann initialisation; the confusion matrix
of the best configuration summed over samples.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import torch

from figures.labels import data_caption, with_frontends
from figures.music import anchor_rows, best_confusion, comparison_table
from figures.plotting import accuracy_and_window_grid, frontend_comparison, learned_windows, save
from figures.provenance import source_line
from figures.read import finished, read_checkpoint_file
from figures.tables import stats_caption, uar_column, write_table
from models.functional import stft_window

# Published numbers on GTZAN (percent).
ANCHORS = [(77.6, "VGGish + PCA + SVM, filtered test 77.6"), (53.4, "MFCC + SVM, filtered test 53.4")]
ANCHOR_ROWS = [("Ada-STFT (published)", "window+kernels, best valid", "64.0 (optuna trials plateau near 53)"),
               ("VGGish + PCA + SVM (jordipons)", "filtered test split", "77.6"),
               ("MFCC + SVM (jordipons)", "filtered test split", "53.4")]


def _ada_windows(df: pd.DataFrame) -> list:
    out = []
    for _, row in df[(df["config/frontend"] == "adastft") & (df["config/seed"] == 0)].iterrows():
        folder = row["checkpoint_dir"]
        try:
            raw = read_checkpoint_file(folder, "best_model.pt") if isinstance(folder, str) and folder else None
            if raw is None:
                continue
            state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a truncated file: leave this window out, say so
            print(f"skipped an unreadable best_model.pt in {folder}: {type(e).__name__}: {e}")
            continue
        for key in sorted(k for k in state if k.startswith("frontend.") and k.endswith("window")):
            name = row["config/stft_window"].split("+")[0]
            initial = stft_window(name, state[key].numel()).numpy()
            out.append((f"{row['frontend']}, split_parts {row['config/split_parts']}", state[key].numpy(), initial))
    return out


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """``load(name)`` gives ``(df, histories)`` of an experiment or ``None``."""
    loaded = load("gtzan")
    if loaded is None:
        return
    everything = with_frontends(loaded[0])
    df = finished(everything)
    # valid: every column from the best-validation-loss epoch (valid_acc_vote would be the last epoch's)
    acc, vote = ("test_accuracy", "test_accuracy_vote") if split == "test" else ("best_valid_acc", "best_valid_acc_vote")
    metrics = {col: label for col, label in ((acc, f"{split} accuracy, clips (%)"), (vote, f"{split} accuracy, vote (%)"))
               if col in df and df[col].notna().any()}
    save(frontend_comparison(df, metrics, "config/split_parts", "{:g} part(s) per clip", ANCHORS if split == "test" else []),
         out_dir, f"{split}_gtzan")
    table = comparison_table(everything, "config/split_parts", "split_parts",
                             {acc: f"{split} acc % (mean logits)", vote: f"{split} acc % (vote)"},
                             uar_column(split), stats=True)
    table = pd.concat([table, anchor_rows(ANCHOR_ROWS, list(table.columns))], ignore_index=True)
    data = data_caption(everything, "gtzan", "GTZAN (fault-filtered split)")
    write_table(table, table_dir, f"{split}_gtzan",
                f"{data}, ResNet18, clip-level {split} accuracy and unweighted average recall (UAR, of the mean-logit "
                "decisions), mean ± std over samples; published anchors below (accuracy)." + stats_caption(),
                source_line(everything))
    dmel = df[df["config/frontend"] == "gaussian"]
    # (assigning df's column to an empty selection would give it df's rows, all NaN: take dmel's own)
    dmel = dmel.assign(**{"config/model_name": "resnet18, split_parts " + dmel["config/split_parts"].astype(str)})
    if len(dmel):
        save(accuracy_and_window_grid(dmel, acc, "init_ms", "best_lambd_ms", "ms"), out_dir, "dmel_windows_gtzan")
    windows = _ada_windows(df)
    if windows:
        save(learned_windows(windows, float(df["config/sample_rate"].iloc[0])), out_dir, "adastft_windows_gtzan")
    if split == "test":
        best_confusion(df, "config/split_parts", "split_parts {}", acc, "gtzan", out_dir)
