"""LEAF and EfficientLEAF against librosa's mel filterbank and a numpy filterbank; gradients, drift, guards."""
import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from models import leaf_functional as LF
from models.classifiers import build_model
from models.leaf import GaborFilterbank, Leaf, window_samples
from training.config import resolve_config

SR, HOP, N_FILTERS = 8000, 80, 64
FSDD = dict(dataset_name="audio_mnist", model_name="mel_linear_net", sample_rate=SR, hop_length=HOP, n_mels=N_FILTERS)
LEARNED = {"filterbank.center", "filterbank.sigma", "filterbank.pool_width", "compression.log_s",
           "compression.log_alpha", "compression.log_delta", "compression.log_r"}


def signal(batch=2, n_points=4000, seed=0):
    return torch.from_numpy(0.1 * np.random.default_rng(seed).standard_normal((batch, n_points)))


def squared_responses(sample_rate, n_filters, window_ms, n_fft=8192):
    """Peak-normalised ``|DFT|^2`` of the mel-initialised Gabor filters (bounds applied), ``(n_filters, n_fft // 2 + 1)``."""
    fb = GaborFilterbank(n_filters, sample_rate, window_samples(window_ms, sample_rate), HOP).double()
    center, sigma, _ = fb.constrained().detach()
    h = LF.gabor_impulse_responses(center, sigma, fb.window_size).numpy()
    power = np.abs(np.fft.fft(h[0] + 1j * h[1], n=n_fft, axis=-1)[:, :n_fft // 2 + 1]) ** 2
    return power / power.max(axis=1, keepdims=True)


@pytest.mark.parametrize("sample_rate,n_filters,window_ms", [(16000, 40, 25.0), (8000, 64, 100.0)])
def test_mel_initialised_filters_approximate_librosa_mel(sample_rate, n_filters, window_ms):
    """LEAF's setting (16 kHz, 40 filters, 25 ms) and FSDD's 64 bands with a window long enough for the
    narrowest band. Gaussian against triangle: measured relative L2 error per filter 0.143 and 0.118 at
    most, peaks within one bin of 8192."""
    got = squared_responses(sample_rate, n_filters, window_ms)
    n_fft = 2 * (got.shape[1] - 1)
    want = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_filters, fmin=60.0, fmax=sample_rate / 2,
                               htk=True, norm=None)
    err = np.linalg.norm(got - want, axis=1) / np.linalg.norm(want, axis=1)
    assert err.max() < 0.16
    assert np.abs(got.argmax(axis=1) - want.argmax(axis=1)).max() <= 1


def test_short_window_clamps_the_narrowest_bands():
    """At 8 kHz and 25 ms (201 taps) the 7 lowest of 64 mel bands need sigma above LEAF's bound 201 z."""
    fb = GaborFilterbank(N_FILTERS, SR, window_samples(25.0, SR), HOP)
    _, sigma_mel = LF.mel_gabor_params(N_FILTERS, SR)
    assert fb.window_size == 201
    assert int((sigma_mel > fb.sigma_max).sum()) == 7
    torch.testing.assert_close(fb.sigma.detach(), sigma_mel.clamp(max=fb.sigma_max))


def test_gaussian_lowpass_kernels_match_scipy():
    std = torch.tensor([1.5, 10.0, 40.0], dtype=torch.float64)
    got = LF.gaussian_lowpass_kernels(std, 101).numpy()
    want = np.stack([scipy.signal.windows.gaussian(101, s) for s in std.numpy()])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def numpy_filterbank(fb, x):
    """Full-rate numpy reference: ``|x * phi|^2`` (each group's taps) pooled by the Gaussian window of
    ``window_size`` taps centred on every ``hop``-th sample. ``(n_filters, frames)``."""
    center, sigma, width = fb.constrained().detach().double().numpy()
    size, hop = fb.window_size, fb.hop_length
    n_frames = len(x) // hop + 1
    rows = []
    for g in fb.groups:
        for i in range(g.start, g.stop):
            n = np.arange(g.kernel_size) - g.kernel_size // 2
            phi = np.exp(1j * center[i] * n - 0.5 * (n / sigma[i]) ** 2) / (np.sqrt(2 * np.pi) * sigma[i])
            energy = np.abs(np.convolve(x, phi[::-1], mode="same")) ** 2  # y[t] = sum_m phi[m] x[t + m - K//2]
            window = scipy.signal.windows.gaussian(size, width[i] * (size - 1) / 2)
            padded = np.pad(energy, (size // 2, size // 2 + hop))
            rows.append([window @ padded[j * hop:j * hop + size] for j in range(n_frames)])
    return np.array(rows)


def test_leaf_filterbank_matches_numpy():
    x = signal(1)[0]
    fb = GaborFilterbank(N_FILTERS, SR, window_samples(25.0, SR), HOP).double()
    got = fb(x[None])[0].detach().numpy()
    want = numpy_filterbank(fb, x.numpy())
    assert got.shape == want.shape == (N_FILTERS, 4000 // HOP + 1)
    np.testing.assert_allclose(got, want, rtol=1e-10)  # float64: measured 1.8e-15


@pytest.mark.parametrize("stride_factor,tolerance", [(1.0, 0.03), (16.0, 0.08)])
def test_efficientleaf_filterbank_approximates_full_rate_numpy(stride_factor, tolerance):
    """Strided convolutions and pooling of the decimated energy against the full-rate computation with the
    same filters: largest error per band relative to the band's peak, measured 0.023 (stride factor 1)
    and 0.062 (16, the default)."""
    x = signal(1)[0]
    fb = GaborFilterbank(N_FILTERS, SR, window_samples(25.0, SR), HOP, n_groups=8,
                         stride_factor=stride_factor).double()
    got = fb(x[None])[0].detach().numpy()
    want = numpy_filterbank(fb, x.numpy())
    assert (np.abs(got - want).max(axis=1) / want.max(axis=1)).max() < tolerance


def test_efficientleaf_needs_far_fewer_multiplies():
    """Convolution multiply-adds per input sample: EfficientLEAF's 8 groups against LEAF's full rate
    (measured 14.6x fewer at FSDD's settings; the measured forward + backward times are in docs/benchmarks.md)."""
    def macs(fb):
        return sum(2 * (g.stop - g.start) * g.kernel_size / g.conv_stride for g in fb.groups)
    size = window_samples(25.0, SR)
    leaf = GaborFilterbank(N_FILTERS, SR, size, HOP)
    efficient = GaborFilterbank(N_FILTERS, SR, size, HOP, n_groups=8)
    assert [g.conv_stride for g in leaf.groups] == [1]
    assert macs(leaf) / macs(efficient) > 10


@pytest.mark.parametrize("n_groups", [None, 8])
def test_gradients_reach_exactly_the_learnable_parameters(n_groups):
    layer = Leaf(SR, N_FILTERS, hop_length=HOP, n_groups=n_groups)
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == LEARNED
    layer(signal().float()).sum().backward()
    for name, param in layer.named_parameters():
        assert torch.isfinite(param.grad).all() and (param.grad != 0).all(), name


@pytest.mark.parametrize("n_groups", [None, 8])
def test_drift_is_zero_at_init_and_moves(n_groups):
    layer = Leaf(SR, N_FILTERS, hop_length=HOP, n_groups=n_groups)
    drift = layer.drift()
    assert set(drift) == {"center_change", "bandwidth_change", "pool_width_change", "pcen_s_change",
                          "pcen_alpha_change", "pcen_delta_change", "pcen_r_change"}
    assert all(v == 0.0 for v in drift.values())
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    layer(signal().float()).mean().backward()
    opt.step()
    assert all(v > 0 for v in layer.drift().values()) and all(isinstance(v, float) for v in layer.drift().values())


def test_out_of_range_parameters_stay_finite():
    """Centre frequencies beyond Nyquist or negative, negative bandwidths and pooling widths, and extreme
    PCEN log-parameters are clamped in the forward pass: outputs and gradients stay finite."""
    layer = Leaf(SR, N_FILTERS, hop_length=HOP, n_groups=8)
    with torch.no_grad():
        layer.filterbank.center[::2] = 10.0
        layer.filterbank.center[1::2] = -1.0
        layer.filterbank.sigma.fill_(-3.0)
        layer.filterbank.pool_width.fill_(-1.0)
        layer.compression.log_delta.fill_(-60.0)
        layer.compression.log_alpha.fill_(5.0)
        layer.compression.log_s.fill_(3.0)
    out = layer(signal().float())
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    center, sigma, width = layer.filterbank.constrained()
    assert center.min() >= -1e-6 and center.max() <= np.pi + 1e-6 and sigma.min() > 0 and width.min() > 0


@pytest.mark.parametrize("frontend", ["leaf", "efficientleaf"])
def test_build_model_fsdd_forward_backward(frontend):
    model = build_model(resolve_config({**FSDD, "frontend": frontend}), 5500, 10, SR)
    logits, spec = model(0.1 * torch.randn(4, 5500))
    assert spec.shape == (4, N_FILTERS, 5500 // HOP + 1) and logits.shape == (4, 10)
    assert torch.isfinite(logits).all() and torch.isfinite(spec).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert (model.frontend.filterbank.center.grad != 0).any()
    assert {"center_change", "pcen_r_change"} <= set(model.frontend_drift())
    with pytest.raises(ValueError, match="its own compression"):
        build_model(resolve_config({**FSDD, "frontend": frontend, "compression": "pcen"}), 5500, 10, SR)
    with pytest.raises(ValueError, match="gives mel"):
        build_model(resolve_config({**FSDD, "frontend": frontend, "model_name": "linear_net", "feature": "spec"}),
                    5500, 10, SR)
