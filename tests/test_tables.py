"""Every number in the tables: helpers on hand-made frames, and an end-to-end cross-check of every cell of
the Markdown table against the trials' own files read with plain json (tests/independent.py, not the
project's reader); partial and broken experiments; the source line under each table."""
import json
import math
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

import produce_figures
from figures.labels import initial_window_ms
from figures.music import best_configuration, comparison_table
from figures.provenance import source_line
from figures.read import summed_confusion
from figures import audio_mnist, embedding_heads, transfer, window_search
from figures.dmel_paper import paper_table
from figures.tables import COST_COLUMN, FLOPS_COLUMN, LATENCY_COLUMN, PARAMS_COLUMN, STAT_COLUMNS, cost, mean_std, \
    trainable_vs_fixed
from figures.time_frequency import table4
from models.functional import lambd_to_ms, ms_to_lambd
from tests import independent
from tests.independent import assert_table, assert_tables, expected_time_frequency, markdown_rows, read_trials
from training.provenance import code_version

# ---------------------------------------------------------------------------------------------- helpers


def test_mean_std_uses_ddof_1_and_percent():
    # values 0.5, 0.7, 0.9 -> 50, 70, 90: mean 70, sample std sqrt(((20)^2 + 0 + 20^2) / 2) = 20
    assert mean_std(pd.Series([0.5, 0.7, 0.9])) == "70.0 ± 20.0"
    # two values 0.1, 0.2: std (ddof 1) = 7.07..., ddof 0 would give 5.0
    assert mean_std(pd.Series([0.1, 0.2])) == "15.0 ± 7.1"
    assert mean_std(pd.Series([0.25]), scale=1.0) == "0.2"  # 0.25 rounds half to even, scale respected


def test_mean_std_one_sample_and_nan():
    assert mean_std(pd.Series([0.123])) == "12.3"  # no spread from one sample
    assert mean_std(pd.Series([0.5, math.nan, 0.9])) == "70.0 ± 28.3"  # NaN dropped, not counted as 0
    assert mean_std(pd.Series([math.nan, 0.4])) == "40.0"
    assert mean_std(pd.Series([], dtype=float)) == "-"
    assert mean_std(pd.Series([math.nan])) == "-"


def _dmel(trainable, acc, lambd, done=True, model="m", seconds=10.0, epoch=4):
    return {"config/trainable": trainable, "acc": acc, "lambd": lambd, "done": done, "config/model_name": model,
            "time_total_s": seconds, "epoch": epoch}


def test_trainable_vs_fixed_pairs_and_learned_range():
    part = pd.DataFrame([_dmel(True, 0.9, 4.0, seconds=12.0, epoch=9), _dmel(True, 0.8, 6.5, seconds=18.0, epoch=4),
                         _dmel(True, 0.7, 5.25, seconds=3.0, epoch=1),
                         _dmel(False, 0.6, 1.3, seconds=2.5), _dmel(False, 0.4, 1.3, seconds=3.0, epoch=6)])
    out = trainable_vs_fixed(part, "acc", "lambd", ".1f")
    assert out["trainable"] == "80.0 ± 10.0"
    assert out["fixed"] == "50.0 ± 14.1"
    assert out["learned"] == "(4.0, 6.5)"  # over trainable runs only: the fixed 1.3 never enters
    assert out["n"] == "3/3, 2/2"
    # trainable: (12 + 18 + 3) / 3 = 11 s, epochs run (10 + 5 + 2) / 3 = 5.67; fixed: 2.75 s, (5 + 7) / 2 = 6
    assert out["cost"] == "11.0 s, 5.7 ep; 2.8 s, 6.0 ep"


def test_trainable_vs_fixed_leaves_unfinished_out_but_counts_them():
    part = pd.DataFrame([_dmel(True, 0.9, 4.0), _dmel(True, 0.1, 99.0, done=False, seconds=500.0),
                         _dmel(False, 0.6, 1.3, seconds=1.0, epoch=0),
                         _dmel(False, math.nan, math.nan, done=False, seconds=math.nan, epoch=math.nan)])
    out = trainable_vs_fixed(part, "acc", "lambd", ".0f")
    assert out == {"learned": "(4, 4)", "trainable": "90.0", "fixed": "60.0", "n": "1/2, 1/2",
                   "cost": "10.0 s, 5.0 ep; 1.0 s, 1.0 ep",  # the unfinished 500 s never enters
                   "difference": "n/a", "wilcoxon": "n/a, n=1",  # one finished pair: no statistic
                   "stats": {f"{c} (trainable; fixed)": "-; -" for c in STAT_COLUMNS}}  # none recorded
    only_fixed = trainable_vs_fixed(part[part["config/trainable"] == False], "acc", "lambd", ".1f")  # noqa: E712
    assert only_fixed["learned"] == "-" and only_fixed["trainable"] == "-"


