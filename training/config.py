"""Every key a trial config may hold, with its default. Unknown keys fail loudly."""
from __future__ import annotations

import difflib

DEFAULTS = {
    # experiment
    "dataset_name": "time_frequency",  # corpus: time_frequency | audio_mnist
    "seed": 0,                         # seeds Python, NumPy, torch and the data
    # model
    "model_name": "linear_net",        # see models.classifiers.MODELS
    "frontend": "gaussian",            # gaussian (DSPEC/DMEL) | torchaudio_mel (fixed Hann)
    "trainable": True,                 # learn lambda; False = fixed-resolution baseline
    "init_lambd": 6.38,                # initial window std, samples
    "min_lambd": 0.5,                  # floor for lambda, samples (the ceiling is the signal length)
    "window_mode": "full",             # full | optimized
    "normalize_window": True,          # unit-energy window (the paper code's behaviour)
    "hop_length": 1,                   # samples
    "n_mels": 64,
    "fixed_win_ms": 25.0,              # torchaudio_mel window, ms
    # training
    "optimizer_name": "sgd",           # sgd | adam
    "lr_model": 1e-3,
    "lr_tf": 1.0,                      # learning rate of lambda
    "batch_size": 128,
    "max_epochs": 100,
    "patience": 100,                   # epochs without a lower valid loss before stopping
    "checkpoint_every": 10,            # epochs between resume checkpoints (besides improvements)
    # synthetic data
    "n_samples": 5000,
    "n_points": 128,
    "sigma_ref": 6.38,
    "noise_std": 0.5,
    "noise_kind": "uniform",           # uniform (paper code: noise_std * U[0,1)) | gaussian
    "t_center_max_offset": 0.0,
    "f_center_max_offset": 0.0,
    # audio data
    "data_dir": None,                  # dataset root (absolute)
    "protocol": "dmel",                # FSDD split protocol: dmel | standard | speaker
    "sample_rate": 8000,               # Hz
}


def resolve_config(config: dict) -> dict:
    """``DEFAULTS`` updated with ``config``; raises ``KeyError`` naming unknown keys."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise KeyError(f"unknown config key(s): {', '.join(hints)}; valid keys are listed in training/config.py")
    return {**DEFAULTS, **config}
