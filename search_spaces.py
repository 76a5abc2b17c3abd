"""Named Ray Tune search spaces. Adding an experiment is adding one function to ``SPACES``.

Each function takes ``max_epochs`` and returns a ``param_space`` dict whose keys are trial
config keys (see ``training/config.py``); ``tune.grid_search`` marks the grid axes.
"""
from ray import tune

SIGMA_REF = 6.38  # samples: the pulse width of the synthetic data


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


SPACES = {
    "time_frequency": time_frequency,
}


def get_space(name: str, max_epochs: int) -> dict:
    """The search space called ``name``; an unknown name lists the known ones."""
    if name not in SPACES:
        raise KeyError(f"unknown search space {name!r}; known spaces: {', '.join(sorted(SPACES))} "
                       "(add one as a function in search_spaces.py)")
    return SPACES[name](max_epochs)