def _music(fe, init, panel, acc, ms=math.nan, done=True, ckpt=None, seconds=60.0, epoch=9):
    return {"frontend": fe, "init_ms": init, "config/split_parts": panel, "acc": acc, "best_lambd_ms": ms,
            "done": done, "checkpoint_dir": ckpt, "time_total_s": seconds, "epoch": epoch}


def test_comparison_table_cells():
    df = pd.DataFrame([_music("DMEL trainable", 25.0, 1, 0.5, 30.4, seconds=100.0, epoch=19),
                       _music("DMEL trainable", 25.0, 1, 0.7, 41.6, seconds=50.0, epoch=9),
                       _music("DMEL trainable", 25.0, 1, 0.0, 500.0, done=False, seconds=7.0, epoch=0),
                       _music("fixed mel", 25.0, 1, 0.6), _music("fixed mel", 25.0, 3, 0.8)])
    table = comparison_table(df, "config/split_parts", "split_parts", {"acc": "acc %", "nope": "absent %"})
    rows = {(r["front-end"], r["split_parts"]): r for r in table.to_dict("records")}
    dmel = rows[("DMEL trainable", "1")]
    assert dmel["acc %"] == "60.0 ± 14.1" and dmel["learned (ms, min-max)"] == "(30, 42)"
    assert dmel["n finished/total"] == "2/3" and dmel["init (ms)"] == "25" and dmel["absent %"] == "not recorded"
    assert dmel[COST_COLUMN] == "75.0 s, 15.0 ep"  # (100 + 50) / 2 s, (20 + 10) / 2 epochs; unfinished left out
    assert rows[("fixed mel", "3")][COST_COLUMN] == "60.0 s, 10.0 ep"
    assert rows[("fixed mel", "1")]["learned (ms, min-max)"] == "-" and rows[("fixed mel", "3")]["acc %"] == "80.0"
    assert len(table) == 3


# ------------------------------------------------------------ UAR and model statistics in every table

PAIRED_STATS = [f"{c} (trainable; fixed)" for c in STAT_COLUMNS]
# a finished trial's model statistics: a trainable window has 1 learnable parameter and (grown) more FLOPs
TRAINABLE_STATS = {"params_frontend_learnable": 1, "flops_frontend": 2.5e6, "flops_head": 1.0e5, "latency_ms_cpu": 0.5}
FIXED_STATS = {"params_frontend_learnable": 0, "flops_frontend": 2.0e6, "flops_head": 1.0e5, "latency_ms_cpu": 0.4}
# an unfinished trial's: never in a mean
WRONG_STATS = {"params_frontend_learnable": 99, "flops_frontend": 9e9, "flops_head": 9e9, "latency_ms_cpu": 99.0}


def _trial(seed, trainable, acc, uar, done=True, **extra):
    """A DMEL trial's last report: cnn6 from 10 ms, its accuracy, UAR and model statistics."""
    stats = WRONG_STATS if not done else TRAINABLE_STATS if trainable else FIXED_STATS
    return {"config/seed": seed, "config/trainable": trainable, "config/model_name": "cnn6", "config/init_lambd": 1.3,
            "init_ms": 10.0, "done": done, "test_accuracy": acc, "test_uar": uar, "best_lambd_ms": 25.0,
            "best_lambd_est": 5.0, "time_total_s": 10.0, "epoch": 4, **stats, **extra}


def _dmel_frame() -> pd.DataFrame:
    """Trainable seeds 0-2 and fixed seeds 0-1 finished, one unfinished trial of each with a wild UAR."""
    return pd.DataFrame([_trial(0, True, 0.90, 0.85), _trial(1, True, 0.80, 0.70), _trial(2, True, 0.70, 0.40),
                         _trial(3, True, 0.10, 0.01, done=False), _trial(0, False, 0.60, 0.55),
                         _trial(1, False, 0.50, 0.30), _trial(2, False, 0.20, 0.99, done=False)])


