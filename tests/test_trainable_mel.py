"""Trainable mel filterbank: equals the fixed torchaudio front-end at initialisation; gradients; guards."""
import numpy as np
import pytest
import torch
import torchaudio

from models.classifiers import build_model
from models.frontends import FixedMel
from models.trainable_mel import TrainableMel
from training.config import resolve_config

SR, HOP, N_MELS = 8000, 80, 40


def signal(batch=3, n_points=2000, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, n_points))).float()


@pytest.mark.parametrize("win_ms", [25.0, 64.0])
def test_init_equals_fixed_mel(win_ms):
    x = signal()
    got = TrainableMel(SR, win_ms, HOP, N_MELS)(x).detach()
    want = FixedMel(SR, win_ms, HOP, N_MELS)(x)
    assert got.shape == want.shape == (3, N_MELS, 2000 // HOP + 1)
    # float32; the same STFT and filterbank, applied as fb^T S rather than (S^T fb)^T (measured: identical)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_power_output_matches_torchaudio_melspectrogram():
    x = signal()
    got = TrainableMel(SR, 25.0, HOP, N_MELS, log=False)(x).detach()
    ref = torchaudio.transforms.MelSpectrogram(SR, n_fft=256, win_length=200, hop_length=HOP, n_mels=N_MELS,
                                               power=2.0, center=True, pad_mode="constant", norm=None,
                                               mel_scale="htk")(x - x.mean(-1, keepdim=True))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6 * ref.max().item())


def test_gradients_reach_exactly_the_filterbank():
    layer = TrainableMel(SR, 25.0, HOP, N_MELS)
    assert [n for n, _ in layer.named_parameters()] == ["filterbank"]
    assert layer.filterbank.shape == (256 // 2 + 1, N_MELS)
    layer(signal()).sum().backward()
    grad = layer.filterbank.grad
    assert torch.isfinite(grad).all()
    assert (grad != 0).any(dim=0).all()  # every filter gets a gradient


def test_negative_weights_are_clamped_with_a_gradient():
    layer = TrainableMel(SR, 25.0, HOP, N_MELS)
    with torch.no_grad():
        layer.filterbank.fill_(-1.0)
    assert (layer.effective_filterbank() == 0).all()
    out = layer(signal())
    assert torch.isfinite(out).all()  # log(0 + 1e-10), never log of a negative
    out.sum().backward()
    assert torch.isfinite(layer.filterbank.grad).all() and (layer.filterbank.grad != 0).any()


def test_drift_is_zero_at_init_and_moves_after_a_step():
    layer = TrainableMel(SR, 25.0, HOP, N_MELS)
    assert layer.drift() == {"filterbank_change": 0.0}
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(signal()).mean().backward()
    opt.step()
    assert layer.drift()["filterbank_change"] > 0


@pytest.mark.parametrize("compression", ["log", "pcen"])
def test_build_model_trains_on_fsdd_shapes(compression):
    config = resolve_config({"frontend": "trainable_mel", "model_name": "mel_linear_net", "hop_length": 80,
                             "n_mels": 64, "compression": compression})
    model = build_model(config, n_points=5500, n_classes=10, sample_rate=8000)
    mel = model.frontend.frontend if compression == "pcen" else model.frontend  # PCEN wraps the mel energies
    assert isinstance(mel, TrainableMel) and mel.log == (compression == "log")
    logits, spec = model(signal(2, 5500))
    assert spec.shape == (2, 64, 5500 // 80 + 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert "filterbank_change" in model.frontend_drift()


def test_spec_feature_is_refused():
    with pytest.raises(ValueError, match="gives mel"):
        build_model(resolve_config({"frontend": "trainable_mel", "model_name": "linear_net", "feature": "spec"}), 5500, 10, 8000)
