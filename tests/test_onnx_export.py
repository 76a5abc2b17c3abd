"""ONNX export of finished trials (inference/onnx_export.py, inference/onnx_predict.py, predict.py --onnx) on a
tiny FSDD experiment: DMEL trainable, torchaudio's fixed mel and Ada-STFT, 1 epoch, two segments per clip.

The inference-form front-end is the trained one's transform; onnxruntime's logits are PyTorch's; its per-clip
decisions are the trial's predictions.csv; the dynamic int8 model mostly agrees; a front-end without an ONNX
form says why in one line; predict.py --onnx then inference.onnx_predict gives predict.py's CSV."""
import contextlib
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from figures.read import load_experiment
from inference.audio import read_clip
from inference.checkpoint import build_trained, read_trial
from inference.onnx_export import (FRONTEND_ATOL, INPUT, NotExportable, export_dir, exportable_model,
                                   inference_frontend, run_segments, session)
from inference.onnx_predict import aggregate
from models.classifiers import build_model
from tests.fixtures import make_fsdd
from tests.inprocess import main_py
from training.config import resolve_config

FRONTENDS = ("gaussian", "torchaudio_mel", "adastft")
INIT_LAMBD = 13.333  # samples: a 10 ms window (6 lambda) at 8 kHz
LOGIT_TOL = 1e-4     # onnxruntime vs PyTorch logits: |a - b| <= LOGIT_TOL * (1 + max |b|)
INT8_AGREEMENT = 0.6  # share of clips whose int8 decision is the float model's (seen: 80%, 80%, 100% of 15 clips)


