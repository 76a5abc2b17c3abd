"""One trial: build data and model from a config, train with early stopping, test the best model.

:func:`run_trial` holds the logic and takes a ``report`` callable and an optional checkpoint
directory to resume from, so it runs with or without Ray. :func:`train_trial` is the function
Ray Tune runs: it wires ``run_trial`` to ``tune.report`` / ``tune.get_checkpoint``.

Each checkpoint directory holds ``state.pt`` (model, optimizer, counters and RNG states: what a
resume needs), ``best_model.pt`` (the weights with the lowest validation loss so far) and
``config.json``. The final checkpoint adds ``predictions.csv`` (test set, best model) and
``splits.json`` (the ids of every split).
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from corpora import load_splits
from models.classifiers import build_model
from models.functional import lambd_to_ms
from training.config import resolve_config
from training.loop import evaluate, make_optimizer, seed_everything, train_epoch

Report = Callable[[dict, "str | None"], None]  # (metrics, checkpoint directory or None)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _set_threads() -> None:
    """Torch threads = the CPUs Ray gave the trial (Ray exports OMP_NUM_THREADS)."""
    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit() and int(n) > 0:
        torch.set_num_threads(int(n))


def _lambd(model) -> float:
    layer = model.gaussian_spectrogram()
    return float(layer.effective_lambd().detach()) if layer is not None else math.nan


def run_trial(config: dict, report: Report, restore_dir: str | None = None) -> dict:
    """Train one configuration to early stop or ``max_epochs``; return the final metrics.

    ``report(metrics, checkpoint_dir)`` is called once per epoch; ``checkpoint_dir`` is a
    temporary directory (deleted after the call) when a checkpoint is due, else ``None``.
    The last report carries ``test_accuracy``/``test_loss`` of the best model and ``done=True``.
    """
    cfg = resolve_config(config)
    seed_everything(cfg["seed"])
    _set_threads()
    device = _device()
    data = load_splits(cfg)
    model = build_model(cfg, data.n_points, data.n_classes, data.sample_rate).to(device)
    opt = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg["seed"])
    st = {"epoch": 0, "best_valid_loss": math.inf, "best_valid_acc": 0.0, "best_epoch": -1,
          "best_lambd": _lambd(model), "epochs_since_best": 0}
    best_weights = copy.deepcopy(model.state_dict())

    if restore_dir is not None:
        st, best_weights = _load_checkpoint(Path(restore_dir), model, opt, gen, device)

    sample_rate = data.sample_rate
    metrics: dict = {}
    for epoch in range(st["epoch"], cfg["max_epochs"]):
        loss = train_epoch(model, opt, data.x_train, data.y_train, cfg["batch_size"], gen, device)
        valid = evaluate(model, data.x_valid, data.y_valid, cfg["batch_size"], device)
        lambd = _lambd(model)
        improved = valid.loss < st["best_valid_loss"]
        if improved:
            st.update(best_valid_loss=valid.loss, best_valid_acc=valid.accuracy, best_epoch=epoch,
                      best_lambd=lambd, epochs_since_best=0)
            best_weights = copy.deepcopy(model.state_dict())
        else:
            st["epochs_since_best"] += 1
        st["epoch"] = epoch + 1
        done = st["epochs_since_best"] >= cfg["patience"] or epoch + 1 >= cfg["max_epochs"]
        metrics = {"epoch": epoch, "loss": loss, "valid_loss": valid.loss, "valid_acc": valid.accuracy,
                   "best_valid_loss": st["best_valid_loss"], "best_valid_acc": st["best_valid_acc"],
                   "best_epoch": st["best_epoch"], "lambd_est": lambd, "best_lambd_est": st["best_lambd"],
                   "done": done, "test_loss": math.nan, "test_accuracy": math.nan}  # fixed schema for progress.csv
        if sample_rate:
            metrics["lambd_ms"] = lambd_to_ms(lambd, sample_rate)
            metrics["best_lambd_ms"] = lambd_to_ms(st["best_lambd"], sample_rate)
        metrics.update({f"n_{k}": v for k, v in data.info.items()})
        if done:
            metrics.update(_final_test(model, best_weights, data, cfg, device))
        due = improved or done or (epoch + 1) % cfg["checkpoint_every"] == 0
        if not due:
            report(metrics, None)
            continue
        with tempfile.TemporaryDirectory() as ckpt:
            _save_checkpoint(Path(ckpt), model, opt, gen, st, best_weights, cfg)
            if done:
                _write_test_artifacts(Path(ckpt), metrics.pop("_test_pred"), data)
            report(metrics, ckpt)
        if done:
            break
    return metrics


def _save_checkpoint(ckpt: Path, model, opt, gen, st: dict, best_weights: dict, cfg: dict) -> None:
    """Everything a resume needs (weights, optimizer, counters, every RNG) plus the best weights."""
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": st,
                "rng": {"generator": gen.get_state(), "torch": torch.get_rng_state(),
                        "numpy": np.random.get_state(), "python": random.getstate()}}, ckpt / "state.pt")
    torch.save(best_weights, ckpt / "best_model.pt")
    (ckpt / "config.json").write_text(json.dumps(cfg, indent=1, default=str))


def _load_checkpoint(ckpt: Path, model, opt, gen, device) -> tuple[dict, dict]:
    """Restore what :func:`_save_checkpoint` wrote; returns ``(counters, best weights)``."""
    saved = torch.load(ckpt / "state.pt", map_location=device, weights_only=False)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    gen.set_state(saved["rng"]["generator"])
    torch.set_rng_state(saved["rng"]["torch"])
    np.random.set_state(saved["rng"]["numpy"])
    random.setstate(saved["rng"]["python"])
    return saved["state"], torch.load(ckpt / "best_model.pt", map_location=device)


def _final_test(model, best_weights, data, cfg, device) -> dict:
    """Evaluate the best weights on the test split (the model's current weights are kept)."""
    current = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_weights)
    test = evaluate(model, data.x_test, data.y_test, cfg["batch_size"], device)
    model.load_state_dict(current)
    return {"test_loss": test.loss, "test_accuracy": test.accuracy, "_test_pred": test.predictions}


def _write_test_artifacts(ckpt: Path, predictions: np.ndarray, data) -> None:
    pd.DataFrame({"id": data.ids_test, "label": data.y_test.numpy(), "prediction": predictions}).to_csv(
        ckpt / "predictions.csv", index=False)
    (ckpt / "splits.json").write_text(json.dumps(
        {"train": data.ids_train, "valid": data.ids_valid, "test": data.ids_test}))


def train_trial(config: dict) -> None:
    """The Ray Tune trainable: resumes from ``tune.get_checkpoint()`` and reports each epoch."""
    from ray import tune

    def report(metrics: dict, ckpt_dir: str | None) -> None:
        checkpoint = tune.Checkpoint.from_directory(ckpt_dir) if ckpt_dir else None
        tune.report(metrics, checkpoint=checkpoint)

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        run_trial(config, report)
        return
    with checkpoint.as_directory() as restore_dir:
        run_trial(config, report, restore_dir=restore_dir)