def _uar_of(df: pd.DataFrame, trainable: bool | None = None, column: str = "test_uar") -> str:
    """The expected UAR cell: plain numpy ``mean ± std`` (tests/independent.py) of ``column`` over the finished
    rows of ``df`` (of one side when ``trainable`` is given)."""
    done = df[df["done"] & (True if trainable is None else df["config/trainable"] == trainable)]
    return independent.mean_std(done[column].tolist())


# the model-statistics cells of the finished trials above (3 significant digits, FLOPs in 10^6)
PAIRED_STAT_CELLS = {PAIRED_STATS[0]: "1; 0", PAIRED_STATS[1]: "2.5 + 0.1; 2 + 0.1", PAIRED_STATS[2]: "0.5; 0.4"}


def test_dmel_tables_show_uar_and_model_statistics_of_both_sides():
    df = _dmel_frame()
    assert _uar_of(df, True) == "65.0 ± 22.9" and _uar_of(df, False) == "42.5 ± 17.7"  # the unfinished left out
    table = table4(df, "test_accuracy", "test_uar")
    assert list(table.columns) == [
        "model", "λ_init", "learned λ (min, max)", "trainable acc %", "fixed acc %", "Δ trainable−fixed (pp) [95 % CI]",
        "p (Wilcoxon), n", "trainable UAR %", "fixed UAR %", "n finished/total (trainable, fixed)",
        "cost: s/trial, epochs (trainable; fixed)", *PAIRED_STATS, "paper learned λ", "paper DSPEC %", "paper fixed %"]
    row = table.iloc[0]
    assert row["trainable UAR %"] == _uar_of(df, True) and row["fixed UAR %"] == _uar_of(df, False)
    assert {c: row[c] for c in PAIRED_STATS} == PAIRED_STAT_CELLS
    paper = paper_table(df, "test_accuracy", "test_uar", {}, "cnn6").iloc[0]
    assert list(paper.index[5:9]) == ["Δ trainable−fixed (pp) [95 % CI]", "p (Wilcoxon), n", "DMEL UAR %",
                                      "fixed UAR %"]
    assert paper["DMEL UAR %"] == _uar_of(df, True) and paper["fixed UAR %"] == _uar_of(df, False)
    assert {c: paper[c] for c in PAIRED_STATS} == PAIRED_STAT_CELLS
    reference = pd.DataFrame([{"config/model_name": "cnn6", "done": done, "test_accuracy": acc, "test_uar": uar}
                              for done, acc, uar in ((True, 0.7, 0.6), (True, 0.9, 0.8), (False, 0.0, 0.0))])
    fsdd = audio_mnist.table3(df, reference, "test_accuracy", "test_uar").iloc[0]
    assert fsdd["DMEL UAR %"] == _uar_of(df, True) and fsdd["fixed UAR %"] == _uar_of(df, False)
    assert fsdd["torchaudio 25 ms UAR %"] == _uar_of(reference) == "70.0 ± 14.1"
    assert {c: fsdd[c] for c in PAIRED_STATS} == PAIRED_STAT_CELLS
    assert audio_mnist.table3(df, None, "test_accuracy", "test_uar").iloc[0]["torchaudio 25 ms UAR %"] == "not run"


def test_dmel_fold_table_takes_the_uar_over_fold_means():
    rows = [_trial(0, True, 0.8, uar, fold=fold) for fold, uar in ((1, 0.6), (1, 0.8), (2, 0.5))]
    rows += [_trial(0, False, 0.7, uar, fold=fold) for fold, uar in ((1, 0.4), (2, 0.3))]
    df = pd.DataFrame(rows).rename(columns={"fold": "config/fold"})
    row = paper_table(df, "test_accuracy", "test_uar", {}, "cnn6", over="folds").iloc[0]
    # trainable: fold 1's mean (0.6 + 0.8) / 2 = 0.7, fold 2's 0.5 -> over folds 60 ± 14.1; fixed 35 ± 7.1
    assert row["DMEL UAR %"] == independent.mean_std([0.7, 0.5]) == "60.0 ± 14.1"
    assert row["fixed UAR %"] == independent.mean_std([0.4, 0.3])


