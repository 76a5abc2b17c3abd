"""DSPEC/DMEL against independent numpy/librosa computations and finite differences."""
import math

import librosa
import numpy as np
import pytest
import torch

from models import functional as F
from models.frontends import DMEL, FixedMel, GaussianSpectrogram


def numpy_gaussian_window(lambd, length, normalize=False):
    """The DMEL code's window: peak 1 (its grids' normalize_window False), or unit energy."""
    m = np.arange(length)
    w = np.exp(-0.5 * ((m - length / 2) / lambd) ** 2)
    return w / np.sqrt(np.sum(w**2)) if normalize else w


def numpy_power_spectrogram(x, window, n_fft, hop):
    """Direct DFT of zero-padded, windowed frames (center=True)."""
    pad = n_fft // 2
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    left = (n_fft - len(window)) // 2
    wpad = np.zeros(n_fft)
    wpad[left:left + len(window)] = window
    n_frames = len(x) // hop + 1
    k = np.arange(n_fft // 2 + 1)[:, None]
    m = np.arange(n_fft)[None, :]
    dft = np.exp(-2j * np.pi * k * m / n_fft)
    frames = np.stack([xp[t * hop:t * hop + n_fft] * wpad for t in range(n_frames)], axis=1)
    return np.abs(dft @ frames) ** 2  # (n_fft // 2 + 1, n_frames)


@pytest.mark.parametrize("mode,lambd,n_points,hop", [("full", 6.38, 128, 1), ("full", 1.3, 96, 3),
                                                      ("optimized", 13.3, 800, 80), ("optimized", 50.0, 1000, 80)])
def test_spectrogram_matches_numpy_dft(mode, lambd, n_points, hop):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n_points)
    layer = GaussianSpectrogram(lambd, n_points, hop_length=hop, window_mode=mode, remove_mean=False)
    got = layer(torch.from_numpy(x)[None]).detach().numpy()[0]
    length, n_fft = F.window_geometry(lambd, n_points, mode)
    want = numpy_power_spectrogram(x, numpy_gaussian_window(lambd, length), n_fft, hop)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * want.max())


def test_window_geometry():
    assert F.window_geometry(6.38, 128, "full") == (128, 256)
    assert F.window_geometry(8000 * 0.035 / 6, 5500, "optimized") == (512, 512)   # 35 ms at 8 kHz
    assert F.window_geometry(8000 * 0.300 / 6, 5500, "optimized") == (4096, 4096)  # 300 ms


@pytest.mark.parametrize("six_lambd", [2.5, 3.0, 80.0, 128.0, 128.7, 129.0, 255.99, 256.0, 256.5, 1000.0, 4097.3])
def test_optimized_window_truncates_then_rounds_up_as_the_dmel_code(six_lambd):
    """The DMEL code: ``1 << (int(6 lambda) - 1).bit_length()``; written here as the smallest power of two
    >= floor(6 lambda), by a loop (6 lambda = 128.7 gives 128: truncated first, then rounded up)."""
    floor = math.floor(six_lambd)
    want = 1
    while want < floor:
        want *= 2
    assert F.window_geometry(six_lambd / 6, 10**6, "optimized") == (max(want, 2), max(want, 2))


@pytest.mark.parametrize("normalize", [False, True])
def test_window_peak_one_or_unit_energy(normalize):
    window = F.gaussian_window(torch.tensor(5.0, dtype=torch.float64), 64, normalize).numpy()
    np.testing.assert_allclose(window, numpy_gaussian_window(5.0, 64, normalize), rtol=1e-12)
    if normalize:
        assert np.sum(window**2) == pytest.approx(1.0)
    else:
        assert window.max() == 1.0  # m = L/2 = 32 is the centre: exp(0)
    assert F.ms_to_lambd(F.lambd_to_ms(13.0, 8000), 8000) == pytest.approx(13.0)


