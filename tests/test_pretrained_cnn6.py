"""A PANNs CNN6 checkpoint loaded into our cnn6 head (models/pretrained.py), and freeze_epochs.

The checkpoint is made here: a copy of PANNs' ``Cnn6`` module layout (qiuqiangkong/audioset_tagging_cnn,
pytorch/models.py: ``bn0``, ``conv_block1..4`` of ``ConvBlock5x5`` = conv1 5x5 -> bn1 -> ReLU -> 2x2 average
pooling, ``fc1``, ``fc_audioset`` of 527 classes, and torchlibrosa's front-end tensors
``spectrogram_extractor.stft.conv_{real,imag}.weight`` and ``logmel_extractor.melW``), every tensor random,
saved as PANNs saves it (``{"model": state_dict, ...}``).
"""
import json
import shutil

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from models.classifiers import MODELS, build_model, output_layer
from models.pretrained import KeyReport, load_pretrained, match_keys
from training import trial
from training.config import resolve_config
from training.trial import run_trial
from tuning.validate import check_configs

PANNS_RATE, WINDOW, N_MELS, N_CLASSES = 32000, 1024, 64, 527


class PannsConvBlock5x5(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, (5, 5), stride=(1, 1), padding=(2, 2), bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)


class PannsCnn6(nn.Module):
    """PANNs' Cnn6 names and shapes (its front-end as the tensors torchlibrosa keeps: STFT kernels, mel matrix)."""

    def __init__(self):
        super().__init__()
        self.spectrogram_extractor = nn.Module()
        self.spectrogram_extractor.stft = nn.Module()
        self.spectrogram_extractor.stft.conv_real = nn.Conv1d(1, WINDOW // 2 + 1, WINDOW, stride=320, bias=False)
        self.spectrogram_extractor.stft.conv_imag = nn.Conv1d(1, WINDOW // 2 + 1, WINDOW, stride=320, bias=False)
        self.logmel_extractor = nn.Module()
        self.logmel_extractor.melW = nn.Parameter(torch.rand(WINDOW // 2 + 1, N_MELS))
        self.bn0 = nn.BatchNorm2d(N_MELS)
        for i, (cin, cout) in enumerate([(1, 64), (64, 128), (128, 256), (256, 512)], 1):
            setattr(self, f"conv_block{i}", PannsConvBlock5x5(cin, cout))
        self.fc1 = nn.Linear(512, 512)
        self.fc_audioset = nn.Linear(512, N_CLASSES)


def panns_state(seed=0) -> dict[str, torch.Tensor]:
    """A PannsCnn6 state dict with every tensor random (batch-norm statistics and affine included)."""
    gen = torch.Generator().manual_seed(seed)
    state = PannsCnn6().state_dict()
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(1000)
        elif name.endswith("running_var"):
            state[name] = torch.rand(tensor.shape, generator=gen) + 0.5
        else:
            state[name] = torch.randn(tensor.shape, generator=gen) * (0.1 if tensor.dim() > 1 else 1.0)
    return state


def panns_embedding(state: dict, x: torch.Tensor) -> torch.Tensor:
    """PANNs' Cnn6.forward in eval mode, written out from its source: ``x`` ``(batch, 1, time, mel)`` log-mel ->
    the 512-unit embedding (``relu(fc1(.))``, what ``fc_audioset`` reads)."""
    def bn(x, p):
        return F.batch_norm(x, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"],
                            state[f"{p}.bias"], training=False, eps=1e-5)

    x = bn(x.transpose(1, 3), "bn0").transpose(1, 3)
    for i in range(1, 5):
        x = F.avg_pool2d(F.relu(bn(F.conv2d(x, state[f"conv_block{i}.conv1.weight"], padding=2), f"conv_block{i}.bn1")), 2)
    x = x.mean(dim=3)                        # over mel
    x = x.max(dim=2).values + x.mean(dim=2)  # over time
    return F.relu(F.linear(x, state["fc1.weight"], state["fc1.bias"]))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    state = panns_state()
    path = tmp_path_factory.mktemp("panns") / "Cnn6_mAP=0.343.pth"
    torch.save({"model": state, "iteration": 0}, path)
    return path, state


def pretrained_cfg(path, **kw):
    return resolve_config({"model_name": "cnn6", "frontend": "torchaudio_mel", "n_mels": N_MELS, "hop_length": 320,
                           "sample_rate": PANNS_RATE, "pretrained": True, "checkpoint_path": path and str(path), **kw})


def cnn6(cfg, n_classes=10):
    return build_model(cfg, PANNS_RATE // 2, n_classes, cfg["sample_rate"])


FRONTEND = ["spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
            "logmel_extractor.melW"]


def test_every_tensor_loads_and_the_report_names_the_rest(checkpoint):
    path, state = checkpoint
    model = cnn6(pretrained_cfg(path))
    out_init = {k: v.clone() for k, v in model.head.out.state_dict().items()}
    report = load_pretrained(model, pretrained_cfg(path), PANNS_RATE)
    head = model.head.state_dict()
    for theirs, ours in report.loaded.items():  # convolutions as (out, in, freq, time): PANNs' transposed
        want = state[theirs].transpose(-1, -2) if theirs.endswith("conv1.weight") else state[theirs]
        assert torch.equal(head[ours], want), theirs
    assert len(report.loaded) == 5 + 4 * 6 + 2  # bn0; conv + bn per block; fc1
    assert {k.split(".")[0] for k in report.loaded} == {"bn0", "conv_block1", "conv_block2", "conv_block3",
                                                        "conv_block4", "fc1"}
    assert report.loaded["conv_block3.bn1.running_var"] == "blocks.4.1.running_var"
    assert report.missing == ("out.weight", "out.bias")
    assert all(torch.equal(model.head.out.state_dict()[k], v) for k, v in out_init.items())  # kept at init
    assert report.unexpected == {"fc_audioset.weight": "527 classes in the checkpoint vs 10 here",
                                 "fc_audioset.bias": "527 classes in the checkpoint vs 10 here",
                                 **dict.fromkeys(FRONTEND, "front-end")}
    assert report.counts() == {"pretrained_loaded": 31, "pretrained_missing": 2, "pretrained_unexpected": 5}
    assert KeyReport.from_dict(json.loads(json.dumps(report.as_dict()))) == report
    text = report.text()
    print(text)  # the report as a trial prints it (docs/configuration.md shows one)
    assert "31 tensors loaded, 2 missing (kept at init), 5 unexpected (not used)" in text
    assert "conv_block1.conv1.weight -> blocks.0.0.weight" in text
    assert "not used (front-end): " + ", ".join(FRONTEND) in text


def test_loaded_head_computes_panns_embedding_and_audioset_logits(checkpoint):
    path, state = checkpoint
    model = cnn6(pretrained_cfg(path), n_classes=N_CLASSES)
    report = load_pretrained(model, pretrained_cfg(path), PANNS_RATE)
    assert report.missing == () and "fc_audioset.weight" in report.loaded  # 527 classes: the output layer too
    head = model.head.double().eval()  # float64 on both sides: agreement to rounding, not to float32's 1e-4
    state = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    logmel = torch.randn(3, 1, 37, N_MELS, dtype=torch.float64) * 4 - 20  # PANNs' (batch, 1, time, mel); odd: pooling floors
    seen = {}
    head.out.register_forward_hook(lambda module, args, out: seen.update(embedding=args[0]))
    with torch.no_grad():
        logits = head(logmel[:, 0].transpose(1, 2))  # ours: (batch, mel, frames)
        want = panns_embedding(state, logmel)
    torch.testing.assert_close(seen["embedding"], want)
    torch.testing.assert_close(logits, F.linear(want, state["fc_audioset.weight"], state["fc_audioset.bias"]))
    # the transposition is what makes them agree: kernels copied as PANNs stores them give another embedding
    untransposed = {ours: state[theirs] for theirs, ours in report.loaded.items() if theirs.endswith("conv1.weight")}
    head.load_state_dict({**head.state_dict(), **untransposed})
    with torch.no_grad():
        head(logmel[:, 0].transpose(1, 2))
    assert not torch.allclose(seen["embedding"], want, rtol=0.1, atol=0.1)


def test_a_checkpoint_that_does_not_fit_is_refused_in_one_line(checkpoint, tmp_path):
    path, _ = checkpoint
    cases = [  # (config, rate, the line names)
        (pretrained_cfg(path, n_mels=40), PANNS_RATE, "mel bins: checkpoint 64 (bn0) vs 40 from this front-end"),
        (pretrained_cfg(path, sample_rate=8000), 8000, "sample rate: checkpoint 32000 Hz vs sample_rate=8000 Hz"),
        (pretrained_cfg(tmp_path / "nowhere.pth"), PANNS_RATE, f"checkpoint_path={tmp_path / 'nowhere.pth'}: no such file"),
        (pretrained_cfg(None), PANNS_RATE, "pretrained=True needs checkpoint_path"),
        (pretrained_cfg(path, model_name="fma_cnn"), PANNS_RATE, "model_name='fma_cnn' has no pretrained checkpoint"),
    ]
    (tmp_path / "page.pth").write_text("<html>Not Found</html>")
    cases.append((pretrained_cfg(tmp_path / "page.pth"), PANNS_RATE, "cannot be read by torch.load"))
    for cfg, rate, line in cases:
        model = cnn6(cfg) if cfg["model_name"] == "cnn6" else build_model(cfg, PANNS_RATE // 2, 10, rate)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(ValueError) as err:
            load_pretrained(model, cfg, rate)
        assert line in str(err.value) and "\n" not in str(err.value), str(err.value)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded
    # a checkpoint of another rate loads when asked to; data without a rate is not checked
    load_pretrained(cnn6(pretrained_cfg(path, sample_rate=8000)), pretrained_cfg(path, checkpoint_rate_check=False), 8000)
    load_pretrained(cnn6(pretrained_cfg(path)), pretrained_cfg(path), None)
    _, _, misfits = match_keys({"conv_block1.conv1.weight": torch.zeros(64, 1, 3, 3)}, cnn6(pretrained_cfg(path)).head.state_dict())
    assert misfits == ["conv_block1.conv1.weight (64, 1, 3, 3) vs blocks.0.0.weight (64, 1, 5, 5)"]  # another architecture


def test_refused_before_ray_starts(checkpoint, tmp_path):
    path, _ = checkpoint
    fsdd = {"dataset_name": "audio_mnist", "sample_rate": 8000}  # FSDD, recorded at 8 kHz
    assert check_configs([pretrained_cfg(path, **fsdd, checkpoint_rate_check=False)]) == []
    lines = check_configs([pretrained_cfg(None, **fsdd), pretrained_cfg(tmp_path / "x.pth", **fsdd), pretrained_cfg(path, **fsdd),
                           pretrained_cfg(path, **fsdd, n_mels=40, checkpoint_rate_check=False)])
    assert len(lines) == 4
    assert lines[0].startswith("pretrained=True needs checkpoint_path")
    assert lines[1].startswith(f"checkpoint_path={tmp_path / 'x.pth'}: no such file")
    assert "sample rate: checkpoint 32000 Hz vs sample_rate=8000 Hz" in lines[2]
    assert "mel bins: checkpoint 64 (bn0) vs 40" in lines[3]
    assert check_configs([resolve_config({"freeze_epochs": -1})]) == ["freeze_epochs=-1: must be an integer >= 0"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_head_has_an_output_layer_that_stays_trainable(name):
    cfg = resolve_config({"model_name": name, "frontend": "torchaudio_mel", "n_mels": 32, "hop_length": 64,
                          "sample_rate": 8000, "freeze_epochs": 1})
    model = build_model(cfg, 2000, 5, 8000)
    out = output_layer(model.head)
    assert isinstance(out, nn.Linear) and out.out_features == 5
    assert model.set_head_training(cfg, 0) and not model.set_frontend_training(cfg, 0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"head.{n}" for n, p in model.head.named_parameters() if any(p is q for q in out.parameters())}
    model.train()
    assert all(not m.training for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    assert not model.set_head_training(cfg, 1)
    model.train()
    assert all(p.requires_grad for p in model.head.parameters()) and all(m.training for m in model.modules())


# freeze_epochs in a trial, on the synthetic data: DSPEC's 64 bins (n_points 63: n_fft 126) x 16 frames
SMALL = {"model_name": "cnn6", "feature": "spec", "n_points": 63, "hop_length": 4, "init_lambd": 2.0, "n_samples": 60,
         "batch_size": 16, "optimizer_name": "adam", "lr_model": 1e-3, "lr_tf": 0.1, "checkpoint_every": 1}


def test_freeze_epochs_trains_the_output_layer_first_and_resumes_frozen(checkpoint, tmp_path, monkeypatch):
    path, state = checkpoint
    cfg = {**SMALL, "pretrained": True, "checkpoint_path": str(path), "freeze_epochs": 2, "max_epochs": 3}
    built = []

    def build_and_keep(*args, **kw):  # the model's weights as built: out's initialisation
        model = trial_build_model(*args, **kw)
        built.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    trial_build_model = trial.build_model
    monkeypatch.setattr(trial, "build_model", build_and_keep)
    reports = []

    def report(metrics, ckpt):
        saved = tmp_path / f"{len(built)}_{metrics['epoch']}"
        shutil.copytree(ckpt, saved)
        reports.append((metrics, saved))

    def weights(saved):
        return torch.load(saved / "state.pt", weights_only=False)["model"]

    final = run_trial(cfg, report)
    pretrained = {f"head.{ours}": (state[t].transpose(-1, -2) if t.endswith("conv1.weight") else state[t])
                  for t, ours in json.loads((reports[0][1] / "pretrained_keys.json").read_text())["loaded"].items()}
    for epoch in (0, 1):  # frozen: every loaded tensor (batch-norm statistics too) and lambda as they started
        w = weights(reports[epoch][1])
        assert all(torch.equal(w[k], v) for k, v in pretrained.items())
        assert w["frontend.lambd"] == built[0]["frontend.lambd"]
    assert not torch.equal(weights(reports[0][1])["head.out.weight"], built[0]["head.out.weight"])  # out trains
    w2 = weights(reports[2][1])
    assert not torch.equal(w2["head.blocks.0.0.weight"], pretrained["head.blocks.0.0.weight"])  # then all of it
    assert not torch.equal(w2["head.blocks.0.1.running_mean"], pretrained["head.blocks.0.1.running_mean"])
    assert w2["frontend.lambd"] != built[0]["frontend.lambd"]
    assert final["pretrained_loaded"] == 31 and final["pretrained_missing"] == 2 and final["pretrained_unexpected"] == 5
    keys = json.loads((reports[-1][1] / "pretrained_keys.json").read_text())
    assert keys["missing"] == ["out.weight", "out.bias"] and keys["unexpected"]["fc_audioset.bias"].startswith("527")

    # resumed inside the freeze (after epoch 0): epoch 1 is frozen again, and the run ends as the straight one
    straight = len(reports)
    resumed = run_trial(cfg, report, restore_dir=str(reports[0][1]))
    assert [m["epoch"] for m, _ in reports[straight:]] == [1, 2]
    assert all(torch.equal(weights(reports[straight][1])[k], v) for k, v in pretrained.items())
    for key in ("loss", "valid_loss", "test_accuracy", "pretrained_loaded"):
        assert resumed[key] == final[key]
    assert (reports[-1][1] / "pretrained_keys.json").exists()