def test_old_results_without_uar_or_statistics_give_dashes():
    old = _dmel_frame().drop(columns=["test_uar", *TRAINABLE_STATS])
    row = table4(old, "test_accuracy", "test_uar").iloc[0]
    assert row["trainable UAR %"] == row["fixed UAR %"] == "-"
    assert {c: row[c] for c in PAIRED_STATS} == dict.fromkeys(PAIRED_STATS, "-; -")
    folds = paper_table(old.assign(**{"config/fold": 1}), "test_accuracy", "test_uar", {}, "cnn6", over="folds")
    assert folds.iloc[0]["DMEL UAR %"] == "-"
    music = comparison_table(pd.DataFrame([_music("fixed mel", 25.0, 1, 0.6)]), "config/split_parts", "split_parts",
                             {"acc": "acc %"}, ("test_uar", "test UAR %"), stats=True)
    assert music.iloc[0]["test UAR %"] == "-"
    assert [music.iloc[0][c] for c in STAT_COLUMNS] == ["-", "-", "-"]


def test_music_table_uar_beside_the_first_metric_and_statistics_after_n():
    df = pd.DataFrame([{**_music("DMEL trainable", 25.0, 1, 0.5, 30.4), "vote": 0.4, "test_uar": 0.45, **TRAINABLE_STATS},
                       {**_music("DMEL trainable", 25.0, 1, 0.7, 41.6), "vote": 0.6, "test_uar": 0.65,
                        **{**TRAINABLE_STATS, "flops_frontend": 2.7e6, "latency_ms_cpu": 0.7}},
                       {**_music("DMEL trainable", 25.0, 1, 0.0, 500.0, done=False), "test_uar": 0.0, **WRONG_STATS}])
    table = comparison_table(df, "config/split_parts", "split_parts", {"acc": "acc %", "vote": "vote %"},
                             ("test_uar", "test UAR %"), stats=True)
    assert list(table.columns) == ["front-end", "init (ms)", "split_parts", "learned (ms, min-max)", "acc %",
                                   "test UAR %", "vote %", COST_COLUMN, "n finished/total", *STAT_COLUMNS]
    row = table.iloc[0]
    assert row["test UAR %"] == _uar_of(df) == "55.0 ± 14.1"
    # means over the 2 finished trials: FLOPs (2.5 + 2.7) / 2 = 2.6 MFLOP + 0.1, latency (0.5 + 0.7) / 2
    assert (row[PARAMS_COLUMN], row[FLOPS_COLUMN], row[LATENCY_COLUMN]) == ("1", "2.6 + 0.1", "0.6")
    assert list(comparison_table(df, "config/split_parts", "split_parts", {"acc": "acc %"}).columns) == [
        "front-end", "init (ms)", "split_parts", "learned (ms, min-max)", "acc %", COST_COLUMN, "n finished/total"]


def test_window_search_table_uar_and_statistics_of_the_chosen_trial():
    search = pd.DataFrame([{"timestamp": k, "done": True, "time_total_s": 5.0, "epoch": 1, "config/init_window_ms": ms,
                            "best_valid_loss": loss, "test_accuracy": acc, "test_uar": uar, **stats}
                           for k, (ms, loss, acc, uar, stats) in enumerate((
                               (20.0, 0.9, 0.5, 0.45, FIXED_STATS), (40.0, 0.3, 0.8, 0.75, TRAINABLE_STATS),
                               (60.0, 0.6, 0.7, 0.65, FIXED_STATS)))])
    trainable = pd.DataFrame([{"config/init_window_ms": 10.0, "done": True, "time_total_s": 9.0, "epoch": 3,
                               "best_lambd_ms": 31.0, "test_accuracy": 0.9, "test_uar": 0.88, **TRAINABLE_STATS},
                              {"config/init_window_ms": 35.0, "done": False, "time_total_s": 1.0, "epoch": 0,
                               "best_lambd_ms": 35.0, "test_accuracy": 0.1, "test_uar": 0.1, **WRONG_STATS}])
    curve = window_search.search_curve(search, "test_accuracy")
    assert list(curve["chosen"]) == [0, 1, 1]  # the 40 ms trial (lowest loss) once it is there
    table = window_search.cost_table(search, curve, trainable, "test_accuracy", "test_uar")
    assert list(table.columns) == ["run", "window (ms)", "accuracy %", "UAR %", "compute (trial-s)", "epochs", "trials",
                                   COST_COLUMN, *STAT_COLUMNS]
    rows = table.set_index("run")
    chosen = search[search["best_valid_loss"] == search["best_valid_loss"].min()].iloc[0]
    assert rows.loc["fixed window, search", "UAR %"] == f"{100 * chosen['test_uar']:.1f}" == "75.0"
    assert list(rows.loc["fixed window, search", list(STAT_COLUMNS)]) == ["1", "2.5 + 0.1", "0.5"]
    assert rows.loc["trainable from 10 ms", "UAR %"] == "88.0"
    assert list(rows.loc["trainable from 35 ms", ["accuracy %", "UAR %", *STAT_COLUMNS]]) == ["-"] * 5
    old = window_search.cost_table(search.drop(columns="test_uar"), curve.drop(columns="test_uar"),
                                   trainable.drop(columns="test_uar"), "test_accuracy", "test_uar")
    assert set(old["UAR %"]) == {"-"}


