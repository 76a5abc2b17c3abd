"""Paired statistics of DMEL trainable vs fixed runs: the pure function (figures/paired.py) against hand
computations (the Wilcoxon p from all 2^n sign assignments enumerated here, the bootstrap interval from
its own numpy draw and from its properties), "n/a" below 2 pairs, pairing by seed (a missing partner, an
unfinished and an errored trial, another grid setting, folds), and the cells of the Markdown, LaTeX and
HTML tables and of the figure built from hand-made frames."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from figures.dmel_paper import paper_table
from figures.paired import difference_cell, paired_difference, wilcoxon_cell
from figures.plotting import accuracy_and_window_grid, grid_row
from figures.report import build_report
from figures.tables import trainable_fixed_pairs, trainable_vs_fixed, write_table
from figures.time_frequency import table4
from tests.test_report import Page

DIFF = "Δ trainable−fixed (pp) [95 % CI]"  # the column names docs/figures.md documents
TEST = "p (Wilcoxon), n"


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of their ranks."""
    return [1 + sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]


def enumerated_p(d: list[float]) -> float:
    """Two-sided Wilcoxon p by enumerating every sign assignment of the non-zero differences: twice the
    smaller tail probability of the observed sum of positive ranks, at most 1."""
    d = [v for v in d if v != 0]
    ranks = average_ranks([abs(v) for v in d])
    observed = sum(r for r, v in zip(ranks, d) if v > 0)
    sums = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=len(d))]
    upper = sum(s >= observed - 1e-12 for s in sums) / len(sums)
    lower = sum(s <= observed + 1e-12 for s in sums) / len(sums)
    return min(1.0, 2 * min(upper, lower))


def numpy_bootstrap(d: np.ndarray) -> tuple[float, float]:
    """docs/figures.md: 10,000 resamples of the pairs from numpy.random.default_rng(0), percentiles 2.5/97.5."""
    index = np.random.default_rng(0).integers(0, len(d), size=(10_000, len(d)))
    low, high = np.percentile(d[index].mean(axis=1), [2.5, 97.5])
    return low, high


# --------------------------------------------------------------------------------------- the function

def test_three_pairs_by_hand():
    # differences 92-90 = 2, 85-86 = -1, 80-77 = 3: mean 4/3; |d| ranks 2, 1, 3, positive ranks 2 + 3 = 5;
    # of the 8 sign assignments 2 reach a sum >= 5 ({2,3}: 5, {1,2,3}: 6): p = 2 * 2/8 = 0.5
    s = paired_difference([92.0, 85.0, 80.0], [90.0, 86.0, 77.0])
    assert s.n == 3 and s.mean == pytest.approx(4 / 3)
    assert s.p == pytest.approx(0.5) == pytest.approx(enumerated_p([2, -1, 3]))
    # with 3 pairs each extreme resample (all -1, all 3) has probability 1/27 = 3.7 % > 2.5 %: the
    # percentile interval is exactly [min, max] of the differences
    assert (s.ci_low, s.ci_high) == (-1.0, 3.0)
    assert difference_cell(s) == "+1.3 [-1.0, +3.0]" and wilcoxon_cell(s) == "p=0.500, n=3"


def test_five_pairs_with_a_tie_and_a_zero_by_hand():
    a, b = np.array([83.0, 70.0, 71.0, 62.0, 50.0]), np.array([80.0, 71.0, 70.0, 60.0, 50.0])
    d = a - b  # 3, -1, 1, 2, 0: mean 1
    s = paired_difference(a, b)
    assert s.n == 5 and s.mean == pytest.approx(1.0)
    # the zero drops out; |d| = 3, 1, 1, 2 ranks 4, 1.5, 1.5, 3; positive ranks 4 + 1.5 + 3 = 8.5; of 16
    # assignments 3 reach >= 8.5 (10, and 8.5 twice) and 15 stay <= 8.5: p = 2 * 3/16 = 0.375
    assert s.p == pytest.approx(0.375) == pytest.approx(enumerated_p(list(d)))
    assert (s.ci_low, s.ci_high) == pytest.approx(numpy_bootstrap(d))
    assert -1.0 <= s.ci_low <= s.mean <= s.ci_high <= 3.0
    assert wilcoxon_cell(s) == "p=0.375, n=5"


