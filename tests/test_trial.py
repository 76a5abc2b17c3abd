"""The trial logic without Ray: reports, early stopping, checkpoints and exact resume."""
import math
import shutil

import pandas as pd
import pytest
import torch

from models.classifiers import build_model
from training.config import resolve_config
from training.loop import make_optimizer
from training.trial import run_trial

SMALL = {"n_samples": 300, "batch_size": 64, "init_lambd": 1.276, "checkpoint_every": 1}


def collect(tmp_path):
    reports = []

    def report(metrics, ckpt):
        saved = None
        if ckpt is not None:
            saved = tmp_path / f"ckpt_{metrics['epoch']}"
            shutil.copytree(ckpt, saved)
        reports.append((metrics, saved))

    return reports, report


def test_reports_and_final_test(tmp_path):
    reports, report = collect(tmp_path)
    final = run_trial({**SMALL, "max_epochs": 3}, report)
    assert [m["epoch"] for m, _ in reports] == [0, 1, 2]
    for key in ("loss", "valid_loss", "valid_acc", "best_valid_acc", "lambd_est", "best_lambd_est"):
        assert key in reports[0][0]
    assert final["done"] and 0 <= final["test_accuracy"] <= 1
    assert all(math.isnan(m["test_accuracy"]) for m, _ in reports[:-1])  # tested once, at the end
    last_ckpt = reports[-1][1]
    assert {p.name for p in last_ckpt.iterdir()} >= {"state.pt", "best_model.pt", "config.json",
                                                      "predictions.csv", "splits.json"}
    # lambda moved (trainable), and away from the too-short initial window
    assert final["lambd_est"] > 1.276


def test_fixed_lambda_stays(tmp_path):
    reports, report = collect(tmp_path)
    final = run_trial({**SMALL, "max_epochs": 2, "trainable": False}, report)
    assert final["lambd_est"] == pytest.approx(1.276)


def test_early_stopping_by_patience(tmp_path):
    reports, report = collect(tmp_path)
    # a learning rate of 0 never lowers the validation loss after the first epoch
    final = run_trial({**SMALL, "max_epochs": 50, "patience": 2, "lr_model": 0.0, "lr_tf": 0.0}, report)
    assert final["epoch"] == 2 and final["best_epoch"] == 0 and final["done"]


def test_resume_from_checkpoint_is_exact(tmp_path):
    straight, report = collect(tmp_path / "a")
    final_straight = run_trial({**SMALL, "max_epochs": 4}, report)
    resumed, report2 = collect(tmp_path / "b")
    final_resumed = run_trial({**SMALL, "max_epochs": 4}, report2, restore_dir=str(straight[1][1]))
    assert [m["epoch"] for m, _ in resumed] == [2, 3]
    for key in ("loss", "valid_loss", "lambd_est", "test_accuracy"):
        assert final_resumed[key] == final_straight[key]


def test_same_seed_same_numbers(tmp_path):
    a = run_trial({**SMALL, "max_epochs": 2}, lambda m, c: None)
    b = run_trial({**SMALL, "max_epochs": 2}, lambda m, c: None)
    c = run_trial({**SMALL, "max_epochs": 2, "seed": 1}, lambda m, c: None)
    assert a["loss"] == b["loss"] and a["lambd_est"] == b["lambd_est"]
    assert a["loss"] != c["loss"]


def test_two_learning_rates():
    cfg = resolve_config({"lr_model": 1e-3, "lr_tf": 1.0})
    model = build_model(cfg, 128, 3)
    opt = make_optimizer(model, cfg)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1.0]
    assert opt.param_groups[1]["params"][0] is model.frontend.lambd
    frozen = build_model(resolve_config({"trainable": False}), 128, 3)
    assert len(make_optimizer(frozen, cfg).param_groups) == 1


def test_unknown_config_key():
    with pytest.raises(KeyError, match="did you mean 'init_lambd'"):
        resolve_config({"init_lambda": 3.0})


@pytest.mark.parametrize("name", ["linear_net", "mlp_net", "conv_net"])
def test_models_return_logits_and_spectrogram(name):
    model = build_model(resolve_config({"model_name": name}), 128, 3)
    logits, spec = model(torch.randn(4, 128))
    assert logits.shape == (4, 3) and spec.shape == (4, 129, 129)