def test_transfer_table_uar_per_size_and_statistics_per_method():
    def row(head, size, seed, acc, uar, **extra):
        return {"config/classifier": head, "config/embedding": "mfcc", "config/train_per_class": size,
                "config/seed": seed, "done": True, "test_accuracy": acc, "test_uar": uar, "time_total_s": 2.0,
                "embed_seconds": 30.0, **extra}

    df = pd.DataFrame([row("svm_rbf", 1, 0, 0.5, 0.4), row("svm_rbf", 1, 1, 0.7, 0.6), row("svm_rbf", None, 0, 0.9, 0.8),
                       {**row(None, None, 0, 0.95, 0.9, frontend="DMEL trainable"), **TRAINABLE_STATS}])
    curve = transfer.curves(df, "test_accuracy", "test_uar")
    table = transfer.table(curve, df)
    assert list(table.columns) == ["method", "1", "UAR 1", "all", "UAR all", "s/trial (mean)", "embedding, once (s)",
                                   *STAT_COLUMNS]
    rows = table.set_index("method")
    svm = rows.loc["MFCC stats + RBF SVM"]
    v = np.array([0.4, 0.6]) * 100  # the two seeds' UAR at 1 example per class: mean ± 95 % t half-width (n)
    half = scipy_stats.t.ppf(0.975, 1) * v.std(ddof=1) / np.sqrt(2)
    assert svm["UAR 1"] == f"{v.mean():.1f} ± {half:.1f} (2)" and svm["UAR all"] == "80.0 (1)"
    assert list(svm[list(STAT_COLUMNS)]) == ["-", "-", "-"]  # a scikit-learn head records none
    neural = rows.loc["DMEL trainable (from scratch)"]
    assert neural["UAR 1"] == "-" and neural["UAR all"] == "90.0 (1)"
    assert list(neural[list(STAT_COLUMNS)]) == ["1", "2.5 + 0.1", "0.5"]
    old = transfer.table(transfer.curves(df.drop(columns="test_uar"), "test_accuracy", "test_uar"), df)
    assert old.set_index("method").loc["MFCC stats + RBF SVM", "UAR all"] == "-"


def test_embedding_heads_table_uar_and_empty_statistics():
    df = pd.DataFrame([{"config/classifier": "svm_rbf", "config/pca_components": None, "config/seed": seed,
                        "done": done, "test_accuracy": acc, "test_accuracy_vote": acc, "test_accuracy_segment": acc,
                        "test_uar": uar, "fit_seconds": 1.0}
                       for seed, done, acc, uar in ((0, True, 0.6, 0.5), (1, True, 0.8, 0.7), (2, False, 0.0, 0.0))])
    table = embedding_heads.table(df, "test")
    assert list(table.columns) == ["head", "PCA (whitened)", "vote %", "mean prob. %", "mean prob. UAR %", "patches %",
                                   "fit s", "n finished/total", *STAT_COLUMNS]
    assert table.iloc[0]["mean prob. UAR %"] == _uar_of(df) == "60.0 ± 14.1"
    assert list(table.iloc[0][list(STAT_COLUMNS)]) == ["-", "-", "-"]
    assert embedding_heads.table(df.drop(columns="test_uar"), "test").iloc[0]["mean prob. UAR %"] == "-"


