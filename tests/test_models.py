"""Image classifiers (ResNet18, the FMA CNN), standardisation, SpecAugment, the fixed dB mel and
the training extras (AdamW/SGD momentum, exponential schedule, waveform augmentation)."""
import math

import pytest
import torch

from models.classifiers import FMACNNHead, ResNet18Head, build_model, standardize
from models.frontends import AdaSTFTStack, FixedMel
from training.augment import WaveformAugment, build_waveform_augment
from training.config import resolve_config
from training.loop import make_optimizer, make_scheduler

RATE = 8000


def music(**kw):
    return resolve_config({"model_name": "resnet18", "window_mode": "optimized", "hop_length": 128, "n_mels": 32,
                           "init_lambd": 60.0, "n_fft": 256, "sample_rate": RATE, **kw})


@pytest.mark.parametrize("head", [ResNet18Head, FMACNNHead])
@pytest.mark.parametrize("shape", [(32, 63), (3, 32, 63), (16, 3)])
def test_heads_take_any_spectrogram_size(head, shape):
    net = head(shape, 8).eval()
    assert net(torch.randn(2, *shape)).shape == (2, 8)


def test_fma_cnn_layers_and_derived_size():
    net = FMACNNHead((128, 130), 8)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128] and all(c.kernel_size == (3, 3) for c in convs)
    first = net.classifier[1]
    assert first.out_features == 128 and first.in_features == 128 * 8 * 9  # 128x130 after four ceil-halvings


def test_resnet18_is_torchvision_with_dropout():
    net = ResNet18Head((3, 32, 40), 10)
    assert net.net.conv1.in_channels == 3
    assert isinstance(net.net.fc[0], torch.nn.Dropout) and net.net.fc[0].p == 0.2


@pytest.mark.parametrize("variant", [
    {"frontend": "gaussian"},
    {"frontend": "torchaudio_mel", "fixed_win_ms": 32.0},
    {"frontend": "adastft", "learn_kernels": True},
    {"frontend": "adastft", "stft_window": "hann+hamming+blackman"},
])
def test_every_frontend_feeds_resnet(variant):
    model = build_model(music(**variant), 4000, 10, sample_rate=RATE)
    logits, spec = model(torch.randn(2, 4000))
    assert logits.shape == (2, 10) and spec.shape[-2:] == (32, 4000 // 128 + 1)
    if variant.get("stft_window", "").count("+"):
        assert isinstance(model.frontend, AdaSTFTStack) and spec.shape[1] == 3
    drift = model.frontend_drift()
    assert ("window_mse" in drift) == (variant["frontend"] == "adastft")  # each front-end reports its own


def test_standardize_and_specaugment_in_training_only():
    spec = torch.randn(3, 20, 30) * 5 - 14
    out = standardize(spec)
    assert torch.allclose(out.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(dim=(1, 2)), torch.ones(3), atol=1e-3)
    model = build_model(music(standardize=True, specaugment_freq=8, specaugment_time=8), 4000, 10, RATE)
    x = torch.randn(2, 4000)
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0])
    assert torch.allclose(model(x)[1].mean(dim=(1, 2)), torch.zeros(2), atol=1e-5)
    masked = model.spec_augment.train()(torch.ones(4, 32, 40))
    assert (masked == 0).any() and masked.shape == (4, 32, 40)


def test_fixed_mel_db_floors_each_example_at_its_peak():
    mel = FixedMel(RATE, win_ms=32.0, hop_length=128, n_mels=32, top_db=80.0)
    x = torch.randn(2, 4000)
    x[1] *= 1e-3  # 60 dB quieter: its own floor, not the loud example's
    out = mel(x)
    power = mel.mel(x - x.mean(dim=-1, keepdim=True))
    for k in range(2):
        ref = 10 * torch.log10(power[k].clamp_min(1e-10))
        torch.testing.assert_close(out[k], ref.clamp_min(ref.max() - 80.0), rtol=1e-4, atol=1e-3)
        assert out[k].max() - out[k].min() <= 80.0 + 1e-3


@pytest.mark.parametrize("name,cls", [("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)])
def test_optimizers_and_exponential_schedule(name, cls):
    cfg = music(optimizer_name=name, momentum=0.9, weight_decay=0.01, lr_model=0.1, lr_tf=1.0, lr_gamma=0.5)
    model = build_model(cfg, 4000, 10, RATE)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg)
    assert isinstance(opt, cls) and opt.param_groups[0]["weight_decay"] == 0.01
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9
    for _ in range(2):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.025, 0.25])


def test_waveform_augment_changes_and_reproduces():
    assert build_waveform_augment(resolve_config({}), RATE) is None
    aug = build_waveform_augment(resolve_config({"augment_waveform": True}), RATE)
    x = torch.sin(torch.arange(8000) / 10.0).repeat(16, 1)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    b = aug(x)
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.allclose(a, x)
    with pytest.raises(ValueError, match="sample rate"):
        build_waveform_augment(resolve_config({"augment_waveform": True}), None)
    assert isinstance(aug, WaveformAugment)


# PANNs CNN6 (the ESC-50 head)

def test_cnn6_layers_shapes_and_parameter_count():
    from models.classifiers import CNN6Head
    net = CNN6Head((64, 1001), 50)  # 5 s at 8 kHz, hop 40, 64 mels: the esc50 grid's input
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(c.kernel_size == (5, 5) and c.bias is None for c in convs)
    assert sum(isinstance(m, torch.nn.AvgPool2d) for m in net.modules()) == 4
    assert net.bn0.num_features == 64 and net.fc1.in_features == 512 and net.out.out_features == 50
    # as many parameters as PANNs' Cnn6 (64 mels, 527 AudioSet outputs): 4,837,455
    assert sum(p.numel() for p in CNN6Head((64, 1001), 527).parameters()) == 4_837_455
    for shape in ((64, 1001), (1, 64, 1001), (16, 16), (32, 17)):
        net = CNN6Head(shape, 50).eval()
        assert net(torch.randn(3, *shape)).shape == (3, 50)
    with pytest.raises(ValueError, match="at least 16 bins and frames"):
        CNN6Head((64, 15), 50)


def test_cnn6_gradients_reach_every_parameter_and_the_window():
    model = build_model(music(model_name="cnn6", n_mels=16, hop_length=40, init_lambd=13.333), 2000, 50, RATE)
    logits, spec = model(torch.randn(4, 2000))
    assert logits.shape == (4, 50) and spec.shape == (4, 16, 51)
    logits.sum().backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert missing == []
    assert model.frontend.lambd.grad is not None  # the DMEL window learns through CNN6
    model.eval()
    torch.testing.assert_close(model(torch.ones(2, 2000))[0], model(torch.ones(2, 2000))[0])  # dropout off


@pytest.mark.parametrize("frontend", ["gaussian", "torchaudio_mel", "adastft"])
def test_cnn6_takes_any_frontend(frontend):
    model = build_model(music(model_name="cnn6", frontend=frontend, n_mels=32, n_fft=256), 4000, 50, RATE)
    assert model(torch.randn(2, 4000))[0].shape == (2, 50)
