"""predict.py on a finished tiny FSDD experiment: its predictions are the trial's own (mean logits and
segment votes, clip by clip), its export is the trial's learned window, its renders are written, and every
bad input gets one line naming the problem and the fix."""
import contextlib
import io
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from figures.read import load_experiment
from inference.checkpoint import PredictError, build_initial, load_trial, select_trial
from inference.export import learned_values
from inference.render import render_learned
from models.classifiers import build_frontend
from models.registry import list_frontends
from tests.fixtures import make_fsdd
from tests.inprocess import main_py
from training.config import resolve_config

INIT_LAMBD = 13.333  # samples: a 10 ms window (6 lambda) at 8 kHz


@pytest.fixture(scope="module")
def experiment(root, tmp_path_factory):
    """A finished audio_mnist (FSDD) experiment on generated tones: DMEL trainable, 16 mels, whole clips
    (``split_parts=1``) and two segments per clip (``split_parts=2``), 3 epochs. Returns
    ``(experiment folder, data folder, {split_parts: trial row})``."""
    base = tmp_path_factory.mktemp("predict")
    data = make_fsdd(base / "fsdd", takes=3)
    run = main_py(root, "--name=audio_mnist", "--num_cpus=2", "--max_epochs=3", f"--data_dir={data}",
                  f"--ray_root_dir={base / 'rr'}", "--set", "n_mels=16", "--set", f"init_lambd={INIT_LAMBD}",
                  "--set", "trainable=True", "--set", "lr_model=0.003", "--set", "split_parts=[1,2]")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    exp = base / "rr" / "audio_mnist"
    df, _ = load_experiment(exp)
    assert len(df) == 2
    return exp, data, {int(r["config/split_parts"]): r for _, r in df.iterrows()}


def predict(*args: str) -> subprocess.CompletedProcess:
    """``python predict.py *args``, run as ``predict.main`` in this process (imports paid once)."""
    import predict as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:  # argparse
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def checkpoint_file(row, name: str) -> Path:
    return Path(row["checkpoint_dir"]) / name


def test_fixture_trial_records_its_classes(experiment):
    _, _, trials = experiment
    classes = json.loads(checkpoint_file(trials[1], "classes.json").read_text())
    assert classes == {"class_names": [str(d) for d in range(10)], "sample_rate": 8000, "n_points": 5500}


@pytest.mark.parametrize("parts", [1, 2])
def test_predictions_are_the_trials_own(experiment, tmp_path, parts):
    """The trial's test clips (splits.json), read from their files, get the classes of its predictions.csv,
    mean-logit decision and majority vote, clip by clip; no vote column without segments."""
    exp, data, trials = experiment
    row = trials[parts]
    test_ids = json.loads(checkpoint_file(row, "splits.json").read_text())["test"]
    own = pd.read_csv(checkpoint_file(row, "predictions.csv"))
    assert list(own["id"]) == test_ids and own["prediction"].nunique() > 1  # the comparison can tell classes apart
    files = [str(data / "recordings" / f"{i}.wav") for i in test_ids]
    out = tmp_path / "p.csv"
    run = predict("--experiment", str(exp), "--trial", row["trial_id"], *files, "--out", str(out), "--top_k", "3")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    got = pd.read_csv(out, dtype={c: str for c in ("prediction", "vote", "top1", "top2", "top3")})
    assert list(got["file"]) == files
    assert list(got["prediction"]) == [str(c) for c in own["prediction"]]
    assert list(got["top1"]) == list(got["prediction"])
    assert (got["top1_prob"] >= got["top2_prob"]).all() and (got["top2_prob"] >= got["top3_prob"]).all()
    assert (got[["top1_prob", "top2_prob", "top3_prob"]].sum(axis=1) <= 1 + 1e-9).all()
    if parts == 1:
        assert "vote" not in got
    else:
        assert list(got["vote"]) == [str(c) for c in own["vote"]]
        assert list(got.columns) == ["file", "prediction", "vote", "top1", "top1_prob", "top2", "top2_prob",
                                     "top3", "top3_prob"]