@pytest.mark.parametrize("name", ["mel_linear_net", "mel_mlp_net", "mel_conv_net"])
@pytest.mark.parametrize("frontend", ["gaussian", "torchaudio_mel"])
def test_mel_models(name, frontend):
    cfg = resolve_config({"model_name": name, "frontend": frontend, "window_mode": "optimized", "hop_length": 80,
                          "init_lambd": 8000 * 0.035 / 6})
    model = build_model(cfg, 5500, 10, sample_rate=8000)
    x = torch.randn(3, 5500)
    logits, spec = model(x)
    assert logits.shape == (3, 10) and spec.shape == (3, 64, 69)
    model.eval()  # dropout off: evaluation is deterministic
    torch.testing.assert_close(model(x)[0], model(x)[0])
    assert (model.gaussian_spectrogram() is None) == (frontend == "torchaudio_mel")


def test_mel_linear_net_dropout_active_in_training():
    cfg = resolve_config({"model_name": "mel_linear_net", "window_mode": "optimized", "hop_length": 80,
                          "init_lambd": 46.7})
    model = build_model(cfg, 5500, 10, sample_rate=8000).train()
    x = torch.randn(2, 5500)
    assert not torch.allclose(model(x)[0], model(x)[0])


def test_a_spec_head_takes_a_mel_frontend():
    """A head takes whatever its front-end gives: ``linear_net`` (meant for DSPEC) on the fixed mel reads its
    64 bands; asking for the FFT bins (``feature="spec"``) of a mel-only front-end is refused."""
    model = build_model(resolve_config({"model_name": "linear_net", "frontend": "torchaudio_mel", "hop_length": 80}),
                        5500, 3, 8000)
    _, spec = model(torch.randn(1, 5500))
    assert spec.shape == (1, 64, 5500 // 80 + 1) and model.head[-1].in_features == 64 * (5500 // 80 + 1)
    with pytest.raises(ValueError, match="gives mel"):
        build_model(resolve_config({"model_name": "linear_net", "frontend": "torchaudio_mel", "feature": "spec"}),
                    5500, 3, 8000)


def test_min_lambd_floor_from_config():
    cfg = resolve_config({"model_name": "mel_linear_net", "window_mode": "optimized", "hop_length": 80,
                          "init_lambd": 13.3, "min_lambd": 6.7})
    layer = build_model(cfg, 5500, 10, sample_rate=8000).gaussian_spectrogram()
    layer.lambd.data.fill_(1.0)
    layer.project_()
    assert layer.lambd.item() == pytest.approx(6.7)


def test_segmented_clips_report_clip_and_segment_metrics(tmp_path):
    reports, report = collect(tmp_path)
    final = run_trial({**SMALL, "max_epochs": 2, "split_parts": 2, "train_segments": "all", "lr_gamma": 0.5,
                       "optimizer_name": "adamw", "lr_model": 1e-2}, report)
    assert [m["lr"] for m, _ in reports] == pytest.approx([1e-2, 5e-3])
    for key in ("test_accuracy", "test_accuracy_vote", "test_accuracy_segment", "test_macro_f1", "test_recall/one pulse"):
        assert 0 <= final[key] <= 1 and math.isnan(reports[0][0][key])
    files = {p.name for p in reports[-1][1].iterdir()}
    assert {"predictions.csv", "confusion_matrix.csv"} <= files
    pred = pd.read_csv(reports[-1][1] / "predictions.csv")
    assert list(pred.columns) == ["id", "label", "prediction", "vote"]
    assert (pred["prediction"] == pred["label"]).mean() == pytest.approx(final["test_accuracy"])
    cm = pd.read_csv(reports[-1][1] / "confusion_matrix.csv", index_col=0)
    assert cm.values.sum() == len(pred)


def test_resume_with_schedule_is_exact(tmp_path):
    cfg = {**SMALL, "max_epochs": 4, "split_parts": 2, "lr_gamma": 0.7, "optimizer_name": "sgd", "momentum": 0.9}
    straight, report = collect(tmp_path / "a")
    final_straight = run_trial(cfg, report)
    resumed, report2 = collect(tmp_path / "b")
    final_resumed = run_trial(cfg, report2, restore_dir=str(straight[1][1]))
    assert [m["lr"] for m, _ in resumed] == [m["lr"] for m, _ in straight[2:]]
    for key in ("loss", "valid_loss", "lambd_est", "test_accuracy", "test_accuracy_vote"):
        assert final_resumed[key] == final_straight[key]


# loss, tf_warmup_epochs, min_window_ms, lambd_param through the trial

def test_bce_loss_is_sigmoid_binary_cross_entropy_on_one_hot():
    from training.loop import classification_loss
    logits, y = torch.randn(5, 7, dtype=torch.float64), torch.tensor([0, 3, 6, 3, 1])
    one_hot = torch.nn.functional.one_hot(y, 7).double()
    want = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), one_hot)  # the DMEL code's
    torch.testing.assert_close(classification_loss(logits, y, "bce"), want)
    torch.testing.assert_close(classification_loss(logits, y, "bce", reduction="sum"), 5 * want)
    torch.testing.assert_close(classification_loss(logits, y, "ce"), torch.nn.functional.cross_entropy(logits, y))
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        classification_loss(logits, y, "mse")