@pytest.mark.parametrize("d", [[1, 2, 3, 4, 5], [5, -4, 3, 2, 1.5, -0.5], [2, 2, -2, 1, 1, 3, -3, 4, 0, 0, 5, 6]])
def test_exact_p_equals_the_enumeration(d):
    """Without ties (scipy's exact distribution) and with ties and zeros (its sign enumeration)."""
    s = paired_difference(np.array(d, dtype=float), np.zeros(len(d)))
    assert s.p == pytest.approx(enumerated_p(d), rel=1e-12)
    assert min(d) <= s.ci_low <= s.mean <= s.ci_high <= max(d)
    assert (s.ci_low, s.ci_high) == pytest.approx(numpy_bootstrap(np.array(d, dtype=float)))


def test_many_tied_pairs_use_the_normal_approximation():
    d = np.array([1, 1, 2, 2, 2, -1, 3, 3, -3, 4, 4, 5, -5, 6, 6, 7, 1, 2, 8, -2], dtype=float)  # 20, tied
    s = paired_difference(d, np.zeros_like(d))
    ranks = np.array(average_ranks(list(np.abs(d))))
    n = len(d)
    _, ties = np.unique(np.abs(d), return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - np.sum(ties ** 3 - ties) / 48  # tie-corrected, no continuity
    z = (ranks[d > 0].sum() - n * (n + 1) / 4) / math.sqrt(var)
    assert s.p == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)


def test_identical_and_zero_differences():
    same = paired_difference([94.0, 90.0, 70.0, 55.5], [92.0, 88.0, 68.0, 53.5])  # every difference 2
    assert (s := same).ci_low == s.mean == s.ci_high == pytest.approx(2.0)
    assert difference_cell(same) == "+2.0 [+2.0, +2.0]"
    assert same.p == pytest.approx(enumerated_p([2, 2, 2, 2])) == pytest.approx(0.125)  # 2 * 1/16
    # equal gaps computed in floating point tie: 70 - 50 and 50 - 30 from fractions * 100
    float_gaps = paired_difference(np.array([0.7, 0.5, 0.9]) * 100, np.array([0.5, 0.3, 0.7]) * 100)
    assert float_gaps.ci_low == float_gaps.ci_high and float_gaps.p == pytest.approx(0.25)
    zero = paired_difference([80.0, 75.0, 90.0], [80.0, 75.0, 90.0])  # nothing to test
    assert (zero.mean, zero.ci_low, zero.ci_high, zero.p) == (0.0, 0.0, 0.0, 1.0)
    assert difference_cell(zero) == "+0.0 [+0.0, +0.0]" and wilcoxon_cell(zero) == "p=1.000, n=3"


def test_fewer_than_two_pairs_are_na():
    for a, b, n in (([], [], 0), ([91.0], [90.0], 1)):
        s = paired_difference(a, b)
        assert s.n == n and all(math.isnan(v) for v in (s.mean, s.ci_low, s.ci_high, s.p))
        assert difference_cell(s) == "n/a" and wilcoxon_cell(s) == f"n/a, n={n}"
    with pytest.raises(ValueError, match="aligned"):
        paired_difference([1.0, 2.0], [1.0])


def test_small_p_and_the_same_numbers_every_time():
    d = np.arange(1.0, 21.0)  # 20 positive differences, no ties: exact p = 2 / 2**20
    s = paired_difference(d, np.zeros(20))
    assert s.p == pytest.approx(2 / 2 ** 20) and wilcoxon_cell(s) == "p<0.001, n=20"
    assert paired_difference(d, np.zeros(20)) == s  # fixed bootstrap seed


# ------------------------------------------------------------------------------------------- pairing

def trial(seed, trainable, acc, done=True, init=1.276, model="linear_net", **config):
    return {"config/model_name": model, "config/init_lambd": init, "config/trainable": trainable,
            "config/seed": seed, **{f"config/{k}": v for k, v in config.items()}, "done": done,
            "test_accuracy": acc, "best_lambd_est": 5.0, "time_total_s": 1.0, "epoch": 1}


