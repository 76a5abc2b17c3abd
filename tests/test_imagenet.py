"""Spectrogram images (models/images.py) into torchvision CNNs (models/imagenet.py), freezing then fine-tuning.

The image is checked against an independent rendering: librosa's ``power_to_db``, matplotlib's colour map
looked up by index and interpolated with ``np.interp``, PIL's bilinear resize and ImageNet's published
channel statistics.
"""
from __future__ import annotations

from pathlib import Path

import librosa
import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from models.classifiers import build_model, head_layers, output_layer
from models.images import SpectrogramImage, apply_colormap, colormap_table, db_scale, min_max, normalize, resize
from models.imagenet import CNNS, ImageNetHead, build_cnn, check_cnn_name
from training.config import resolve_config
from training.trial import run_trial
from tests.test_trial import collect
from tuning.validate import check_configs

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # ImageNet's, as torchvision publishes them


def reference_image(energies: np.ndarray, cmap: str, height: int, width: int, db: bool = True) -> np.ndarray:
    """``(batch, 3, height, width)`` by librosa, matplotlib, numpy and PIL, from ``(batch, freq, frames)`` energies."""
    table = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    grid = np.linspace(0, 1, 256)
    out = []
    for e in energies.astype(np.float64):
        v = librosa.power_to_db(e, ref=1.0, amin=1e-30, top_db=None) if db else e
        v = (v - v.min()) / (v.max() - v.min())
        rgb = np.stack([np.interp(v, grid, table[:, c]) for c in range(3)])[:, ::-1]  # low bands at the bottom
        resized = np.stack([np.asarray(Image.fromarray(ch.astype(np.float32), mode="F").resize(
            (width, height), Image.Resampling.BILINEAR)) for ch in rgb])
        out.append((resized - MEAN[:, None, None]) / STD[:, None, None])
    return np.stack(out)


@pytest.mark.parametrize("name", ["viridis", "cividis", "inferno", "magma", "plasma"])
def test_colormap_entries_are_matplotlibs_and_interpolate_between_them(name):
    cmap = matplotlib.colormaps[name]
    table = colormap_table(name)
    k = np.arange(0, 256, 17)
    at_entries = apply_colormap(torch.tensor(k / 255.0, dtype=torch.float32).view(1, 1, -1), table)
    np.testing.assert_allclose(at_entries[0, :, 0].T.numpy(), cmap(k)[:, :3], atol=1e-6)  # entry k is cmap(k)
    mid = (k[:-1] + 0.5) / 255.0
    between = apply_colormap(torch.tensor(mid, dtype=torch.float32).view(1, 1, -1), table)[0, :, 0].T.numpy()
    np.testing.assert_allclose(between, (cmap(k[:-1])[:, :3] + cmap(k[:-1] + 1)[:, :3]) / 2, atol=1e-6)


@pytest.mark.parametrize("cmap,size,db", [("viridis", (12, 18), True), ("magma", (48, 40), True),
                                          ("plasma", (20, 30), False)])
def test_image_equals_an_independent_rendering(cmap, size, db):
    rng = np.random.default_rng(0)
    energies = rng.gamma(0.5, 1.0, (2, 20, 30)) + 1e-4  # (batch, freq, frames): 20 bands, 30 frames
    image = SpectrogramImage(cmap, *size, db=db)(torch.from_numpy(np.log(energies)).float())
    assert image.shape == (2, 3, *size)
    np.testing.assert_allclose(image.numpy(), reference_image(energies, cmap, *size, db), atol=2e-5)


def test_resize_anti_aliases_as_pil():
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    ours = resize(x, 16, 20)[0].numpy()
    pil = np.stack([np.asarray(Image.fromarray(c.numpy(), mode="F").resize((20, 16), Image.Resampling.BILINEAR))
                    for c in x[0]])
    np.testing.assert_allclose(ours, pil, atol=1e-5)
    plain = torch.nn.functional.interpolate(x, size=(16, 20), mode="bilinear", align_corners=False)[0].numpy()
    assert np.abs(plain - pil).max() > 1e-2  # without anti-aliasing it would not match


def test_the_image_is_differentiable():
    x = torch.randn(2, 6, 7, dtype=torch.float64, requires_grad=True)
    table = colormap_table("viridis").double()

    def render(v):
        return normalize(resize(apply_colormap(min_max(db_scale(v)), table), 5, 9))

    assert torch.autograd.gradcheck(render, (x,), eps=1e-6, atol=1e-5)


def test_a_learnable_window_learns_through_the_image():
    cfg = resolve_config({"frontend": "gaussian", "model_name": "imagenet", "cnn": "resnet18", "image_height": 32,
                          "image_width": 32, "sample_rate": 8000, "dataset_name": "audio_mnist", "hop_length": 64,
                          "n_mels": 32, "trainable": True})
    model = build_model(cfg, 2000, 4, 8000)
    logits, _ = model(torch.randn(3, 2000, generator=torch.Generator().manual_seed(0)))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    grad = model.frontend.spectrogram.lambd.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def saved_cnn(tmp_path, name: str, seed: int = 3, wrap: str | None = None):
    torch.manual_seed(seed)
    import torchvision

    state = torchvision.models.get_model(name, weights=None).state_dict()
    path = tmp_path / f"{name}.pth"
    torch.save({wrap: state} if wrap else state, path)
    return path, state