def test_cost_counts_trials_stopped_early_and_falls_back_to_training_iteration():
    df = pd.DataFrame({"done": [True, False, False, False], "stopped_early": [False, True, False, False],
                       "time_total_s": [30.0, 6.0, 900.0, math.nan], "epoch": [9, 1, 50, math.nan]})
    # the finished (30 s, 10 epochs) and the stopped (6 s, 2 epochs) trial: 18 s, 6 epochs; unfinished left out
    assert cost(df) == "18.0 s, 6.0 ep"
    by_iteration = df.drop(columns="epoch").assign(training_iteration=[10, 2, 51, math.nan])
    assert cost(by_iteration) == "18.0 s, 6.0 ep"
    assert cost(df[df["done"] == False].assign(stopped_early=False)) == "-"  # noqa: E712 - nothing ended
    assert cost(df.drop(columns="time_total_s")) == "not recorded"


def test_best_configuration_by_mean_over_finished():
    df = pd.DataFrame([_music("A", 10.0, 1, 0.9), _music("A", 10.0, 1, 0.1),   # mean 0.5
                       _music("B", 10.0, 1, 0.6), _music("B", 10.0, 1, 0.6),   # mean 0.6: best
                       _music("C", 10.0, 1, 0.99, done=False),                 # unfinished: never best
                       _music("B", 20.0, 1, 0.55)])
    best = best_configuration(df, "config/split_parts", "acc")
    assert set(best["frontend"]) == {"B"} and set(best["init_ms"]) == {10.0} and len(best) == 2


def test_summed_confusion_adds_counts_and_skips_broken(tmp_path, capsys):
    labels = ["a", "b"]
    folders = []
    for k, counts in enumerate(([[3, 1], [0, 2]], [[1, 0], [2, 5]])):
        d = tmp_path / f"c{k}"
        d.mkdir()
        pd.DataFrame(counts, index=labels, columns=labels).to_csv(d / "confusion_matrix.csv")
        folders.append(str(d))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "confusion_matrix.csv").write_text("")
    (tmp_path / "none").mkdir()
    df = pd.DataFrame({"checkpoint_dir": folders + [str(tmp_path / "empty"), str(tmp_path / "none"), None]})
    cm = summed_confusion(df)
    assert cm.to_numpy().tolist() == [[4, 1], [2, 7]]
    assert list(cm.index) == labels and list(cm.columns) == labels
    assert "unreadable confusion matrix" in capsys.readouterr().out
    assert summed_confusion(pd.DataFrame({"checkpoint_dir": [None]})) is None


def test_ms_lambda_conversions_by_hand():
    # the window is 6 lambda: lambda = 8 samples at 8 kHz is 48 samples = 6 ms (not 1 ms, not 36 ms)
    assert lambd_to_ms(8.0, 8000) == pytest.approx(6.0)
    assert lambd_to_ms(1.0, 1000) == pytest.approx(6.0)
    assert ms_to_lambd(6.0, 8000) == pytest.approx(8.0)
    assert ms_to_lambd(25.0, 16000) == pytest.approx(25 * 16 / 6)
    for ms in (10.0, 35.0, 300.0):
        assert lambd_to_ms(ms_to_lambd(ms, 22050), 22050) == pytest.approx(ms)


def test_initial_window_ms_by_hand():
    row = lambda **kw: pd.Series({"config/sample_rate": 8000, "config/init_window_ms": math.nan, **kw})  # noqa: E731
    assert initial_window_ms(row(**{"config/frontend": "gaussian", "config/init_lambd": 8.0})) == 6.0
    assert initial_window_ms(row(**{"config/frontend": "gaussian", "config/init_lambd": 8.0,
                                    "config/init_window_ms": 35.0})) == 35.0
    assert initial_window_ms(row(**{"config/frontend": "adastft", "config/n_fft": 200})) == 25.0
    assert initial_window_ms(row(**{"config/frontend": "torchaudio_mel", "config/fixed_win_ms": 25.04})) == 25.0
    # each learnable filterbank's own window key; an experiment that never set it (a --set variant list
    # without a fixed mel has no fixed_win_ms column at all): the config default
    assert initial_window_ms(row(**{"config/frontend": "efficientleaf", "config/leaf_window_ms": 30.0})) == 30.0
    assert initial_window_ms(row(**{"config/frontend": "leaf"})) == 25.0
    assert initial_window_ms(row(**{"config/frontend": "sincnet"})) == 16.0
    assert initial_window_ms(row(**{"config/frontend": "trainable_mel", "config/fixed_win_ms": math.nan})) == 25.0
    assert initial_window_ms(row(**{"config/frontend": "dstft", "config/init_window_ms": 35.0})) == 35.0


