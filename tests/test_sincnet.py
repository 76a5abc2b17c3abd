"""SincNet against scipy's windowed-sinc band-pass design and a numpy convolution; gradients and guards."""
import numpy as np
import pytest
import scipy.signal
import torch

from models import frontend_functional as FF
from models.classifiers import build_model
from models.sincnet import SincNet
from training.config import resolve_config

SR, HOP = 8000, 80


def signal(batch=2, n_points=1200, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, n_points))).float()


def test_filters_match_scipy_firwin():
    low = torch.tensor([50.0, 300.0, 1234.5, 3000.0], dtype=torch.float64)
    high = torch.tensor([120.0, 900.0, 2000.0, 4000.0], dtype=torch.float64)
    got = FF.sinc_bandpass_filters(low, high, 101, SR).numpy()
    want = np.stack([scipy.signal.firwin(101, [lo, hi], pass_zero=False, window="hamming", scale=False, fs=SR)
                     if hi < SR / 2 else  # firwin wants a band ending at Nyquist as a high-pass
                     scipy.signal.firwin(101, lo, pass_zero=False, window="hamming", scale=False, fs=SR)
                     for lo, hi in zip(low.tolist(), high.tolist())])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)  # float64: both are the same closed form


def test_initial_bands_tile_the_mel_scale():
    layer = SincNet(SR, n_filters=40, kernel_size=129, hop_length=HOP)
    low, high = (t.detach().double() for t in layer.cutoffs_hz())
    edges = FF.mel_band_edges(40, 50.0, SR / 2)
    # float32 parameters (cycles per sample) times 8000: a few 1e-4 Hz
    torch.testing.assert_close(low, edges[:-1], rtol=0, atol=1e-3)
    torch.testing.assert_close(high, torch.maximum(edges[1:], edges[:-1] + 50.0), rtol=0, atol=1e-3)
    mel = FF.hz_to_mel(edges)
    torch.testing.assert_close(mel.diff(), torch.full((40,), float(mel.diff()[0]), dtype=torch.float64))


def test_forward_matches_numpy_convolution():
    layer = SincNet(SR, n_filters=16, kernel_size=65, hop_length=HOP)
    x = signal()
    got = layer(x).detach().numpy()
    filters = layer.filters().detach().double().numpy()
    want = []
    for xi in x.double().numpy():
        xi = xi - xi.mean()
        y = np.stack([np.convolve(xi, h, mode="same") for h in filters])  # symmetric h: convolution = correlation
        padded = np.pad(y**2, ((0, 0), (HOP, HOP)))
        frames = len(xi) // HOP + 1
        energy = np.stack([padded[:, t * HOP:t * HOP + 2 * HOP].mean(-1) for t in range(frames)], -1)
        want.append(np.log(energy + 1e-10))
    want = np.stack(want)
    assert got.shape == want.shape == (2, 16, 1200 // HOP + 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # float32 conv, log domain (measured 7.8e-7)


def test_gradients_reach_exactly_low_and_band():
    layer = SincNet(SR, n_filters=16, kernel_size=65, hop_length=HOP)
    assert [n for n, _ in layer.named_parameters()] == ["low", "band"]
    layer(signal()).sum().backward()
    for param in (layer.low, layer.band):
        assert torch.isfinite(param.grad).all() and (param.grad != 0).all()


def test_cutoffs_stay_inside_nyquist_and_bands_keep_their_floor():
    layer = SincNet(SR, n_filters=8, kernel_size=65, hop_length=HOP, min_low_hz=50.0, min_band_hz=50.0)
    with torch.no_grad():
        layer.low.copy_(torch.tensor([0.0, -0.1, 0.3, 0.5, 2.0, 10.0, -10.0, 0.49]))
        layer.band.copy_(torch.tensor([0.0, 0.0, 0.5, -3.0, 1.0, 0.0, 10.0, 0.0]))
    low, high = layer.cutoffs_hz()
    assert (low >= 50.0).all() and (high <= SR / 2).all() and (high - low >= 50.0 - 1e-3).all()
    out = layer(signal())
    out.sum().backward()
    assert torch.isfinite(out).all()
    # the straight-through clamp: a cut-off held at Nyquist still gets a gradient
    assert torch.isfinite(layer.low.grad).all() and layer.low.grad[4] != 0


def test_drift_is_zero_at_init_and_moves_after_a_step():
    layer = SincNet(SR, n_filters=16, kernel_size=65, hop_length=HOP)
    assert layer.drift() == {"sinc_low_change": 0.0, "sinc_band_change": 0.0}
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(signal()).mean().backward()
    opt.step()
    drift = layer.drift()
    assert all(isinstance(v, float) and v > 0 for v in drift.values())


@pytest.mark.parametrize("compression", ["log", "pcen"])
def test_build_model_trains_on_fsdd_shapes(compression):
    config = resolve_config({"frontend": "sincnet", "model_name": "mel_linear_net", "hop_length": 80, "n_mels": 64,
                             "compression": compression})
    model = build_model(config, n_points=5500, n_classes=10, sample_rate=8000)
    sinc = model.frontend.frontend if compression == "pcen" else model.frontend  # PCEN wraps the band energies
    assert isinstance(sinc, SincNet) and sinc.log == (compression == "log")
    assert sinc.kernel_size == 129  # 16 ms at 8 kHz, odd
    logits, spec = model(signal(2, 5500))
    assert spec.shape == (2, 64, 5500 // 80 + 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert set(model.frontend_drift()) >= {"sinc_low_change", "sinc_band_change"}


def test_spec_feature_is_refused():
    with pytest.raises(ValueError, match="gives mel"):
        build_model(resolve_config({"frontend": "sincnet", "model_name": "linear_net", "feature": "spec"}), 5500, 10, 8000)