@pytest.mark.parametrize("wrap", [None, "state_dict", "trial"])
def test_local_weights_load_into_every_tensor_but_the_new_output_layer(tmp_path, wrap):
    path, state = saved_cnn(tmp_path, "mobilenet_v2", wrap=None if wrap == "trial" else wrap)
    if wrap == "trial":  # a finished imagenet trial's best_model.pt: the CNN's tensors under head.cnn., 10 classes
        trial_state = {f"head.cnn.{k}": v for k, v in state.items() if not k.startswith("classifier.1.")}
        trial_state.update({"head.cnn.classifier.1.weight": torch.zeros(10, 1280), "frontend.lambd": torch.ones(())})
        torch.save(trial_state, path)
    cnn = build_cnn("mobilenet_v2", 7, str(path))
    loaded = cnn.state_dict()
    body = [k for k in state if not k.startswith("classifier.1.")]
    assert all(torch.equal(loaded[k], state[k]) for k in body)
    assert loaded["classifier.1.weight"].shape == (7, 1280)
    torch.manual_seed(4)
    scratch = build_cnn("mobilenet_v2", 7).state_dict()  # no weights: torchvision's initialisation
    assert not torch.equal(scratch["features.0.0.weight"], state["features.0.0.weight"])


def test_wrong_architecture_or_missing_file_is_one_line(tmp_path):
    path, _ = saved_cnn(tmp_path, "resnet18")
    with pytest.raises(ValueError) as err:
        build_cnn("mobilenet_v2", 5, str(path))
    line = str(err.value)
    assert "\n" not in line and "do not fit cnn='mobilenet_v2'" in line and "set cnn='resnet18'" in line
    with pytest.raises(ValueError, match="no such file") as err:
        build_cnn("resnet18", 5, str(tmp_path / "absent.pth"))
    assert "\n" not in str(err.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a torch state dict"):
        build_cnn("resnet18", 5, str(tmp_path / "junk.pth"))
    # before Ray starts: the same lines from the config check
    cfg = dict(model_name="imagenet", frontend="torchaudio_mel", dataset_name="audio_mnist", data_dir="/tmp")
    lines = check_configs([resolve_config({**cfg, "cnn": "mobilenet_v2", "weights_path": str(path)}),
                           resolve_config({**cfg, "cnn": "resnet18", "weights_path": str(tmp_path / "absent.pth")}),
                           resolve_config({**cfg, "cnn": "mobilenetv2"})])
    assert len(lines) == 3 and "set cnn='resnet18'" in lines[0] and "no such file" in lines[1]
    assert "did you mean 'mobilenet_v2'" in lines[2]


@pytest.mark.parametrize("name", CNNS)
def test_the_five_architectures_are_torchvisions(name):
    assert check_cnn_name(name) is None


def test_pre_epochs_freeze_the_base_then_the_last_share_trains(tmp_path):
    path, _ = saved_cnn(tmp_path, "resnet18")
    cfg = resolve_config({"frontend": "torchaudio_mel", "model_name": "imagenet", "cnn": "resnet18",
                          "weights_path": str(path), "image_height": 32, "image_width": 32, "sample_rate": 8000,
                          "dataset_name": "audio_mnist", "n_mels": 32, "hop_length": 64, "pre_epochs": 2,
                          "finetune_layers": 0.25})
    model = build_model(cfg, 2000, 4, 8000)
    layers, out = head_layers(model.head), output_layer(model.head)
    assert len(layers) == 40  # resnet18: 20 convolutions and 20 batch norms (the fc is the output layer)
    for epoch in (0, 1):
        assert model.set_head_training(cfg, epoch)
        assert {p for p in model.head.parameters() if p.requires_grad} == set(out.parameters())
    assert not model.set_head_training(cfg, 2)
    trains = [all(p.requires_grad for p in m.parameters(recurse=False)) for m in layers]
    assert trains == [False] * 30 + [True] * 10  # the last quarter: layer4's 10 layers
    model.train()
    assert [m.training for m in layers if isinstance(m, nn.BatchNorm2d)] == [False] * 15 + [True] * 5


def test_a_trial_freezes_fine_tunes_at_its_rate_and_resumes_exactly(tmp_path):
    path, state = saved_cnn(tmp_path, "resnet18")
    cfg = {"model_name": "imagenet", "cnn": "resnet18", "weights_path": str(path), "image_height": 32,
           "image_width": 32, "feature": "spec", "n_points": 63, "hop_length": 4, "n_samples": 60, "batch_size": 16,
           "optimizer_name": "adam", "lr_model": 1e-3, "fine_learning_rate": 1e-4, "pre_epochs": 1,
           "finetune_layers": 0.5, "max_epochs": 3, "checkpoint_every": 1}
    reports, report = collect(tmp_path / "straight")

    def weights(saved):
        return torch.load(saved / "state.pt", weights_only=False)["model"]

    final = run_trial(cfg, report)
    assert [m["lr"] for m, _ in reports] == [1e-3, 1e-4, 1e-4]
    first, last = weights(reports[0][1]), weights(reports[2][1])
    assert torch.equal(first["head.cnn.layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])  # epoch 0: frozen
    assert not torch.equal(first["head.cnn.fc.weight"], last["head.cnn.fc.weight"])
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight"):  # the first half stays as loaded
        assert torch.equal(last[f"head.cnn.{key}"], state[key])
    for key in ("layer4.1.conv2.weight", "layer4.1.bn2.running_mean"):  # the last half trains
        assert not torch.equal(last[f"head.cnn.{key}"], state[key])
    again, report_again = collect(tmp_path / "resumed")
    resumed = run_trial(cfg, report_again, restore_dir=str(reports[0][1]))  # resumed before the switch
    assert [m["lr"] for m, _ in again] == [1e-4, 1e-4]
    assert resumed["test_loss"] == final["test_loss"] and resumed["loss"] == final["loss"]


def test_image_settings_are_refused_before_ray():
    base = dict(model_name="imagenet", frontend="torchaudio_mel", dataset_name="audio_mnist", data_dir="/tmp")
    lines = check_configs([resolve_config({**base, "pre_epochs": 3}),
                           resolve_config({**base, "image_colormap": "rainbowz"}),
                           resolve_config({**base, "image_db": False, "compression": "pcen"}),
                           resolve_config({**base, "pre_epochs": 2, "freeze_epochs": 3})])
    assert lines[0].startswith("pre_epochs=3: would freeze a CNN without weights")
    assert lines[1].startswith("image_colormap='rainbowz': not a matplotlib colour map")
    assert lines[2].startswith("image_db=False shows linear energies")
    assert "name the same frozen epochs" in lines[3]


def test_the_head_takes_one_spectrogram_channel():
    with pytest.raises(ValueError, match="renders one spectrogram"):
        ImageNetHead((2, 32, 40), 3, cnn="resnet18")


def test_the_deepspectrum_grid_runs_through_tune_and_writes_its_table(root, tmp_path):
    """The grid on generated FSDD, on overlapping chunks (0.4 s every 0.2 s: two per clip): its table, then a
    DMEL-trainable image trial exported to ONNX (predict.py --onnx) whose onnxruntime decisions on the test files
    (inference.onnx_predict) are the trial's predictions.csv, mean-logit and vote."""
    import json

    import pandas as pd

    from figures.read import load_experiment
    from tests.fixtures import make_fsdd
    from tests.inprocess import main_py, produce_figures
    from tests.test_onnx_export import onnx_predict, predict

    data = make_fsdd(tmp_path / "fsdd", takes=2)
    run = main_py(root, "--name=deepspectrum", "--num_samples=1", "--max_epochs=1", f"--data_dir={data}",
                  f"--ray_root_dir={tmp_path}", "--set", f"cache_dir={tmp_path}/cache", "--set", "n_mels=16",
                  "--set", "image_height=32", "--set", "image_width=32", "--set", "chunk_seconds=0.4",
                  "--set", "chunk_hop_seconds=0.2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    drawn = produce_figures(root, "--split=test", f"--ray_root_dir={tmp_path}", f"--results_dir={tmp_path}/results")
    assert drawn.returncode == 0, drawn.stdout[-3000:] + drawn.stderr[-3000:]
    assert (tmp_path / "results" / "figures" / "test_deepspectrum.png").exists()
    saved = json.loads((tmp_path / "results" / "tables" / "test_deepspectrum.json").read_text())
    rows = [dict(zip(saved["columns"], row)) for row in saved["rows"]]
    assert len(rows) == 4 and {r["cnn"] for r in rows} == {"mobilenet_v2", "resnet18"}
    assert all(r["n finished/total"] == "1/1" and r["test UAR %"] != "-" for r in rows)

    df, _ = load_experiment(tmp_path / "deepspectrum")
    row = df[(df["config/cnn"] == "resnet18") & (df["config/frontend"] == "gaussian")].iloc[0]
    exported = predict("--experiment", str(tmp_path / "deepspectrum"), "--trial", row["trial_id"], "--onnx",
                       str(tmp_path / "x"))
    assert exported.returncode == 0 and exported.stderr == "", exported.stderr
    meta = json.loads((tmp_path / "x" / "model.json").read_text())
    assert (meta["segment_length"], meta["segment_hop"], meta["n_segments"]) == (3200, 1600, 2)
    own = pd.read_csv(Path(row["checkpoint_dir"]) / "predictions.csv", dtype={"id": str})
    files = [str(data / "recordings" / f"{i}.wav") for i in own["id"]]
    ran = onnx_predict(str(tmp_path / "x" / "model.onnx"), *files, "--out", str(tmp_path / "onnx.csv"))
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    got = pd.read_csv(tmp_path / "onnx.csv", dtype={"prediction": str, "vote": str})
    classes = [str(d) for d in range(10)]
    assert list(got["prediction"]) == [classes[k] for k in own["prediction"]]
    assert list(got["vote"]) == [classes[k] for k in own["vote"]]
