"""PCEN against a numpy loop of its formula; gradients, guards; compression="pcen" after spectrogram front-ends;
EfficientLEAF's LogTBN (leaf_compression) against numpy."""
import numpy as np
import pytest
import torch

from models import leaf_functional as LF
from models.classifiers import build_model
from models.frontends import DMEL, FixedMel
from models.classifiers import build_frontend
from models.pcen import PCEN, LogTBN, PCENCompressed
from training.config import resolve_config
from training.loop import make_optimizer

SR, HOP = 8000, 80
FSDD = dict(dataset_name="audio_mnist", model_name="mel_linear_net", sample_rate=SR, hop_length=HOP, n_mels=64,
            init_window_ms=25.0, window_mode="optimized")


def numpy_pcen(energy, s, alpha, delta, r, eps=1e-12):
    """``M[0] = E[0]``, ``M[t] = (1 - s) M[t-1] + s E[t]``, ``(E / (eps + M)^alpha + delta)^r - delta^r``,
    one band and frame at a time. ``energy`` ``(batch, bands, frames)``, parameters ``(bands,)``."""
    out = np.empty_like(energy)
    for b in range(energy.shape[0]):
        for c in range(energy.shape[1]):
            m = energy[b, c, 0]
            for t in range(energy.shape[2]):
                m = energy[b, c, t] if t == 0 else (1 - s[c]) * m + s[c] * energy[b, c, t]
                out[b, c, t] = (energy[b, c, t] / (eps + m) ** alpha[c] + delta[c]) ** r[c] - delta[c] ** r[c]
    return out


def energies(batch=2, bands=5, frames=40, seed=0):
    """Non-negative energies over five decades, with exact zeros (silence)."""
    rng = np.random.default_rng(seed)
    e = 10.0 ** rng.uniform(-6, -1, (batch, bands, frames)) * rng.exponential(1.0, (batch, bands, frames))
    e[:, :, 5:8] = 0.0
    return e


def test_pcen_at_init_matches_numpy():
    e = energies()
    layer = PCEN(5).double()
    params = layer.log_params().exp().detach().numpy()  # the float32-stored initial values, in float64
    np.testing.assert_allclose(params, np.array([[0.04], [0.96], [2.0], [0.5]]).repeat(5, 1), rtol=1e-7)
    got = layer(torch.from_numpy(e)).detach().numpy()
    np.testing.assert_allclose(got, numpy_pcen(e, *params), rtol=1e-10, atol=1e-12)


def test_pcen_per_band_parameters_match_numpy():
    e = energies(seed=1)
    s, alpha, delta, r = np.array([0.01, 0.04, 0.2, 0.5, 1.0]), np.array([0.5, 0.8, 0.96, 0.99, 1.0]), \
        np.array([0.1, 0.5, 1.0, 2.0, 10.0]), np.array([0.1, 0.25, 0.5, 0.8, 1.0])
    layer = PCEN(5).double()
    with torch.no_grad():
        for name, value in zip(("s", "alpha", "delta", "r"), (s, alpha, delta, r)):
            getattr(layer, f"log_{name}").copy_(torch.from_numpy(np.log(value)))
    got = layer(torch.from_numpy(e)).detach().numpy()
    np.testing.assert_allclose(got, numpy_pcen(e, s, alpha, delta, r), rtol=1e-9, atol=1e-12)


def test_ema_smoother_matches_numpy_and_has_leading_dims():
    e = energies(batch=6)
    s = np.array([0.02, 0.1, 0.3, 0.7, 1.0])
    got = LF.ema_smoother(torch.from_numpy(e).reshape(2, 3, 5, 40), torch.from_numpy(s)).reshape(6, 5, 40).numpy()
    want = np.empty_like(e)
    want[..., 0] = e[..., 0]
    for t in range(1, e.shape[-1]):
        want[..., t] = (1 - s) * want[..., t - 1] + s * e[..., t]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-18)


def test_gradients_reach_exactly_the_log_parameters():
    layer = PCEN(5)
    assert {n for n, p in layer.named_parameters()} == {"log_s", "log_alpha", "log_delta", "log_r"}
    layer(torch.from_numpy(energies()).float()).sum().backward()
    for name, param in layer.named_parameters():
        assert torch.isfinite(param.grad).all() and (param.grad != 0).all(), name


