"""Named Ray Tune search spaces. Adding an experiment is adding one function to ``SPACES``.

Each function takes ``max_epochs`` and returns a ``param_space`` dict whose keys are trial
config keys (see ``training/config.py``); ``tune.grid_search`` marks the grid axes.
"""
from ray import tune

SIGMA_REF = 6.38  # samples: the pulse width of the synthetic data
FSDD_RATE = 8000  # Hz


def time_frequency(max_epochs):
    """DMEL paper, Table 4: Gaussian pulses, DSPEC trainable vs fixed at 0.2, 1 and 5 sigma_ref."""
    return {
        "dataset_name": "time_frequency",
        "model_name": tune.grid_search(["linear_net", "conv_net"]),
        "trainable": tune.grid_search([True, False]),
        "init_lambd": tune.grid_search([round(f * SIGMA_REF, 3) for f in (0.2, 1.0, 5.0)]),
        "window_mode": "full",
        "hop_length": 1,
        "optimizer_name": "sgd",
        "lr_model": 1e-3,
        "lr_tf": 1.0,
        "batch_size": 128,
        "max_epochs": max_epochs,
        "patience": 100,
        "n_samples": 5000,
        "n_points": 128,
        "sigma_ref": SIGMA_REF,
        "noise_std": 0.5,
    }


def _audio_mnist_common(max_epochs):
    """Settings shared by the FSDD grids (DMEL paper's speech experiment, 8 kHz)."""
    return {
        "dataset_name": "audio_mnist",
        "protocol": "dmel",
        "sample_rate": FSDD_RATE,
        "n_points": 5500,
        "model_name": tune.grid_search(["mel_linear_net", "mel_conv_net"]),
        "window_mode": "optimized",
        "hop_length": 80,  # 10 ms
        "n_mels": 64,
        "optimizer_name": "adam",
        "lr_model": 1e-4,
        "lr_tf": 1.0,
        "batch_size": 64,
        "max_epochs": max_epochs,
        "patience": 100,
    }


def audio_mnist(max_epochs):
    """DMEL paper, Table 3 layout on FSDD: DMEL trainable vs fixed at 10, 35 and 300 ms windows."""
    return {
        **_audio_mnist_common(max_epochs),
        "trainable": tune.grid_search([True, False]),
        "init_lambd": tune.grid_search([round(FSDD_RATE * ms / 1000 / 6, 3) for ms in (10, 35, 300)]),
    }


def audio_mnist_reference(max_epochs):
    """A row the paper lacks: the same classifiers on torchaudio's fixed 25 ms Hann log-mel."""
    return {**_audio_mnist_common(max_epochs), "frontend": "torchaudio_mel", "fixed_win_ms": 25.0,
            "trainable": False}


SPACES = {
    "time_frequency": time_frequency,
    "audio_mnist": audio_mnist,
    "audio_mnist_reference": audio_mnist_reference,
}


ALIASES = {"fsdd": "audio_mnist"}


def canonical_name(name: str) -> str:
    """``name`` with aliases resolved (the experiment folder is named after it)."""
    return ALIASES.get(name, name)


def get_space(name: str, max_epochs: int) -> dict:
    """The search space called ``name`` (or an alias); an unknown name lists the known ones."""
    name = canonical_name(name)
    if name not in SPACES:
        raise KeyError(f"unknown search space {name!r}; known spaces: {', '.join(sorted(SPACES))} "
                       "(add one as a function in search_spaces.py)")
    return SPACES[name](max_epochs)
