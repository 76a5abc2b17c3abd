"""models/stats.py against independent counts: FLOPs of a fixed mel front-end counted by hand and of
torchvision's ResNet18 by a second library (ptflops' module hooks, which count one multiply-add as one MAC:
FlopCounterMode, and so the reports, count it as 2 FLOPs), parameters by hand, the FFT formulas, the size on
disk; the unweighted average recall (UAR) against scikit-learn's balanced accuracy; a trial's last report and
a transfer trial's carrying them; ``python -m tools.stats``. Latency is only checked to be a positive number
(a timing depends on the machine)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from models.classifiers import Classifier, LinearHead, MLPHead, build_model
from models.frontends import FixedMel
from models.stats import (REPORT_KEYS, count_flops, fft_flops, flop_counts, latency_ms_cpu, model_bytes,
                          model_stats, parameter_counts, report_stats)
from training.config import resolve_config
from training.metrics import class_metrics, unweighted_average_recall
from training.trial import run_trial

# ------------------------------------------------------------------------------------------------ FLOPs


def test_fixed_mel_flops_by_hand():
    """torchaudio's mel spectrogram: one real FFT of n_fft points per frame (2.5 n_fft log2 n_fft each), then
    the (frames x bins) by (bins x mels) product with the filterbank (2 FLOPs per multiply-add); the head one
    (1 x mels * frames) by (mels * frames x classes) product. Nothing else is counted (window, power, log)."""
    rate, n, n_mels, classes = 8000, 8000, 64, 10
    frontend = FixedMel(rate, win_ms=25.0, hop_length=80, n_mels=n_mels)
    n_fft, frames = 256, n // 80 + 1  # 200-sample window -> the next power of two; centred frames
    bins = n_fft // 2 + 1
    model = Classifier(frontend, LinearHead((n_mels, frames), classes)).eval()
    got = flop_counts(model, n)
    fft = frames * 2.5 * n_fft * math.log2(n_fft)  # 101 x 5120
    assert got["flops_frontend_fft"] == fft == 517_120
    assert got["flops_frontend"] == fft + 2 * frames * bins * n_mels == 517_120 + 1_667_712
    assert got["flops_head"] == 2 * n_mels * frames * classes


def test_resnet18_flops_equal_twice_ptflops_macs():
    """ResNet18 (10 classes) on 1 x 3 x 224 x 224: ptflops counts each convolution's and the linear layer's
    multiply-adds through module hooks (1 MAC each, plus one per output for a bias: the 10 of the fc layer);
    FlopCounterMode counts 2 FLOPs per multiply-add and no bias. Batch norm, ReLU and pooling are left out
    of both (ignored in ptflops, never counted by FlopCounterMode). 1.81 GMAC is the published figure."""
    from ptflops import get_model_complexity_info
    from torchvision.models import resnet18

    model = resnet18(num_classes=10).eval()
    with torch.no_grad():
        flops, fft, _ = count_flops(lambda: model(torch.zeros(1, 3, 224, 224)))
    macs, params = get_model_complexity_info(
        model, (3, 224, 224), as_strings=False, print_per_layer_stat=False, backend="pytorch",
        ignore_modules=[nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d],
        backend_specific_config={"count_functional": False})
    assert fft == 0
    assert flops == 2 * (macs - 10) == 3_627_132_928
    assert round(macs / 1e9, 2) == 1.81
    assert params == sum(p.numel() for p in model.parameters()) == 11_181_642


def test_fft_formulas():
    """5 N log2 N per complex transform, 2.5 N log2 N per real one (forward or inverse, or a full ``fft`` of a
    real input, which torch runs as a real transform), per transform."""
    x = torch.randn(3, 4, 64)
    assert fft_flops(64, real=True) == 960 and fft_flops(64, real=False) == 1920 and fft_flops(1, True) == 0
    for fn, each in ((lambda: torch.fft.rfft(x, dim=-1), 960), (lambda: torch.fft.fft(x.to(torch.complex64)), 1920),
                     (lambda: torch.fft.fft(x), 960),  # a real input: torch runs a real transform
                     (lambda: torch.fft.irfft(torch.fft.rfft(x), n=64), 2 * 960),
                     (lambda: torch.stft(x[0, 0], 16, hop_length=4, window=torch.hann_window(16), return_complex=True),
                      None)):
        flops, fft, _ = count_flops(fn)
        assert flops == fft
        if each is not None:
            assert flops == 12 * each
        else:  # 64 samples centred: 64 // 4 + 1 frames of 16 points
            assert flops == 17 * fft_flops(16, real=True)


# ------------------------------------------------------------------------------------------- parameters


def test_parameters_by_hand_for_tiny_heads():
    frontend = FixedMel(8000, win_ms=4.0, hop_length=80, n_mels=4)  # a filterbank buffer, no parameters
    frames = 400 // 80 + 1
    linear = Classifier(frontend, LinearHead((4, frames), 3))
    assert parameter_counts(linear) == {"params_total": 4 * 6 * 3 + 3, "params_frontend": 0,
                                        "params_frontend_learnable": 0, "params_head": 75}
    mlp = Classifier(frontend, MLPHead((4, frames), 3, hidden=8))
    assert parameter_counts(mlp)["params_total"] == (24 * 8 + 8) + (8 * 3 + 3) == 227


@pytest.mark.parametrize("trainable", [True, False])
def test_dmel_learnable_frontend_parameters(trainable):
    """DMEL's one parameter, lambda: learnable when trainable, fixed (0 learnable) when not; a warm-up that
    freezes it for a while does not make it fixed."""
    cfg = resolve_config({"frontend": "gaussian", "trainable": trainable, "model_name": "mel_linear_net",
                          "n_points": 800, "tf_warmup_epochs": 2})
    model = build_model(cfg, 800, 10, 8000)
    model.set_frontend_training(cfg, 0)  # frozen by the warm-up
    counts = parameter_counts(model)
    assert counts["params_frontend"] == 1 and counts["params_frontend_learnable"] == int(trainable)
    assert counts["params_total"] == counts["params_head"] + 1
    stats = model_stats(model, 800, runs=2)
    assert stats["params_frontend_learnable"] == int(trainable) and stats["flops_frontend_fft"] > 0
    assert stats["flops_frontend"] > stats["flops_frontend_fft"] and stats["flops_head"] > 0


# ---------------------------------------------------------------------------------------- size, latency


def test_model_bytes_is_the_saved_state_dict():
    model = Classifier(FixedMel(8000, win_ms=4.0, hop_length=80, n_mels=4), LinearHead((4, 6), 3))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    size = model_bytes(model)
    assert size == len(buffer.getvalue())
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())  # the filterbank too
    assert weights < size < weights + 20_000


def test_latency_is_positive_and_restores_threads():
    model = Classifier(FixedMel(8000, win_ms=4.0, hop_length=80, n_mels=4), LinearHead((4, 6), 3))
    threads = torch.get_num_threads()
    assert latency_ms_cpu(model, 400, runs=3) > 0
    assert torch.get_num_threads() == threads
    assert model.training  # the model itself is left as it was (a copy was timed)


def test_report_stats_never_fails_a_trial():
    class Broken(Classifier):
        def features(self, x):
            raise RuntimeError("cannot run")

    model = Broken(FixedMel(8000, win_ms=4.0, hop_length=80, n_mels=4), LinearHead((4, 6), 3))
    with pytest.warns(UserWarning, match="cannot run"):
        stats = report_stats(model, 400)
    assert list(stats) == list(REPORT_KEYS) and all(math.isnan(v) for v in stats.values())


# ------------------------------------------------------------------------------------------------- UAR


@pytest.mark.parametrize("seed", range(5))
def test_uar_equals_balanced_accuracy(seed):
    """Random labels over 7 classes: class 2, 3 and 6 never in the labels (3 and 6 predicted), some present
    classes never predicted."""
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(seed)
    labels, pred = rng.choice([0, 1, 4, 5], size=200), rng.choice([0, 1, 3, 4, 6], size=200)
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        want = balanced_accuracy_score(labels, pred)
    assert unweighted_average_recall(labels, pred, 7) == pytest.approx(want)
    metrics = class_metrics(labels, pred, list("abcdefg"))
    assert metrics["uar"] == pytest.approx(want)
    assert metrics["uar"] == pytest.approx(np.nanmean([metrics[f"recall/{c}"] for c in "abcdefg"]))


def test_uar_by_hand():
    labels, pred = np.array([0, 0, 0, 0, 1]), np.array([0, 0, 0, 0, 0])
    assert unweighted_average_recall(labels, pred, 3) == 0.5  # accuracy 0.8: the rare class weighs as much
    assert math.isnan(unweighted_average_recall(np.array([], int), np.array([], int), 3))


# ------------------------------------------------------------------------------------------- the trials


def test_a_trial_reports_uar_and_model_stats(tmp_path):
    reports = []
    cfg = {"n_samples": 150, "batch_size": 64, "init_lambd": 1.276, "max_epochs": 2, "model_name": "linear_net"}
    final = run_trial(cfg, lambda m, ckpt: reports.append((dict(m), ckpt and _keep(ckpt, tmp_path))))
    first = reports[0][0]
    assert set(REPORT_KEYS) | {"test_uar"} <= set(first)  # the fixed schema: NaN until the test
    assert all(math.isnan(first[k]) for k in (*REPORT_KEYS, "test_uar"))
    assert 0 <= first["valid_uar"] <= 1 and first["best_valid_uar"] == first["valid_uar"]
    pred = pd.read_csv(Path(reports[-1][1]) / "predictions.csv")
    from sklearn.metrics import balanced_accuracy_score

    assert final["test_uar"] == pytest.approx(balanced_accuracy_score(pred["label"], pred["prediction"]))
    assert final["params_frontend_learnable"] == 1 and final["params_total"] > 1
    # DSPEC (linear_net reads the power spectrogram over FFT bins): its only counted work is the FFT
    assert final["flops_frontend"] == final["flops_frontend_fft"] > 0 and final["flops_head"] > 0
    assert final["model_bytes"] > 4 * final["params_total"] and final["latency_ms_cpu"] > 0


def _keep(ckpt: str, tmp_path: Path) -> str:
    import shutil

    saved = tmp_path / f"ckpt_{len(list(tmp_path.iterdir()))}"
    shutil.copytree(ckpt, saved)
    return str(saved)


def test_a_transfer_trial_reports_uar(tmp_path):
    from sklearn.metrics import balanced_accuracy_score
    from tests.test_transfer import make_embedding_files

    make_embedding_files(tmp_path)
    cfg = {"classifier": "svm_rbf", "dataset_name": "embeddings", "embedding": "precomputed", "valid_share": 0.25,
           "data_dir": str(tmp_path), "cache_dir": str(tmp_path / "cache")}
    kept = {}
    metrics = run_trial(cfg, lambda m, ckpt: kept.update(pred=pd.read_csv(Path(ckpt) / "predictions.csv")))
    pred = kept["pred"]
    assert metrics["test_uar"] == pytest.approx(balanced_accuracy_score(pred["label"], pred["prediction"]))
    assert 0 <= metrics["valid_uar"] <= 1 and metrics["best_valid_uar"] == metrics["valid_uar"]


# ------------------------------------------------------------------------------------- python -m tools.stats


def test_tools_stats_prints_a_trials_statistics(root, tmp_path, capsys):
    """One FSDD (generated tones) trial through main.py, one epoch; the tool measures again what the trial
    recorded: the same counts (the latency differs: a timing)."""
    from tests.fixtures import make_fsdd
    from tests.inprocess import main_py
    from tools import stats as tool

    data = make_fsdd(tmp_path / "fsdd", takes=2)
    run = main_py(root, "--name=audio_mnist", "--num_cpus=2", "--max_epochs=1", f"--data_dir={data}",
                  f"--ray_root_dir={tmp_path / 'rr'}", "--set", "n_mels=16", "--set", "init_lambd=13.333",
                  "--set", "trainable=True")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    capsys.readouterr()
    assert tool.main(["--experiment", str(tmp_path / "rr/audio_mnist"), "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "one input = 5500 samples at 8000 Hz" in out, out
    shown = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(shown) == {"params_total", "params_frontend", "params_frontend_learnable", "params_head",
                          "flops_frontend", "flops_head", "flops_frontend_fft", "model_bytes", "latency_ms_cpu"}
    assert shown["params_frontend_learnable"].split()[1] == "1"
    for name in ("params_total", "flops_frontend", "flops_head", "model_bytes"):  # measured = recorded
        measured, recorded = shown[name].split("(recorded: ")
        assert measured.split()[1] == recorded.split()[0].rstrip(")"), shown[name]
    assert float(shown["latency_ms_cpu"].split()[1]) > 0
    assert tool.main(["--experiment", str(tmp_path / "rr/nothing")]) == 2
    assert "no experiment at" in capsys.readouterr().err


def _bench_configs():
    import search_spaces

    space = search_spaces.frontends(1)
    common = {k: v for k, v in space.items() if k != "variant" and not isinstance(v, dict)}
    return [resolve_config({**common, **variant, "sample_rate": 8000}) for variant in space["variant"]["grid_search"]]


@pytest.mark.parametrize("cfg", _bench_configs(), ids=lambda c: f"{c['frontend']}-{c['compression']}")
def test_every_bench_frontend_has_statistics(cfg):
    """Every front-end of the bench (models/stats.py runs them all: FFT, convolutions, matrix products) on the
    bench's 5,500 samples of 8 kHz audio: whole counts, the FFT part no more than the front-end's FLOPs; a
    fixed front-end without PCEN learns nothing."""
    model = build_model(cfg, 5500, 10, 8000)
    stats = model_stats(model, 5500, runs=1)
    assert all(isinstance(stats[k], int) and stats[k] >= 0 for k in stats if k != "latency_ms_cpu"), stats
    assert stats["flops_head"] > 0 and 0 <= stats["flops_frontend_fft"] <= stats["flops_frontend"] > 0
    assert stats["latency_ms_cpu"] > 0
    fixed = cfg["frontend"] in ("torchaudio_mel", "gaussian") and not cfg["trainable"] and cfg["compression"] == "log"
    assert (stats["params_frontend_learnable"] == 0) == fixed, stats


def test_table_cells_of_the_statistics():
    """Means over the finished trials (an unfinished one left out), 3 significant digits, whole numbers from
    1000 up; ``-`` where no finished trial recorded a number (older trials)."""
    from figures.tables import FLOPS_COLUMN, LATENCY_COLUMN, PARAMS_COLUMN, model_stat_cells

    rows = pd.DataFrame([{"done": True, "test_loss": 0.1, "params_frontend_learnable": 1, "flops_frontend": 6.6054e9,
                          "flops_head": 88_320, "latency_ms_cpu": 1.3261},
                         {"done": True, "test_loss": 0.2, "params_frontend_learnable": 1, "flops_frontend": 6.6066e9,
                          "flops_head": 88_320, "latency_ms_cpu": 4233.2},
                         {"done": False, "test_loss": math.nan, "params_frontend_learnable": 7, "flops_frontend": 1.0,
                          "flops_head": 1.0, "latency_ms_cpu": 1e9}])
    assert model_stat_cells(rows) == {PARAMS_COLUMN: "1", FLOPS_COLUMN: "6606 + 0.0883", LATENCY_COLUMN: "2117"}
    old = rows[["done", "test_loss"]]
    assert model_stat_cells(old) == {PARAMS_COLUMN: "-", FLOPS_COLUMN: "-", LATENCY_COLUMN: "-"}