def test_extreme_log_parameters_stay_finite_and_positive():
    """Log space keeps delta, r, alpha and s positive whatever the optimiser does; the caps keep s, alpha
    and r at most 1 in value (LEAF's linear delta went negative and gave NaN)."""
    layer = PCEN(5)
    with torch.no_grad():
        layer.log_delta.copy_(torch.tensor([-80.0, -10.0, 0.0, 10.0, 40.0]))
        layer.log_alpha.fill_(20.0)
        layer.log_s.fill_(-30.0)
        layer.log_r.copy_(torch.tensor([-20.0, -5.0, 0.0, 5.0, 20.0]))
    out = layer(torch.from_numpy(energies()).float())
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    assert (layer.log_params()[[0, 1, 3]] <= 0).all()
    with pytest.raises(ValueError, match="delta"):
        PCEN(5, delta=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        PCEN(5, alpha=1.5)


def test_drift_is_zero_at_init_and_moves():
    layer = PCEN(5)
    assert layer.drift() == {"pcen_s_change": 0.0, "pcen_alpha_change": 0.0, "pcen_delta_change": 0.0,
                             "pcen_r_change": 0.0}
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(torch.from_numpy(energies()).float()).sum().backward()
    opt.step()
    assert all(v > 0 for v in layer.drift().values())


def test_dmel_and_fixed_mel_without_log_give_the_power_the_log_is_taken_of():
    x = 0.1 * torch.randn(2, 4000)
    kwargs = dict(init_lambd=25.0, n_points=4000, hop_length=HOP, window_mode="optimized")
    torch.testing.assert_close(torch.log(DMEL(SR, 32, log=False, **kwargs)(x) + 1e-10), DMEL(SR, 32, **kwargs)(x))
    torch.testing.assert_close(torch.log(FixedMel(SR, hop_length=HOP, n_mels=32, log=False)(x) + 1e-10),
                               FixedMel(SR, hop_length=HOP, n_mels=32)(x))
    with pytest.raises(ValueError, match="top_db"):
        FixedMel(SR, top_db=80.0, log=False)


@pytest.mark.parametrize("frontend", ["gaussian", "torchaudio_mel"])
def test_build_model_with_pcen_compression(frontend):
    config = resolve_config({**FSDD, "frontend": frontend, "compression": "pcen"})
    model = build_model(config, 5500, 10, SR)
    assert isinstance(model.frontend, PCENCompressed) and model.frontend.pcen.n_bands == 64
    logits, spec = model(0.1 * torch.randn(4, 5500))
    assert spec.shape == (4, 64, 5500 // HOP + 1)
    assert torch.isfinite(logits).all() and torch.isfinite(spec).all()
    logits.sum().backward()
    for name, param in model.frontend.named_parameters():
        assert torch.isfinite(param.grad).all() and (param.grad != 0).any(), name
    assert {"pcen_s_change", "pcen_r_change"} <= set(model.frontend_drift())
    # DMEL's window is still found inside the wrapper: it keeps its own learning rate (lr_tf)
    assert (model.gaussian_spectrogram() is not None) == (frontend == "gaussian")
    assert len(make_optimizer(model, config).param_groups) == (2 if frontend == "gaussian" else 1)


def test_unknown_compression_is_refused():
    with pytest.raises(ValueError, match="unknown compression 'cubic'"):
        build_model(resolve_config({**FSDD, "frontend": "torchaudio_mel", "compression": "cubic"}), 5500, 10, SR)


@pytest.mark.parametrize("median", [False, True])
def test_log_tbn_in_evaluation_equals_numpy(median):
    """A fresh TBN in evaluation mode (running mean 0, variance 1, scale 1, shift 0) divides by sqrt(1 + 1e-5);
    the median is numpy's lower middle value of each band over time (an even number of frames here)."""
    rng = np.random.default_rng(0)
    energy = rng.exponential(size=(3, 5, 8))
    layer = LogTBN(5, median=median).double().eval()
    a = rng.normal(size=5)
    with torch.no_grad():
        layer.a.copy_(torch.from_numpy(a))
    want = np.log1p(10.0 ** a[:, None] * energy)
    if median:
        want = want - np.sort(want, axis=-1)[..., (want.shape[-1] - 1) // 2][..., None]
    got = layer(torch.from_numpy(energy)).detach().numpy()
    np.testing.assert_allclose(got, want / np.sqrt(1 + 1e-5), rtol=1e-12)


def test_log_tbn_in_training_normalises_each_band_and_learns():
    layer = LogTBN(4).double()
    energy = torch.from_numpy(np.random.default_rng(1).exponential(size=(6, 4, 30)) * np.arange(1, 5)[:, None] * 100)
    y = layer(energy)
    np.testing.assert_allclose(y.mean(dim=(0, 2)).detach().numpy(), 0, atol=1e-9)
    np.testing.assert_allclose(y.var(dim=(0, 2), unbiased=False).detach().numpy(), 1, atol=1e-4)  # BN's eps 1e-5
    (y * torch.linspace(0, 1, 30, dtype=torch.float64)).sum().backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    assert set(grads) == {"a", "norm.weight", "norm.bias"}
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads.values())


@pytest.mark.parametrize("frontend", ["leaf", "efficientleaf"])
def test_leaf_compression_through_the_registry(frontend):
    config = resolve_config({**FSDD, "frontend": frontend, "n_mels": 8, "leaf_compression": "log_tbn_median"})
    layer = build_frontend(config, 2000, SR)
    assert isinstance(layer.compression, LogTBN) and layer.compression.median
    assert layer(torch.randn(2, 2000)).shape == (2, 8, 2000 // HOP + 1)
    assert "log1p_a_change" in layer.drift() and not any(k.startswith("pcen_") for k in layer.drift())
    with pytest.raises(ValueError, match="unknown leaf_compression 'tbn'"):
        build_frontend({**config, "leaf_compression": "tbn"}, 2000, SR)