def test_best_is_the_highest_best_valid_acc_and_a_folder_is_searched(experiment, tmp_path):
    exp, data, trials = experiment
    rows = sorted(trials.values(), key=lambda r: (-r["best_valid_acc"], r["best_valid_loss"], r["trial_id"]))
    sub = tmp_path / "in" / "deeper"
    sub.mkdir(parents=True)
    for name in ("1_alice_0.wav", "2_bob_1.wav"):
        (sub / name).write_bytes((data / "recordings" / name).read_bytes())
    (sub / "notes.txt").write_text("not audio")
    out = tmp_path / "p.csv"
    run = predict("--experiment", str(exp), "--best", str(tmp_path / "in"), "--out", str(out), "--top_k", "20")
    assert run.returncode == 0, run.stderr
    assert f"trial {rows[0]['trial_id']} " in run.stdout
    got = pd.read_csv(out)
    assert [Path(f).name for f in got["file"]] == ["1_alice_0.wav", "2_bob_1.wav"]
    assert "top10" in got and "top11" not in got  # top_k capped at the 10 classes


def test_export_is_the_learned_window(experiment, tmp_path):
    """frontend.json's lambda is the trial's best_lambd_est; frontend.npz's window is an independent numpy
    Gaussian at that lambda, peak 1 (normalize_window=False), of the optimized-mode length."""
    exp, _, trials = experiment
    row = trials[2]
    run = predict("--experiment", str(exp), "--trial", row["trial_id"], "--export", str(tmp_path / "x"))
    assert run.returncode == 0, run.stderr
    meta = json.loads((tmp_path / "x" / "frontend.json").read_text())
    arrays = np.load(tmp_path / "x" / "frontend.npz")
    lambd = meta["learned"]["lambda_samples"]
    assert lambd == row["best_lambd_est"] and lambd != pytest.approx(INIT_LAMBD)  # it learned
    assert meta["learned"]["window_ms"] == pytest.approx(row["best_lambd_ms"], rel=1e-12)
    assert meta["learned"]["lambda_ms"] == pytest.approx(1000 * lambd / 8000, rel=1e-12)
    length = 2 ** math.ceil(math.log2(int(6 * lambd)))  # window_mode "optimized": L = n_fft
    n = np.arange(length)
    expected = np.exp(-0.5 * ((n - length / 2) / lambd) ** 2)
    window = arrays["window"]
    assert window.shape == (length,) and window.max() == pytest.approx(1.0, abs=1e-7)
    np.testing.assert_allclose(window, expected, rtol=1e-5, atol=1e-6)
    assert (meta["frontend"], meta["frontend_class"], meta["sample_rate"], meta["hop_length"], meta["n_fft"],
            meta["n_mels"], meta["segment_samples"]) == ("gaussian", "DMEL", 8000, 80, length, 16, 2750)
    assert meta["arrays"]["window"] == {"shape": [length], "dtype": "float32"}
    assert arrays["filterbank"].shape == (length // 2 + 1, 16)


def test_render_writes_pngs(experiment, tmp_path):
    exp, data, trials = experiment
    row = trials[2]
    files = [str(data / "recordings" / n) for n in ("0_alice_0.wav", "7_carol_2.wav")]
    run = predict("--experiment", str(exp), "--trial", row["trial_id"], *files, "--render", str(tmp_path / "r"),
                  "--out", str(tmp_path / "p.csv"))
    assert run.returncode == 0, run.stderr
    for name in ("frontend.png", "0_alice_0.png", "7_carol_2.png"):
        png = (tmp_path / "r" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
    initial = build_initial(load_trial(str(exp), row["trial_id"]))  # as run_trial built it before training
    assert float(initial.frontend.spectrogram.effective_lambd().detach()) == pytest.approx(INIT_LAMBD, rel=1e-6)


def test_bad_inputs_get_one_line_each(experiment, tmp_path):
    exp, data, trials = experiment
    trial = ["--experiment", str(exp), "--trial", trials[1]["trial_id"]]
    missing = predict("--experiment", str(tmp_path / "nowhere"), "--best", "a.wav")
    assert missing.returncode == 2
    assert lines(missing.stderr) == [f"predict.py: no experiment at {tmp_path / 'nowhere'}: give --experiment "
                                     "<storage>/<name>, the folder main.py wrote (<ray_root_dir or storage>/<name>)"]
    unknown = predict("--experiment", str(exp), "--trial", "nope", "a.wav")
    ids = ", ".join(sorted(r["trial_id"] for r in trials.values()))
    assert unknown.returncode == 2
    assert lines(unknown.stderr) == [f"predict.py: no trial 'nope' in {exp}; its finished trials are {ids}"]
    which = predict("--experiment", str(exp), "a.wav")
    assert which.returncode == 2
    assert lines(which.stderr) == [f"predict.py: {exp} has 2 finished trials: give --trial ID (one of {ids}) or --best"]

    bad = tmp_path / "bad.wav"
    bad.write_text("not a wave file")
    empty = tmp_path / "empty"
    empty.mkdir()
    good = str(data / "recordings" / "5_bob_0.wav")
    out = tmp_path / "p.csv"
    mixed = predict(*trial, str(bad), good, str(tmp_path / "gone.wav"), str(empty), "--out", str(out))
    assert mixed.returncode == 0  # one file could be predicted
    err = lines(mixed.stderr)
    assert len(err) == 3, err
    assert err[0] == f"predict.py: no such file or folder {tmp_path / 'gone.wav'}; check the path"
    assert err[1] == (f"predict.py: no .wav/.flac/.ogg/.mp3 files under the folder {empty}; "
                      "give a folder that holds audio")
    assert err[2].startswith(f"predict.py: skipped {bad}: unreadable (") and err[2].endswith(
        "; give a file soundfile can decode (.wav/.flac/.ogg/.mp3)")
    assert list(pd.read_csv(out)["file"]) == [good]
    nothing = predict(*trial, str(bad), "--out", str(tmp_path / "q.csv"))
    assert nothing.returncode == 1 and not (tmp_path / "q.csv").exists()
    assert lines(nothing.stderr) == [lines(mixed.stderr)[2],
                                     "predict.py: nothing predicted: none of the 1 input(s) gave a readable audio file"]


def test_unfinished_trials_are_named():
    """What predict.py says (the same function picks its trial) when the trial asked for, or every trial,
    has not finished."""
    trials = pd.DataFrame({"trial_id": ["a_00000", "a_00001"], "trial_dir": ["train_trial_a_00000_0", "t1"],
                           "status": ["RUNNING", "TERMINATED"], "done": [False, True], "stopped_early": False})
    df = pd.DataFrame({"trial_id": ["a_00000", "a_00001"], "done": [False, True], "status": ["RUNNING", "TERMINATED"],
                       "best_valid_acc": [0.9, 0.5], "best_valid_loss": [0.1, 0.2]})
    df.attrs.update(experiment="/x/exp", trials=trials)
    with pytest.raises(PredictError) as err:
        select_trial(df, trial="train_trial_a_00000_0")  # a folder name works too
    assert str(err.value) == ("trial a_00000 in /x/exp is not finished (RUNNING): rerun main.py to finish it, "
                              "or choose a finished trial: a_00001")
    assert select_trial(df, best=True)["trial_id"] == "a_00001"  # only finished trials compete
    none = df.assign(done=False)
    none.attrs.update(df.attrs)
    with pytest.raises(PredictError) as err:
        select_trial(none, best=True)
    assert str(err.value) == ("no finished trial in /x/exp (2 trial(s), none tested yet): rerun the main.py command "
                              "that made it to finish them")


def test_synthetic_trial_says_predict_needs_audio(tiny_experiment, tmp_path):
    run = predict("--experiment", str(tiny_experiment / "time_frequency"), "--best", "a.wav")
    assert run.returncode == 2
    err = lines(run.stderr)
    assert len(err) == 1 and "synthetic time_frequency signals, which have no sample rate; predict needs audio" \
        in err[0], err


@pytest.mark.parametrize("name", list_frontends())
def test_every_frontend_exports_and_draws(name, tmp_path):
    """Every registered front-end gives its learned values (its export_learned, or its parameters and
    buffers) and the learned-parameters figure draws them; DMEL also under PCEN (``compression="pcen"``)."""
    for compression in ["log", "pcen"] if name == "gaussian" else ["log"]:
        cfg = resolve_config({"dataset_name": "audio_mnist", "frontend": name, "n_mels": 8, "hop_length": 80,
                              "n_fft": 128, "init_lambd": 13.333, "compression": compression,
                              "model_name": "mel_linear_net"})
        frontend = build_frontend(cfg, 2000, 8000)
        values = learned_values(frontend, 8000)
        arrays = [k for k, v in values.items() if isinstance(v, np.ndarray)]
        assert arrays, values
        if compression == "pcen":
            assert {"pcen_s", "pcen_alpha", "pcen_delta", "pcen_r"} <= set(values)
        trial = type("T", (), {"sample_rate": 8000, "config": cfg, "trial_id": "t"})()
        png = render_learned(tmp_path / f"{name}-{compression}.png", trial, values, values)
        assert png.stat().st_size > 0