@pytest.fixture(scope="module")
def experiment(root, tmp_path_factory):
    """A finished audio_mnist (FSDD) experiment, one trial per front-end of ``FRONTENDS``: 16 mels, hop 80,
    two segments per clip, 1 epoch. Returns ``(experiment folder, data folder, {frontend: trial row})``."""
    base = tmp_path_factory.mktemp("onnx")
    data = make_fsdd(base / "fsdd", takes=3)
    run = main_py(root, "--name=audio_mnist", "--num_cpus=2", "--max_epochs=1", f"--data_dir={data}",
                  f"--ray_root_dir={base / 'rr'}", "--set", "n_mels=16", "--set", f"init_lambd={INIT_LAMBD}",
                  "--set", "trainable=True", "--set", "lr_model=0.003", "--set", "split_parts=2",
                  "--set", "n_fft=256", "--set", f"frontend={list(FRONTENDS)}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    exp = base / "rr" / "audio_mnist"
    df, _ = load_experiment(exp)
    assert sorted(df["config/frontend"]) == sorted(FRONTENDS)
    return exp, data, {r["config/frontend"]: r for _, r in df.iterrows()}


@pytest.fixture(scope="module")
def exported(experiment, tmp_path_factory):
    """Each trial written by :func:`export_dir`: ``{frontend: (trial, {"onnx", "int8", "meta"} -> path)}``."""
    _, _, rows = experiment
    out = {}
    for name, row in rows.items():
        trial = read_trial(str(row["checkpoint_dir"]), str(row["trial_id"]))
        out[name] = trial, export_dir(trial, tmp_path_factory.mktemp(f"x_{name}"))
    return out


def test_clips(experiment, name):
    """``(files, clips (n, n_points), predictions.csv)`` of the trial's test split."""
    _, data, rows = experiment
    checkpoint = Path(rows[name]["checkpoint_dir"])
    ids = json.loads((checkpoint / "splits.json").read_text())["test"]
    own = pd.read_csv(checkpoint / "predictions.csv", dtype={"prediction": str, "vote": str})
    assert list(own["id"]) == ids
    files = [str(data / "recordings" / f"{i}.wav") for i in ids]
    trial = read_trial(str(checkpoint), str(rows[name]["trial_id"]))
    return files, np.stack([read_clip(f, trial.sample_rate, trial.n_points, trial.padding) for f in files]), own


test_clips.__test__ = False  # a helper, not a test


def segments(clips: np.ndarray, length: int) -> np.ndarray:
    return clips[:, :clips.shape[1] // length * length].reshape(-1, length)


@pytest.mark.parametrize("name", FRONTENDS)
def test_inference_frontend_is_the_trained_one(experiment, exported, name):
    """On the test clips' segments the inference form's log spectrogram is the trained front-end's within
    ``FRONTEND_ATOL`` (float32 DFT by product vs FFT); DMEL's window did train."""
    trial, _ = exported[name]
    model = build_trained(trial)
    _, clips, _ = test_clips(experiment, name)
    x = torch.from_numpy(segments(clips, trial.segment_length))
    with torch.no_grad():
        want, got = model.frontend(x), inference_frontend(model.frontend)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=FRONTEND_ATOL)
    if name == "gaussian":
        lambd = float(model.frontend.spectrogram.effective_lambd().detach())
        assert lambd != pytest.approx(INIT_LAMBD, rel=1e-4)  # it learned in its one epoch


@pytest.mark.parametrize("name", FRONTENDS)
def test_onnx_logits_and_predictions_are_the_trials(experiment, exported, name):
    """onnxruntime's segment logits are PyTorch's (``LOGIT_TOL``); their mean per clip decides the trial's
    predictions.csv ``prediction`` and their majority its ``vote``; the graph has plain ONNX ops only and a
    dynamic batch."""
    trial, paths = exported[name]
    _, clips, own = test_clips(experiment, name)
    x = segments(clips, trial.segment_length)
    got = run_segments(session(paths["onnx"]), x, 7)  # batches of 7: the batch axis is dynamic
    with torch.no_grad():
        want = build_trained(trial)(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=LOGIT_TOL * (1 + np.abs(want).max()))
    mean, votes = aggregate(got, trial.n_segments)
    names = np.asarray(trial.class_names)
    assert list(names[mean.argmax(1)]) == list(own["prediction"])
    assert list(names[votes]) == list(own["vote"])
    graph = onnx.load(str(paths["onnx"])).graph
    assert {node.domain for node in graph.node} <= {"", "ai.onnx"}
    assert not {"STFT", "DFT"} & {node.op_type for node in graph.node}
    assert graph.input[0].name == INPUT and graph.input[0].type.tensor_type.shape.dim[0].dim_param


@pytest.mark.parametrize("name", FRONTENDS)
def test_int8_runs_and_mostly_agrees(experiment, exported, name):
    """The dynamic int8 model is smaller and gives the float model's decision on most clips."""
    trial, paths = exported[name]
    _, clips, _ = test_clips(experiment, name)
    x = segments(clips, trial.segment_length)
    float_pred = aggregate(run_segments(session(paths["onnx"]), x), trial.n_segments)[0].argmax(1)
    int8_pred = aggregate(run_segments(session(paths["int8"]), x), trial.n_segments)[0].argmax(1)
    share = float((float_pred == int8_pred).mean())
    print(f"{name}: int8 agrees with float on {share:.0%} of {len(float_pred)} clips")
    assert share >= INT8_AGREEMENT
    assert paths["int8"].stat().st_size < paths["onnx"].stat().st_size


@pytest.mark.parametrize("frontend, extra", [("leaf", {}), ("torchaudio_mel", {"compression": "pcen"})])
def test_a_frontend_without_onnx_form_says_why_in_one_line(frontend, extra):
    cfg = resolve_config({"dataset_name": "audio_mnist", "frontend": frontend, "n_mels": 8, "hop_length": 80,
                          "model_name": "mel_linear_net", **extra})
    model = build_model(cfg, 2000, 10, 8000)
    with pytest.raises(NotExportable) as err:
        exportable_model(model)
    message = str(err.value)
    assert "\n" not in message and "cannot be exported to ONNX" in message and "lfilter" in message


@pytest.mark.parametrize("frontend, extra", [("trainable_mel", {}), ("sincnet", {}),
                                             ("adastft", {"stft_window": "hann+hamming", "learn_kernels": True}),
                                             ("torchaudio_mel", {"top_db": 80.0})])
def test_other_inference_forms_are_the_frontend(frontend, extra):
    """The inference forms the fixture does not train: the same output as the module (untrained weights)."""
    cfg = resolve_config({"dataset_name": "audio_mnist", "frontend": frontend, "n_mels": 8, "hop_length": 80,
                          "n_fft": 128, "model_name": "mel_linear_net", **extra})
    fe = build_model(cfg, 2000, 10, 8000).frontend.eval()
    x = 0.1 * torch.randn(3, 2000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(inference_frontend(fe)(x), fe(x), rtol=0, atol=FRONTEND_ATOL)


def predict(*args: str) -> subprocess.CompletedProcess:
    """``python predict.py *args`` as ``predict.main`` in this process."""
    import predict as cli

    return _call(cli.main, args)


def onnx_predict(*args: str) -> subprocess.CompletedProcess:
    """``python -m inference.onnx_predict *args`` in this process."""
    from inference import onnx_predict as cli

    return _call(cli.main, args)


def _call(entry, args) -> subprocess.CompletedProcess:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = entry(list(args))
        except SystemExit as exit_:
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_predict_onnx_round_trip(experiment, tmp_path):
    """predict.py --onnx DIR writes the graph, its int8 form and model.json; inference.onnx_predict on the
    test files writes predict.py's CSV (same columns and classes, probabilities within 1e-4)."""
    exp, _, rows = experiment
    row = rows["gaussian"]
    run = predict("--experiment", str(exp), "--trial", row["trial_id"], "--onnx", str(tmp_path / "x"))
    assert run.returncode == 0 and run.stderr == "", run.stderr
    meta = json.loads((tmp_path / "x" / "model.json").read_text())
    assert (meta["class_names"], meta["sample_rate"], meta["n_points"], meta["segment_length"],
            meta["n_segments"]) == ([str(d) for d in range(10)], 8000, 5500, 2750, 2)
    assert (tmp_path / "x" / "model.int8.onnx").is_file()
    files, _, own = test_clips(experiment, "gaussian")
    run = predict("--experiment", str(exp), "--trial", row["trial_id"], *files, "--out", str(tmp_path / "torch.csv"))
    assert run.returncode == 0, run.stderr
    run = onnx_predict(str(tmp_path / "x" / "model.onnx"), *files, "--out", str(tmp_path / "onnx.csv"))
    assert run.returncode == 0 and run.stderr == "", run.stderr
    kinds = {c: str for c in ("prediction", "vote", "top1", "top2", "top3")}
    want, got = (pd.read_csv(tmp_path / f, dtype=kinds) for f in ("torch.csv", "onnx.csv"))
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.drop(columns=[c for c in got if c.endswith("_prob")]),
                                  want.drop(columns=[c for c in want if c.endswith("_prob")]))
    probs = [c for c in got if c.endswith("_prob")]
    np.testing.assert_allclose(got[probs].to_numpy(), want[probs].to_numpy(), atol=1e-4)
    assert list(got["prediction"]) == list(own["prediction"])
    bad = onnx_predict(str(tmp_path / "nowhere.onnx"), *files)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "--onnx DIR" in bad.stderr
