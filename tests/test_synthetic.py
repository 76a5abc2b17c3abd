import numpy as np
from scipy.signal import hilbert

from corpora import synthetic
from training.config import resolve_config


def test_deterministic_and_shaped():
    x1, y1 = synthetic.generate(500, seed=3)
    x2, y2 = synthetic.generate(500, seed=3)
    x3, _ = synthetic.generate(500, seed=4)
    assert x1.shape == (500, 128) and x1.dtype == np.float32
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    np.testing.assert_allclose(x1.mean(axis=1), 0, atol=1e-6)
    assert set(np.unique(y1)) == {0, 1, 2}


def test_class_structure_in_demo_mode():
    """Noise-free demo examples: class 1 has two envelope peaks in time, class 2 two spectral peaks."""
    x, _ = synthetic.generate(3, noise_std=0.0, demo=True, labels=[0, 1, 2], seed=0)
    t_max, f_max = 128 / 5, 0.1

    def envelope_peaks(sig):
        env = np.abs(hilbert(sig))
        return [i for i in range(1, len(env) - 1) if env[i] > env[i - 1] and env[i] >= env[i + 1]
                and env[i] > 0.3 * env.max()]

    def spectral_peaks(sig):
        mag = np.abs(np.fft.rfft(sig, 1024))
        return [i for i in range(1, len(mag) - 1) if mag[i] > mag[i - 1] and mag[i] >= mag[i + 1]
                and mag[i] > 0.3 * mag.max()]

    assert len(spectral_peaks(x[0])) == 1
    peaks = envelope_peaks(x[1])
    assert len(peaks) == 2 and abs((peaks[1] - peaks[0]) - 2 * 0.4 * t_max) < 3
    freqs = np.array(spectral_peaks(x[2])) / 1024
    assert len(freqs) == 2 and abs((freqs[1] - freqs[0]) - 2 * 0.4 * f_max) < 0.01


def test_noise_kinds():
    xu, _ = synthetic.generate(200, noise_std=1.0, sigma_ref=6.38, seed=0)
    xg, _ = synthetic.generate(200, noise_std=1.0, noise_kind="gaussian", seed=0)
    assert xg.std() > xu.std()  # N(0,1) has a larger spread than U[0,1)


def test_splits_70_10_20():
    cfg = resolve_config({"n_samples": 1000, "seed": 1})
    s = synthetic.load_splits(cfg)
    assert (len(s.y_train), len(s.y_valid), len(s.y_test)) == (700, 100, 200)
    ids = s.ids_train + s.ids_valid + s.ids_test
    assert len(set(ids)) == 1000
    assert s.sample_rate is None and s.n_points == 128


def test_generation_is_fast():
    """5,000 examples are produced vectorised (a loop in Python would take seconds)."""
    x, _ = synthetic.generate(5000)
    assert x.shape == (5000, 128)


def test_fresh_signals_per_repetition_one_split_permutation():
    """The DMEL code draws the synthetic signals afresh for each run and splits them with a generator seeded 0:
    here ``seed`` draws the signals, ``split_seed`` the permutation (row ids are the generated rows' indices)."""
    a, b = (synthetic.load_splits(resolve_config({"n_samples": 200, "seed": k, "split_seed": 0})) for k in (0, 1))
    assert a.ids_test == b.ids_test and a.ids_train == b.ids_train
    assert not np.array_equal(a.x_test.numpy(), b.x_test.numpy())
    c = synthetic.load_splits(resolve_config({"n_samples": 200, "seed": 1, "split_seed": None}))
    assert c.ids_test != a.ids_test