def test_code_version(tmp_path, root):
    assert code_version(tmp_path) == "unknown"  # a copy without .git (Ray's runtime environment)
    version = code_version(root)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert re.fullmatch(re.escape(head.stdout.strip()) + r"(-dirty)?", version)


# ---------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="session")
def experiment(tiny_experiment):
    """8 finished trials: linear_net x trainable/fixed x lambda 1.276/31.9 x seeds 0, 1 (conftest's
    ``tiny_experiment``, shared with other files: read only)."""
    return tiny_experiment


def produce(results_dir, rr, split="test", capsys=None):
    code = produce_figures.main([f"--split={split}", f"--ray_root_dir={rr}", f"--results_dir={results_dir}"])
    return code, (capsys.readouterr().out if capsys else "")


def test_markdown_table_equals_independent_recomputation(experiment, tiny_figures, tmp_path):
    """Every cell of Table 4 and the line under it, for both splits, against tests/independent.py."""
    trials = read_trials(experiment / "time_frequency")
    assert len(trials) == 8 and all(t.finished for t in trials)
    assert all(t.last["epoch"] + 1 == t.last["training_iteration"] == 2 for t in trials)  # the epochs count
    assert produce(tmp_path / "valid", experiment, "valid")[0] == 0
    for split, results in (("test", tiny_figures[0]), ("valid", tmp_path / "valid")):
        table = assert_tables(experiment, results / "tables", "time_frequency", split)
        assert len(table.rows) == 2 and {r["n finished/total (trainable, fixed)"] for r in table.rows} == {"2/2, 2/2"}
        assert {r["p (Wilcoxon), n"].rsplit(", ", 1)[1] for r in table.rows} == {"n=2"}  # seeds 0, 1 pair up


def test_valid_columns_come_from_the_best_epoch(experiment):
    """best_valid_acc/_vote/_segment are the values of the epoch with the lowest valid_loss (plain json)."""
    for trial in read_trials(experiment / "time_frequency"):
        rows, last = trial.rows, trial.last
        best = min(rows, key=lambda r: r["valid_loss"])
        for col in ("acc", "acc_vote", "acc_segment"):
            assert last[f"best_valid_{col}"] == best[f"valid_{col}"], col
        assert last["best_epoch"] == best["epoch"]
        assert last["code_version"] == rows[0]["code_version"] != ""


def test_gtzan_valid_vote_reads_the_best_epoch(tmp_path):
    """The GTZAN valid table takes best_valid_acc_vote, never the last epoch's valid_acc_vote."""
    from figures import gtzan

    rows = []
    for seed, (best, last) in enumerate(((0.8, 0.1), (0.6, 0.2))):
        rows.append({"config/frontend": "torchaudio_mel", "config/fixed_win_ms": 25.0, "config/sample_rate": 8000,
                     "config/split_parts": 1, "config/seed": seed, "config/max_epochs": 3, "config/trainable": False, "done": True, "epoch": 2,
                     "best_valid_acc": 0.5, "best_valid_acc_vote": best, "valid_acc_vote": last,
                     "checkpoint_dir": None, "code_version": "abc1234"})
    df = pd.DataFrame(rows)
    df.attrs.update(experiment="/x/gtzan", trials=pd.DataFrame({"trial_id": ["a", "b"], "trial_dir": ["a", "b"],
                                                                "status": "TERMINATED", "done": True}))
    gtzan.produce(lambda name: (df, {}), "valid", tmp_path / "fig", tmp_path / "tab")
    table = markdown_rows((tmp_path / "tab/valid_gtzan.md").read_text())
    assert table[0]["valid acc % (vote)"] == "70.0 ± 14.1"  # (80, 60), not the last epoch's (10, 20)


def test_source_line_under_every_table(experiment, tiny_figures):
    md = (tiny_figures[0] / "tables/test_time_frequency.md").read_text()
    tex = (tiny_figures[0] / "tables/test_time_frequency.tex").read_text()
    version = read_trials(experiment / "time_frequency")[0].last["code_version"]
    line = md.strip().splitlines()[-1]
    assert line == (f"Source: {(experiment / 'time_frequency').resolve()}; 8 of 8 trials finished; budget: "
                    f"max_epochs 2, epochs run 2, 2 samples (seeds) per configuration, n_samples 150; code: {version}.")
    assert r"\footnotesize Source:" in tex and r"n\_samples 150" in tex and tex.index("Source") < tex.index(r"\end{table}")