def test_pairs_by_seed_drop_missing_partners_and_unfinished_trials():
    part = pd.DataFrame([
        trial(0, True, 0.90), trial(0, False, 0.88),                   # pair: +2
        trial(1, True, 0.50, done=False), trial(1, False, 0.80),       # trainable unfinished: no pair
        trial(2, True, 0.85), trial(2, False, math.nan, done=False),   # fixed errored before testing: no pair
        trial(3, True, 0.95),                                          # no fixed partner at all
        trial(5, False, 0.70),                                         # no trainable partner
        trial(4, False, 0.86), trial(4, True, 0.87),                   # pair: +1 (rows in any order)
        trial(6, True, 0.79), trial(6, False, 0.82),                   # pair: -3
    ])
    pairs = trainable_fixed_pairs(part, "test_accuracy")
    assert list(pairs["config/seed"]) == [0, 4, 6]
    assert list(pairs["trainable"]) == pytest.approx([90.0, 87.0, 79.0])
    assert list(pairs["fixed"]) == pytest.approx([88.0, 86.0, 82.0])
    out = trainable_vs_fixed(part, "test_accuracy", "best_lambd_est", ".1f")
    # mean (2 + 1 - 3) / 3 = 0; 3 pairs: interval [min, max] = [-3, +2]; ranks of |2, 1, -3|: 2, 1, 3, positive
    # 3; sums >= 3 in 5 of 8 assignments, <= 3 in 5 of 8: p = min(1, 2 * 5/8) = 1
    assert out["difference"] == "+0.0 [-3.0, +2.0]"
    assert out["wilcoxon"] == "p=1.000, n=3"
    assert out["n"] == "5/6, 5/6"  # the unpaired finished runs still count in the accuracy cells


def test_pairs_match_every_other_grid_setting_and_folds_average_first():
    part = pd.DataFrame([trial(0, True, 0.90, n_mels=32), trial(0, False, 0.85, n_mels=64),  # not a pair
                         trial(0, True, 0.80, n_mels=64), trial(0, False, 0.70, n_mels=32),
                         trial(1, True, 0.60, n_mels=32)])
    pairs = trainable_fixed_pairs(part, "test_accuracy")
    # seed 0, n_mels 32: 90 vs 70; seed 0, n_mels 64: 80 vs 85
    assert sorted(zip(pairs["trainable"], pairs["fixed"])) == [(80.0, 85.0), (90.0, 70.0)]
    # a key held twice on one side is ambiguous: it pairs nothing
    twice = pd.concat([part, pd.DataFrame([trial(0, True, 0.99, n_mels=32)])], ignore_index=True)
    assert list(trainable_fixed_pairs(twice, "test_accuracy")["fixed"]) == [85.0]

    folds = pd.DataFrame([trial(s, t, acc, fold=f) for f, s, t, acc in (
        (1, 0, True, 0.80), (1, 0, False, 0.70), (1, 1, True, 0.90), (1, 1, False, 0.90),   # fold 1: +10, 0 -> +5
        (2, 0, True, 0.60), (2, 0, False, 0.62), (2, 1, True, 0.60), (2, 1, False, 0.60),   # fold 2: -2, 0 -> -1
        (3, 0, True, 0.75), (3, 0, False, 0.70))])                                          # fold 3: +5
    by_fold = trainable_fixed_pairs(folds, "test_accuracy", unit="config/fold")
    assert list(by_fold["config/fold"]) == [1, 2, 3]
    assert list(by_fold["trainable"] - by_fold["fixed"]) == pytest.approx([5.0, -1.0, 5.0])
    out = trainable_vs_fixed(folds, "test_accuracy", "best_lambd_est", ".1f", unit="config/fold")
    # mean 3; 3 units: [-1, +5]; |5, -1, 5| ranks 2.5, 1, 2.5, positive 5: 2 of 8 sums >= 5 -> p = 0.5
    assert out["difference"] == "+3.0 [-1.0, +5.0]" and out["wilcoxon"] == "p=0.500, n=3 folds"


# ------------------------------------------------------------------------------ tables and figures