def test_dmel_matches_librosa_mel():
    sr, n_points, hop, n_mels, lambd = 8000, 1600, 80, 40, 50.0
    x = np.random.default_rng(1).standard_normal(n_points)
    layer = DMEL(sample_rate=sr, n_mels=n_mels, init_lambd=lambd, n_points=n_points, hop_length=hop,
                 window_mode="optimized", remove_mean=False).double()
    got = layer(torch.from_numpy(x)[None]).detach().numpy()[0]
    length, n_fft = F.window_geometry(lambd, n_points, "optimized")
    window = numpy_gaussian_window(lambd, length)
    spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window=window, center=True,
                               pad_mode="constant")) ** 2
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None, fmin=0.0, fmax=sr / 2)
    want = np.log(fb @ spec + 1e-10)
    # torchaudio builds its filterbank in float32: ~1e-5 relative differences to librosa's float64 one
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-4)


@pytest.mark.parametrize("mode,n_points,hop,lambd,chunk", [("full", 128, 1, 6.38, None), ("optimized", 5500, 80, 400.0, 3)])
def test_batch_equals_per_example(mode, n_points, hop, lambd, chunk):
    x = torch.randn(7, n_points)
    layer = DMEL(sample_rate=8000, n_mels=32, init_lambd=lambd, n_points=n_points, hop_length=hop,
                 window_mode=mode, chunk_size=chunk)
    with torch.no_grad():
        batch = layer(x)
        single = torch.cat([layer(x[i:i + 1]) for i in range(len(x))])
    torch.testing.assert_close(batch, single, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode,n_points,hop,lambd", [("full", 64, 1, 5.0), ("optimized", 600, 40, 30.0)])
def test_lambda_gradient_matches_finite_differences(mode, n_points, hop, lambd):
    """d(loss)/d(lambd) in float64 against central differences (lambd stays inside one power of two)."""
    torch.manual_seed(0)
    x = torch.randn(3, n_points, dtype=torch.float64)
    kwargs = dict(sample_rate=8000, n_mels=16, n_points=n_points, hop_length=hop, window_mode=mode)
    layer = DMEL(init_lambd=lambd, **kwargs).double()
    weights = torch.randn_like(layer(x))

    def loss_at(value):
        with torch.no_grad():
            layer.lambd.fill_(value)
        return (layer(x) * weights).sum()

    loss = loss_at(lambd)
    loss.backward()
    eps = 1e-4
    numeric = (loss_at(lambd + eps).item() - loss_at(lambd - eps).item()) / (2 * eps)
    assert layer.lambd.grad.item() == pytest.approx(numeric, rel=1e-5)


def test_empty_mel_filters_warn():
    """10 ms at 8 kHz -> n_fft 128 -> 65 bins; 3 of 64 mel filters are empty."""
    layer = DMEL(sample_rate=8000, n_mels=64, init_lambd=F.ms_to_lambd(10, 8000), n_points=5500, hop_length=80,
                 window_mode="optimized")
    with pytest.warns(UserWarning, match="3 of 64 mel filters are empty at n_fft=128"):
        layer(torch.randn(2, 5500))


def test_filterbank_cached_per_n_fft():
    layer = DMEL(sample_rate=8000, n_mels=32, init_lambd=50.0, n_points=2000, hop_length=80,
                 window_mode="optimized")
    layer(torch.randn(2, 2000))
    layer(torch.randn(2, 2000))
    assert len(layer._fbanks) == 1
    with torch.no_grad():
        layer.lambd.fill_(200.0)
    layer.spectrogram.project_()  # an in-place change of lambda reaches the geometry through project_()
    layer(torch.randn(2, 2000))
    assert sorted(k[0] for k in layer._fbanks) == [512, 2048]


def test_lambda_range_guard():
    with pytest.raises(ValueError, match="outside"):
        GaussianSpectrogram(500.0, n_points=128)
    layer = GaussianSpectrogram(5.0, n_points=128)
    with torch.no_grad():
        layer.lambd.fill_(-1e-3)  # collapsed through the absolute value
    assert layer.effective_lambd().item() == pytest.approx(layer.min_lambd)
    layer.lambd.data.fill_(1e4)
    layer.project_()
    assert layer.lambd.item() == pytest.approx(128.0)


def test_frozen_window_is_not_a_parameter_to_train():
    layer = GaussianSpectrogram(6.38, n_points=128, trainable=False)
    assert not layer.lambd.requires_grad
    out = layer(torch.randn(2, 128))
    assert not out.requires_grad


def test_fixed_mel_shape_and_finite():
    layer = FixedMel(sample_rate=8000, win_ms=25, hop_length=80, n_mels=64)
    out = layer(torch.randn(3, 5500))
    assert out.shape == (3, 64, 5500 // 80 + 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("n_fft,win,hop,n_points", [(256, 128, 1, 128), (512, 512, 80, 2000), (64, 40, 7, 300),
                                                    (63, 40, 7, 300)])  # odd n_fft: no Nyquist bin
