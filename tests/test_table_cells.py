"""The independent reader itself (tests/independent.py), on trial folders written by hand with numbers worked
out by hand: it must not pass a wrong table. The experiments' own checks run where each experiment is
trained (test_tables, test_music_tune, test_dmel_paper_tune, test_fsdd, test_frontend_bench, test_search)."""
import json

import numpy as np
import pytest

from tests.independent import Table, assert_table, expected_time_frequency, read_trials, signed_rank_p


def write_trial(exp, k, config, rows):
    """A trial folder as Tune and the trial leave it: params.json, result.json, a checkpoint's config.json."""
    d = exp / f"train_trial_hand_{k:05d}_{k}"
    (d / "checkpoint_000000").mkdir(parents=True)
    (d / "params.json").write_text(json.dumps(config))
    (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "checkpoint_000000/config.json").write_text(json.dumps({**config, "frontend": "gaussian"}))


def last_row(acc, lambd, seconds, done=True):
    return {"epoch": 4, "done": done, "test_loss": 0.5 if done else float("nan"), "test_accuracy": acc,
            "best_valid_acc": acc - 0.1, "best_lambd_est": lambd, "time_total_s": seconds, "code_version": "abc"}


@pytest.fixture
def hand_made(tmp_path):
    """linear_net from lambda 1.276: trainable 90 % and 80 % (seeds 0, 1), fixed 85 % and 70 %, and a
    fixed seed 2 that never reported."""
    exp = tmp_path / "time_frequency"
    base = {"model_name": "linear_net", "init_lambd": 1.276, "max_epochs": 5, "n_samples": 150}
    for k, (trainable, seed, acc, lambd, seconds) in enumerate(((True, 0, 0.9, 4.0, 10.0), (True, 1, 0.8, 6.5, 20.0),
                                                                (False, 0, 0.85, 1.276, 2.0), (False, 1, 0.7, 1.276, 4.0))):
        config = {**base, "trainable": trainable, "seed": seed}
        last = last_row(acc, lambd, seconds)
        write_trial(exp, k, config, [{**last, "epoch": 0, "done": False}, last])
    write_trial(exp, 4, {**base, "trainable": False, "seed": 2}, [])
    return tmp_path


def test_reader_recomputes_hand_made_trials(hand_made):
    with pytest.raises(AssertionError, match="did not end"):  # the folders cannot say why seed 2 has no rows
        expected_time_frequency(hand_made, "test")
    table = expected_time_frequency(hand_made, "test", read_trials(hand_made / "time_frequency"))
    assert table.notes is None
    [row] = table.rows
    assert row["trainable acc %"] == "85.0 ± 7.1"  # 90, 80: std sqrt(50) = 7.07
    assert row["fixed acc %"] == "77.5 ± 10.6"  # 85, 70: std sqrt(112.5) = 10.61; seed 2 never reported
    assert row["learned λ (min, max)"] == "(4.0, 6.5)"
    assert row["n finished/total (trainable, fixed)"] == "2/2, 2/3"
    assert row["cost: s/trial, epochs (trainable; fixed)"] == "15.0 s, 5.0 ep; 3.0 s, 5.0 ep"
    # pairs by seed: d = 90 - 85 = 5, 80 - 70 = 10; a resample of 2 pairs has mean 5 (1/4), 7.5 (1/2) or
    # 10 (1/4), so the 2.5th and 97.5th percentiles are 5 and 10; ranks 1, 2 both positive: of the 4
    # sign assignments one reaches the observed 3, p = 2 * 1/4
    assert row["Δ trainable−fixed (pp) [95 % CI]"] == "+7.5 [+5.0, +10.0]"
    assert row["p (Wilcoxon), n"] == "p=0.500, n=2"
    assert [row[c] for c in ("paper learned λ", "paper DSPEC %", "paper fixed %")] == ["(4.8, 5.6)", "98.5 ± 0.2", "95.5 ± 0.2"]
    assert expected_time_frequency(hand_made, "valid", read_trials(hand_made / "time_frequency")).rows[0][
        "trainable acc %"] == "75.0 ± 7.1"  # best_valid_acc: 80, 70


def test_signed_rank_p_by_hand():
    # |d| 1, 2, 3 ranked 1, 2, 3; positive ranks 2 + 3 = 5; of 8 sign assignments 2 reach >= 5: p = 0.5
    assert signed_rank_p(np.array([2.0, -1.0, 3.0])) == pytest.approx(0.5)
    # a zero drops out; ties 1, 1 share rank 1.5, 2 has rank 3: positive 1.5 + 3 = 4.5; the 8 sign
    # assignments give 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6, of which 3 reach >= 4.5: p = 2 * 3/8
    assert signed_rank_p(np.array([1.0, 0.0, -1.0, 2.0])) == pytest.approx(0.75)
    assert signed_rank_p(np.array([0.0, 0.0])) == 1.0
    assert signed_rank_p(np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == pytest.approx(2 / 32)


def test_a_wrong_cell_or_row_is_caught(tmp_path):
    expected = Table(["run", "accuracy %"], ("run",), [{"run": "a", "accuracy %": "90.0"}, {"run": "b", "accuracy %": "-"}],
                     ["Source: x."])
    path = tmp_path / "t.md"

    def write(rows, note="Source: x."):
        path.write_text("Caption.\n\n| run | accuracy % |\n|:--|--:|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
                        + f"\n{note}\n")

    write([("b", "-"), ("a", "90.0")])
    assert_table(path, expected)  # rows in any order
    for rows, note, message in (([("a", "90.1"), ("b", "-")], "Source: x.", "accuracy %"),
                                ([("a", "90.0")], "Source: x.", "'a'"),
                                ([("a", "90.0"), ("b", "-"), ("b", "-")], "Source: x.", "share a key"),
                                ([("a", "90.0"), ("b", "-")], "Source: y.", "Source: y.")):
        write(rows, note)
        with pytest.raises(AssertionError, match=message):
            assert_table(path, expected)
