"""AudioMNIST experiment (DMEL paper, Table 3; 60 speakers, the DMEL code's speaker split): LNet
(``mel_linear_net``) and the conv head on DMEL trainable vs fixed at 10, 35 and 300 ms.

``<split>_audiomnist60``: accuracy and learned window against the initial window (figure-3 layout) with
the published numbers; ``tables/<split>_audiomnist60`` (accuracy and unweighted average recall, mean ±
std over samples, and the model statistics); ``lambda_curves_audiomnist60``.
Not the FSDD experiment ``audio_mnist`` (:mod:`figures.audio_mnist`).
"""
from __future__ import annotations

from pathlib import Path

from figures.dmel_paper import paper_figure, paper_table, with_init_ms
from figures.labels import data_caption
from figures.plotting import lambda_curves, save
from figures.provenance import source_line
from figures.read import finished
from figures.tables import PAIRED_CAPTION, PAIRED_STATS_CAPTION, uar_column, write_table

# DMEL paper, Table 3 (AudioMNIST, LNet = mel_linear_net, 10 runs): init ms -> (learned ms, DMEL, fixed)
PAPER_TABLE3 = {10: ("(314, 442)", "94.9 ± 1.0", "89.3 ± 1.0"), 35: ("(398, 484)", "95.0 ± 0.8", "91.9 ± 1.2"),
                300: ("(516, 608)", "95.3 ± 0.6", "95.3 ± 0.8")}
MODEL = "mel_linear_net"


def produce(load, split: str, out_dir: Path, table_dir: Path) -> None:
    """``load(name)`` gives ``(df, histories)`` of an experiment or ``None``."""
    loaded = load("audiomnist60")
    if loaded is None:
        return
    everything, histories = with_init_ms(loaded[0]), loaded[1]
    df = finished(everything)
    acc_col = "test_accuracy" if split == "test" else "best_valid_acc"
    save(paper_figure(df, acc_col, PAPER_TABLE3, MODEL, acc_label=f"{split} accuracy (%)"), out_dir, f"{split}_audiomnist60")
    data = data_caption(everything, "audiomnist60", "AudioMNIST (60 speakers, speaker split 36/12/12)")
    write_table(paper_table(everything, acc_col, uar_column(split)[0], PAPER_TABLE3, MODEL), table_dir,
                f"{split}_audiomnist60",
                f"{data}, {split} accuracy and UAR, mean ± std over samples. "
                "Paper: DMEL Table 3 (LNet = mel_linear_net, 10 runs; accuracy only)." + PAIRED_CAPTION
                + PAIRED_STATS_CAPTION, source_line(everything))
    save(lambda_curves(df, histories, "init_ms", "lambd_ms", "ms"), out_dir, "lambda_curves_audiomnist60")