def test_closed_form_window_gradient_matches_autograd(n_fft, win, hop, n_points):
    """The hand-written window gradient equals autograd through torch.stft (float64)."""
    torch.manual_seed(0)
    x = torch.randn(3, n_points, dtype=torch.float64)
    w = torch.rand(win, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, n_fft // 2 + 1, n_points // hop + 1, dtype=torch.float64)
    (F.power_spectrogram(x, w, n_fft, hop) * weights).sum().backward()
    ours = w.grad.clone()
    w.grad = None
    x_grad = x.clone().requires_grad_(True)  # a signal that needs gradients takes the autograd path
    (F.power_spectrogram(x_grad, w, n_fft, hop) * weights).sum().backward()
    torch.testing.assert_close(ours, w.grad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(F.power_spectrogram(x, w, n_fft, hop), F.power_spectrogram(x_grad, w, n_fft, hop))


def test_workspace_reused_across_calls_gives_the_autograd_values():
    """Scratch tensors kept in one workspace across calls (batches of 5 then 2, chunks of 2 with a last
    chunk of 1, two forwards before one backward) leave the power and window gradient of autograd
    through torch.stft (float64)."""
    torch.manual_seed(0)
    n_fft, hop, n_points = 64, 7, 300
    w = torch.rand(40, dtype=torch.float64, requires_grad=True)
    workspace = {}
    for batch in (5, 2):
        xs = [torch.randn(batch, n_points, dtype=torch.float64) for _ in range(2)]
        weights = torch.randn(batch, n_fft // 2 + 1, n_points // hop + 1, dtype=torch.float64)
        outs = [F.power_spectrogram(x, w, n_fft, hop, chunk_size=2, workspace=workspace) for x in xs]
        (sum(outs) * weights).sum().backward()
        ours, w.grad = w.grad.clone(), None
        wants = [F.power_spectrogram(x.requires_grad_(True), w, n_fft, hop) for x in xs]  # the autograd path
        (sum(wants) * weights).sum().backward()
        torch.testing.assert_close(ours, w.grad, rtol=1e-9, atol=1e-9)
        for out, want in zip(outs, wants):
            torch.testing.assert_close(out, want.detach())
        w.grad = None
    assert sorted(workspace) == ["frames", "padded", "spectra"]  # one scratch tensor each, kept for the next call


@pytest.mark.parametrize("pad_mode", F.PAD_MODES)
@pytest.mark.parametrize("n_fft,length", [(64, 300), (63, 40), (8, 5)])
@pytest.mark.parametrize("remove_mean", [False, True])
def test_padding_into_scratch_equals_torch_pad(pad_mode, n_fft, length, remove_mean):
    x = torch.randn(3, length, dtype=torch.float64) + 1
    mean = x.mean(-1, keepdim=True) if remove_mean else None
    want = torch.nn.functional.pad((x - mean if remove_mean else x)[:, None], (n_fft // 2, n_fft // 2),
                                   mode=pad_mode)[:, 0]
    workspace = {"padded": torch.full((4, length + n_fft // 2 * 2), float("nan"), dtype=torch.float64)}  # stale
    torch.testing.assert_close(F._padded(x, n_fft, pad_mode, workspace, mean), want, rtol=0, atol=0)
    torch.testing.assert_close(F._padded(x, n_fft, pad_mode, None, mean), want, rtol=0, atol=0)


def test_remove_mean_equals_centring_first():
    """``remove_mean=True`` equals the transform of the centred signal, on the closed-form and autograd paths."""
    torch.manual_seed(0)
    x = torch.randn(4, 500, dtype=torch.float64) + 3
    w = torch.rand(64, dtype=torch.float64)
    want = F.power_spectrogram(x - x.mean(-1, keepdim=True), w, 64, 10)
    torch.testing.assert_close(F.power_spectrogram(x, w, 64, 10, remove_mean=True), want)
    torch.testing.assert_close(F.power_spectrogram(x.requires_grad_(True), w, 64, 10, remove_mean=True), want)


# lambd_param="log" (lambda = exp(theta)), the straight-through bounds, min_window_ms

@pytest.mark.parametrize("mode,n_points,hop,lambd", [("full", 128, 1, 6.38), ("optimized", 5500, 80, 13.333),
                                                      ("optimized", 5500, 80, 400.0)])
def test_log_parameter_gives_the_same_output_as_abs(mode, n_points, hop, lambd):
    """In float64 exp(log(lambda)) is lambda to ~1e-16, so the two parameterisations give the same
    window, geometry and log-mel (to 1e-12) at the same lambda."""
    x = torch.randn(3, n_points, dtype=torch.float64)
    kwargs = dict(sample_rate=8000, n_mels=32, init_lambd=lambd, n_points=n_points, hop_length=hop, window_mode=mode)
    layer_abs, layer_log = DMEL(**kwargs).double(), DMEL(lambd_param="log", **kwargs).double()
    assert set(dict(layer_log.named_parameters())) == {"spectrogram.log_lambd"}
    assert layer_log.lambd is layer_log.spectrogram.log_lambd
    assert layer_log.spectrogram.geometry() == layer_abs.spectrogram.geometry()
    with torch.no_grad():  # float64 now: the same lambda in both, exactly
        layer_abs.lambd.fill_(lambd)
        layer_log.spectrogram.log_lambd.fill_(np.log(lambd))
    torch.testing.assert_close(layer_log(x), layer_abs(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode,n_points,hop,lambd", [("full", 64, 1, 5.0), ("optimized", 600, 40, 30.0)])
def test_log_parameter_gradient_matches_finite_differences(mode, n_points, hop, lambd):
    """d(loss)/d(theta), theta = log lambda, in float64 against central differences in theta; and the
    chain rule: it is lambda times d(loss)/d(lambda) of the abs layer."""
    torch.manual_seed(0)
    x = torch.randn(3, n_points, dtype=torch.float64)
    kwargs = dict(sample_rate=8000, n_mels=16, n_points=n_points, hop_length=hop, window_mode=mode)
    layer = DMEL(init_lambd=lambd, lambd_param="log", **kwargs).double()
    weights = torch.randn_like(layer(x))

    def loss_at(theta):
        with torch.no_grad():
            layer.spectrogram.log_lambd.fill_(theta)
        return (layer(x) * weights).sum()

    theta = float(np.log(lambd))
    loss_at(theta).backward()
    eps = 1e-5
    numeric = (loss_at(theta + eps).item() - loss_at(theta - eps).item()) / (2 * eps)
    assert layer.spectrogram.log_lambd.grad.item() == pytest.approx(numeric, rel=1e-5)
    reference = DMEL(init_lambd=lambd, **kwargs).double()
    (reference(x) * weights).sum().backward()
    assert layer.spectrogram.log_lambd.grad.item() == pytest.approx(lambd * reference.lambd.grad.item(), rel=1e-9)


@pytest.mark.parametrize("lambd_param", ["abs", "log"])
def test_bounds_hold_the_value_but_pass_the_gradient(lambd_param):
    """project_() puts lambda exactly on its floor; the floor must not absorb it (torch.clamp's
    gradient is zero there): the gradient still reaches the parameter, and a step up leaves the floor."""
    layer = GaussianSpectrogram(5.0, n_points=128, min_lambd=2.0, max_lambd=40.0, lambd_param=lambd_param)
    with torch.no_grad():
        layer.window_parameter.fill_(1.0 if lambd_param == "abs" else np.log(1.0))  # below the floor
    layer.project_()
    assert layer.effective_lambd().item() == pytest.approx(2.0)
    assert layer.window_parameter.item() == pytest.approx(2.0 if lambd_param == "abs" else np.log(2.0))
    layer.effective_lambd().backward()
    assert layer.window_parameter.grad.item() == pytest.approx(1.0 if lambd_param == "abs" else 2.0)
    with torch.no_grad():  # a step up the gradient leaves the floor
        layer.window_parameter.add_(0.5 * layer.window_parameter.grad)
    layer.project_()
    assert layer.effective_lambd().item() > 2.0
    with torch.no_grad():
        layer.window_parameter.fill_(1e4)
    layer.project_()
    assert layer.effective_lambd().item() == pytest.approx(40.0)


def test_log_parameter_never_reaches_zero_and_steps_by_ratios():
    layer = GaussianSpectrogram(10.0, n_points=256, lambd_param="log", min_lambd=1e-6)
    for theta, want in ((np.log(10.0) - 1.0, 10.0 / np.e), (-10.0, np.exp(-10.0))):
        with torch.no_grad():
            layer.log_lambd.fill_(theta)
        assert layer.effective_lambd().item() == pytest.approx(want, rel=1e-5) and layer.effective_lambd().item() > 0
    with pytest.raises(ValueError, match="unknown lambd_param 'sqrt'"):
        GaussianSpectrogram(10.0, n_points=256, lambd_param="sqrt")


def test_log_parameter_state_dict_round_trip_refreshes_geometry():
    a = GaussianSpectrogram(13.333, n_points=5500, hop_length=80, window_mode="optimized", lambd_param="log")
    b = GaussianSpectrogram(100.0, n_points=5500, hop_length=80, window_mode="optimized", lambd_param="log")
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"log_lambd"} and b.geometry() == a.geometry() == (128, 128)


def test_dmel_drift_is_the_relative_change_of_lambda():
    """lambda 20 -> 25 samples is a drift of 0.25; a fixed window reports none."""
    layer = DMEL(sample_rate=8000, n_mels=16, init_lambd=20.0, n_points=800, hop_length=80, window_mode="optimized")
    assert layer.drift() == {"lambd_change": 0.0}
    with torch.no_grad():
        layer.lambd.fill_(25.0)
    assert layer.drift() == {"lambd_change": pytest.approx(0.25)}
    fixed = DMEL(sample_rate=8000, n_mels=16, init_lambd=20.0, n_points=800, hop_length=80, trainable=False)
    assert fixed.drift() == {}


def test_float32_lambda_of_a_power_of_two_window_keeps_its_length():
    """GTZAN's 46.4 ms = 1024 samples at 22,050 Hz: lambda = 1024 / 6 in float32 is 170.66667, 6 lambda
    1024.00003; the window is 1024 samples (it was 2048)."""
    lambd = float(torch.tensor(1024 / 6, dtype=torch.float32))
    assert 6 * lambd > 1024
    assert F.window_geometry(lambd, 661500, "optimized") == (1024, 1024)
    assert F.window_geometry(1025 / 6, 661500, "optimized") == (2048, 2048)