def test_trial_with_bce_reports_it_as_the_loss(tmp_path):
    reports, report = collect(tmp_path)
    final = run_trial({**SMALL, "max_epochs": 2, "loss": "bce"}, report)
    assert 0 < final["loss"] < math.log(2) + 0.1 and 0 <= final["test_accuracy"] <= 1  # per-class BCE, not CE
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        run_trial({**SMALL, "max_epochs": 1, "loss": "hinge"}, report)


def test_tf_warmup_freezes_lambda_then_releases_it(tmp_path):
    reports, report = collect(tmp_path)
    run_trial({**SMALL, "max_epochs": 4, "tf_warmup_epochs": 2}, report)
    lambdas = [m["lambd_est"] for m, _ in reports]
    assert lambdas[0] == lambdas[1] == pytest.approx(1.276) and lambdas[3] != pytest.approx(1.276)
    plain, report2 = collect(tmp_path / "plain")
    run_trial({**SMALL, "max_epochs": 1}, report2)
    assert plain[0][0]["lambd_est"] != pytest.approx(1.276)  # without the warm-up lambda moves at once


def test_tf_warmup_resume_is_exact(tmp_path):
    cfg = {**SMALL, "max_epochs": 4, "tf_warmup_epochs": 3}
    straight, report = collect(tmp_path / "a")
    final_straight = run_trial(cfg, report)
    resumed, report2 = collect(tmp_path / "b")
    final_resumed = run_trial(cfg, report2, restore_dir=str(straight[1][1]))  # resumed inside the warm-up
    for key in ("loss", "valid_loss", "lambd_est", "test_accuracy"):
        assert final_resumed[key] == final_straight[key]


def test_min_window_ms_floor_in_ms_at_any_rate():
    for rate in (8000, 22050):
        cfg = resolve_config({"model_name": "mel_linear_net", "window_mode": "optimized", "hop_length": 80,
                              "init_window_ms": 35.0, "min_window_ms": 10.0})
        layer = build_model(cfg, 5500, 10, sample_rate=rate).gaussian_spectrogram()
        layer.lambd.data.fill_(1.0)
        layer.project_()
        assert 6000 * layer.lambd.item() / rate == pytest.approx(10.0)
    with pytest.raises(ValueError, match="min_window_ms needs audio"):
        build_model(resolve_config({"min_window_ms": 10.0}), 128, 3)


def test_log_parameter_trains_through_the_trial(tmp_path):
    reports, report = collect(tmp_path)
    final = run_trial({**SMALL, "max_epochs": 2, "lambd_param": "log", "lr_tf": 0.1}, report)
    assert final["lambd_est"] > 1.276  # the too-short window grows, by ratios
    state = torch.load(reports[-1][1] / "best_model.pt")
    assert "frontend.log_lambd" in state and "frontend.lambd" not in state