def hand_made_experiment() -> pd.DataFrame:
    """linear_net at lambda 1.276: seeds 0-4, differences +2, -1, +3, +1, +2 (seed 4's fixed run
    unfinished: 4 pairs); at 31.9: one seed (1 pair)."""
    rows = []
    for seed, (tr, fx) in enumerate(((0.92, 0.90), (0.85, 0.86), (0.80, 0.77), (0.88, 0.87), (0.90, 0.88))):
        rows += [trial(seed, True, tr), trial(seed, False, fx, done=seed != 4)]
    rows += [trial(0, True, 0.95, init=31.9), trial(0, False, 0.93, init=31.9)]
    return pd.DataFrame(rows)


def test_tables_carry_the_paired_columns(tmp_path):
    table = table4(hand_made_experiment(), "test_accuracy", "test_uar")
    write_table(table, tmp_path / "tables", "test_time_frequency", "caption", "Source: hand-made.")
    md = (tmp_path / "tables/test_time_frequency.md").read_text()
    header = [c.strip() for c in md.splitlines()[2].strip("|").split("|")]
    assert header.index(DIFF) == header.index("fixed acc %") + 1 and header.index(TEST) == header.index(DIFF) + 1
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()[4:6]]
    rows = {r[1]: dict(zip(header, r)) for r in cells}
    # lambda 1.3: differences 2, -1, 3, 1: mean 1.25 -> "+1.2" (round half to even); interval from the
    # numpy recipe; ranks of |2, 1, 3, 1|: 3, 1.5, 4, 1.5, positive 8.5 of 10: p = 2 * 3/16 = 0.375
    low, high = numpy_bootstrap(np.array([2.0, -1.0, 3.0, 1.0]))
    assert rows["1.3"][DIFF] == f"+1.2 [{low:+.1f}, {high:+.1f}]"
    assert rows["1.3"][TEST] == "p=0.375, n=4"
    assert rows["31.9"][DIFF] == "n/a" and rows["31.9"][TEST] == "n/a, n=1"
    tex = (tmp_path / "tables/test_time_frequency.tex").read_text()
    assert r"$\Delta$ trainable$-$fixed (pp) [95 \% CI] & p (Wilcoxon), n" in tex
    assert f"+1.2 [{low:+.1f}, {high:+.1f}] & p=0.375, n=4 &" in tex and "n/a & n/a, n=1 &" in tex
    # the HTML page re-parses the Markdown: the same header and cells
    page = Page(build_report(tmp_path / "figures", tmp_path / "tables", tmp_path))
    assert page.tables[0][0] == header
    html_rows = {r[1]: dict(zip(header, r)) for r in page.tables[0][1:]}
    assert html_rows["1.3"][DIFF] == rows["1.3"][DIFF] and html_rows["31.9"][TEST] == "n/a, n=1"


def test_fold_table_counts_folds(tmp_path):
    df = pd.DataFrame([{**trial(s, t, acc, fold=f, model="cnn6"), "config/init_window_ms": 10.0,
                        "best_lambd_ms": 25.0, "init_ms": 10.0}
                       for f, s, t, acc in ((1, 0, True, 0.80), (1, 0, False, 0.70), (2, 0, True, 0.60),
                                            (2, 0, False, 0.62))])
    row = paper_table(df, "test_accuracy", "test_uar", {}, "cnn6", over="folds").iloc[0]
    # folds: +10, -2: mean 4; 2 units: resampled means -2, 4, 10 with probability 1/4, 1/2, 1/4 ->
    # [-2, +10]; ranks 2, 1, positive 2: sums >= 2 in 2 of 4 assignments, <= 2 in 3 of 4 -> p = 1
    assert row[DIFF] == "+4.0 [-2.0, +10.0]" and row[TEST] == "p=1.000, n=2 folds"


def test_figure_draws_the_paired_interval():
    df = hand_made_experiment()
    fig = accuracy_and_window_grid(df[df["done"]], "test_accuracy", "config/init_lambd", "best_lambd_est", "samples")
    ax = grid_row(fig, 0)[2]
    (bars,) = ax.containers  # one errorbar: the window with 4 pairs (31.9 has 1: "n/a")
    x, y = bars.lines[0].get_data()
    assert list(x) == [1.276] and list(y) == pytest.approx([1.25])
    low, high = numpy_bootstrap(np.array([2.0, -1.0, 3.0, 1.0]))
    (segment,) = bars.lines[2][0].get_segments()
    assert segment[:, 1] == pytest.approx([low, high])
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["n/a\nn=1", "p=0.375\nn=4"]