def _edit_state(exp: Path, edit) -> None:
    """Apply ``edit(trial_json_state: dict, runtime_metadata: dict)`` to every trial of the experiment state."""
    path = next(exp.glob("experiment_state-*.json"))
    state = json.loads(path.read_text())
    new = []
    for trial_json, runtime_json in state["trial_data"]:
        trial, runtime = json.loads(trial_json), json.loads(runtime_json)
        edit(trial, runtime)
        new.append([json.dumps(trial), json.dumps(runtime)])
    state["trial_data"] = new
    path.write_text(json.dumps(state))


@pytest.fixture(scope="module")
def broken(experiment, tmp_path_factory):
    """A copy of the experiment with trial 0 unfinished, 1 errored after one epoch, 2 errored before any
    report (its result files gone), and 3 finished but with truncated result.json, progress.csv,
    confusion_matrix.csv and best_model.pt."""
    rr = tmp_path_factory.mktemp("broken") / "rr"
    shutil.copytree(experiment, rr)
    exp = rr / "time_frequency"

    def edit(trial, runtime):
        k = int(trial["trial_id"].split("_")[-1])
        last = runtime["last_result"]
        if k in (0, 1):
            last.update(done=False, epoch=0, test_accuracy=math.nan)
            trial["status"] = "PAUSED" if k == 0 else "ERROR"
        if k == 2:
            runtime["last_result"] = {}
            trial["status"] = "ERROR"
    _edit_state(exp, edit)
    d = {int(p.name.split("_")[3]): p for p in exp.glob("train_trial_*")}
    for name in ("result.json", "progress.csv"):
        (d[2] / name).unlink()
        text = (d[3] / name).read_text()
        (d[3] / name).write_text(text[: len(text) // 2])
    for name in ("confusion_matrix.csv", "best_model.pt"):
        for f in d[3].glob(f"checkpoint_*/{name}"):
            f.write_bytes(f.read_bytes()[:7])
    return rr, d


def test_partial_and_broken_experiment(broken, experiment, tmp_path, capsys):
    """Unfinished and errored trials are named and left out of the numbers, counted in n (every cell
    recomputed by tests/independent.py); truncated files do not stop the figures."""
    rr, dirs = broken
    for split in ("test", "valid"):
        code, out = produce(tmp_path / split, rr, split, capsys)
        assert code == 0, out
        text = (tmp_path / split / f"tables/{split}_time_frequency.md").read_text()
        for k, status in ((0, "PAUSED"), (1, "ERROR"), (2, "ERROR")):
            assert f"{dirs[k].name} ({status})" in out
        assert "time_frequency: 3 of 8 trials not finished" in out
        assert "5 of 8 trials finished (2 errored)" in text, text
        for f in ("data_example.png", f"{split}_time_frequency.png", "lambda_curves_time_frequency.png"):
            assert (tmp_path / split / "figures" / f).stat().st_size > 0
        # every cell: trials 0-2 never ended as the experiment's state says (no rows), 3 as before its
        # files were cut (the numbers come from the state, not from result.json)
        good = read_trials(experiment / "time_frequency")
        seen = [t if k > 2 else replace(t, rows=[]) for k, t in enumerate(good)]
        assert_table(tmp_path / split / f"tables/{split}_time_frequency.md",
                     expected_time_frequency(experiment, split, seen))
        assert len(dirs) == 8


def test_unreadable_experiment_state_is_skipped(experiment, tmp_path, capsys):
    rr = tmp_path / "rr"
    shutil.copytree(experiment, rr)
    for path in (rr / "time_frequency").glob("experiment_state-*.json"):
        path.write_text(path.read_text()[:100])
    code, out = produce(tmp_path / "r", rr, "test", capsys)
    assert code == 0
    assert "time_frequency: cannot read the experiment" in out and "skipped" in out
    assert not (tmp_path / "r/tables/test_time_frequency.md").exists()


def test_source_line_without_versions():
    df = pd.DataFrame({"done": [True, False], "config/seed": [0, 0], "config/max_epochs": [10, 10]})
    assert source_line(df) == ("Source: unknown experiment; 1 of 2 trials finished; budget: max_epochs 10, "
                               "1 samples (seeds) per configuration; code: not recorded.")
