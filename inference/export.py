"""The learned front-end parameters as plain files: ``frontend.npz`` (arrays) and ``frontend.json`` (scalars).

What a front-end exports is its own business: a front-end module with a method
``export_learned(self) -> dict[str, numpy.ndarray | float]`` gives the values its forward pass uses
(DMEL: the Gaussian window of the learned lambda, lambda in samples and ms; LEAF: centre frequencies and
bandwidths; ...; see docs/predict.md). Any other front-end gives every named parameter and buffer, as it
holds them (:func:`state_arrays`). Two unit rules are added for front-ends that do not know the sample rate:
``lambda_samples`` gets ``lambda_ms`` (1000 lambda / rate) and ``window_ms`` (6 lambda in ms, the trial's
``lambd_ms``), and every ``<name>_cycles`` (cycles per sample) gets ``<name>_hz``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from inference.checkpoint import FinishedTrial
from models.functional import lambd_to_ms

EXPORT_HOOK = "export_learned"


def state_arrays(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """Every named parameter and buffer of ``module`` as a numpy array (the generic export)."""
    named = [*module.named_parameters(), *module.named_buffers()]
    return {name: tensor.detach().cpu().numpy() for name, tensor in named}


def learned_values(frontend: torch.nn.Module, sample_rate: int | None = None) -> dict[str, np.ndarray | float]:
    """What ``frontend`` learned: its ``export_learned()`` when it has one, else :func:`state_arrays`;
    then the unit rules of the module docstring (with ``sample_rate`` in Hz)."""
    hook = getattr(frontend, EXPORT_HOOK, None)
    values = dict(hook()) if hook is not None else state_arrays(frontend)
    if not sample_rate:
        return values
    if "lambda_samples" in values:
        lambd = values["lambda_samples"]
        values.setdefault("lambda_ms", 1000.0 * lambd / sample_rate)
        values.setdefault("window_ms", lambd_to_ms(lambd, sample_rate))
    for name in [k for k in values if k.endswith("_cycles")]:
        values.setdefault(name[:-len("_cycles")] + "_hz", values[name] * sample_rate)
    return values


def split_values(values: dict) -> tuple[dict[str, np.ndarray], dict[str, float | int | bool]]:
    """``(arrays, scalars)``: numpy arrays of more than one element go to ``frontend.npz``; numbers (and
    single-element arrays, as numbers) to ``frontend.json`` (NaN written as ``null``)."""
    arrays, scalars = {}, {}
    for name, value in values.items():
        if isinstance(value, np.ndarray) and value.size > 1:
            arrays[name] = value
        else:
            number = value.item() if isinstance(value, np.ndarray) else value
            scalars[name] = None if isinstance(number, float) and np.isnan(number) else number
    return arrays, scalars


def export_frontend(trial: FinishedTrial, frontend: torch.nn.Module, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/frontend.npz`` and ``out_dir/frontend.json`` for the trained ``frontend`` of ``trial``;
    returns both paths.

    ``frontend.json``: ``frontend`` (the config name), ``frontend_class``, ``sample_rate`` (Hz), ``hop_length``
    (samples), ``n_fft`` (samples; ``null`` where the front-end has none), ``n_mels``, ``segment_samples`` (the
    front-end's input length), ``clip_samples``, ``compression``, the trial (``trial_id``, ``experiment``,
    ``checkpoint``), ``learned`` (the front-end's scalars) and ``arrays`` (name -> shape and dtype of each
    array in ``frontend.npz``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = trial.config
    arrays, scalars = split_values(learned_values(frontend, trial.sample_rate))
    meta = {"frontend": cfg["frontend"], "frontend_class": type(frontend).__name__,
            "sample_rate": trial.sample_rate, "hop_length": scalars.get("hop_length", cfg["hop_length"]),
            "n_fft": scalars.get("n_fft"), "n_mels": scalars.get("n_mels", cfg["n_mels"]),
            "segment_samples": trial.segment_length, "clip_samples": trial.n_points,
            "compression": cfg["compression"], "trial_id": trial.trial_id, "experiment": trial.experiment,
            "checkpoint": trial.checkpoint_dir, "learned": scalars,
            "arrays": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()}}
    npz, js = out / "frontend.npz", out / "frontend.json"
    np.savez(npz, **arrays)
    js.write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return npz, js
