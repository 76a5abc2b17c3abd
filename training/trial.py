"""One trial: build data and model from a config, train with early stopping, test the best model.

:func:`run_trial` holds the logic and takes a ``report`` callable and an optional checkpoint
directory to resume from, so it runs with or without Ray. :func:`train_trial` is the function
Ray Tune runs: it wires ``run_trial`` to ``tune.report`` / ``tune.get_checkpoint``.

Each checkpoint directory holds ``state.pt`` (model, optimizer, counters and RNG states: what a
resume needs), ``best_model.pt`` (the weights with the lowest validation loss so far) and
``config.json``. The final checkpoint adds ``predictions.csv`` (test clips, best model: mean-logit
and majority-vote predictions), ``confusion_matrix.csv`` (test, best model, mean-logit decisions)
and ``splits.json`` (the ids of every split).

Clips longer than one segment (``split_parts``/``segment_seconds``) are trained on segments and
evaluated per clip: ``*_accuracy`` aggregates each clip's segments by their mean logits,
``*_accuracy_vote`` by majority vote, ``*_accuracy_segment`` scores segments on their own.
Early stopping watches the validation loss over segments.
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
from training.augment import build_waveform_augment
from training.config import resolve_config
from training.loop import evaluate, make_optimizer, make_scheduler, seed_everything, train_epoch
from training.metrics import class_metrics, confusion_table
from training.segments import n_segments

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
    length = data.n_points // n_segments(cfg)  # samples per segment, the model's input length
    model = build_model(cfg, length, data.n_classes, data.sample_rate).to(device)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg)
    augment = build_waveform_augment(cfg, data.sample_rate)
    gen = torch.Generator().manual_seed(cfg["seed"])
    st = {"epoch": 0, "best_valid_loss": math.inf, "best_valid_acc": 0.0, "best_epoch": -1,
          "best_lambd": _lambd(model), "epochs_since_best": 0}
    best_weights = copy.deepcopy(model.state_dict())

    if restore_dir is not None:
        st, best_weights = _load_checkpoint(Path(restore_dir), model, opt, sched, gen, device)

    sample_rate = data.sample_rate
    test_placeholders = {key: math.nan for key in _test_metric_names(data.class_names)}
    metrics: dict = {}
    for epoch in range(st["epoch"], cfg["max_epochs"]):
        lr = opt.param_groups[0]["lr"]
        loss = train_epoch(model, opt, data.x_train, data.y_train, cfg["batch_size"], gen, device, length,
                           cfg["train_segments"], augment)
        sched.step()
        valid = evaluate(model, data.x_valid, data.y_valid, cfg["batch_size"], device, length)
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
        metrics = {"epoch": epoch, "lr": lr, "loss": loss, "valid_loss": valid.loss, "valid_acc": valid.accuracy,
                   "valid_acc_vote": valid.accuracy_vote, "valid_acc_segment": valid.accuracy_segment,
                   "best_valid_loss": st["best_valid_loss"], "best_valid_acc": st["best_valid_acc"],
                   "best_epoch": st["best_epoch"], "lambd_est": lambd, "best_lambd_est": st["best_lambd"],
                   **{f"frontend_{k}": v for k, v in model.frontend_drift().items()},
                   "done": done, **test_placeholders}  # fixed schema for progress.csv
        if sample_rate:
            metrics["lambd_ms"] = lambd_to_ms(lambd, sample_rate)
            metrics["best_lambd_ms"] = lambd_to_ms(st["best_lambd"], sample_rate)
        metrics.update({f"n_{k}": v for k, v in data.info.items()})
        if done:
            metrics.update(_final_test(model, best_weights, data, cfg, device, length))
        due = improved or done or (epoch + 1) % cfg["checkpoint_every"] == 0
        if not due:
            report(metrics, None)
            continue
        with tempfile.TemporaryDirectory() as ckpt:
            _save_checkpoint(Path(ckpt), model, opt, sched, gen, st, best_weights, cfg)
            if done:
                _write_test_artifacts(Path(ckpt), metrics.pop("_test"), data)
            report(metrics, ckpt)
        if done:
            break
    return metrics


def _save_checkpoint(ckpt: Path, model, opt, sched, gen, st: dict, best_weights: dict, cfg: dict) -> None:
    """Everything a resume needs (weights, optimizer, schedule, counters, every RNG) plus the best weights."""
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "state": st,
                "rng": {"generator": gen.get_state(), "torch": torch.get_rng_state(),
                        "numpy": np.random.get_state(), "python": random.getstate()}}, ckpt / "state.pt")
    torch.save(best_weights, ckpt / "best_model.pt")
    (ckpt / "config.json").write_text(json.dumps(cfg, indent=1, default=str))


def _load_checkpoint(ckpt: Path, model, opt, sched, gen, device) -> tuple[dict, dict]:
    """Restore what :func:`_save_checkpoint` wrote; returns ``(counters, best weights)``."""
    saved = torch.load(ckpt / "state.pt", map_location=device, weights_only=False)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    gen.set_state(saved["rng"]["generator"])
    torch.set_rng_state(saved["rng"]["torch"])
    np.random.set_state(saved["rng"]["numpy"])
    random.setstate(saved["rng"]["python"])
    return saved["state"], torch.load(ckpt / "best_model.pt", map_location=device)


def _test_metric_names(class_names: list[str]) -> list[str]:
    return ["test_loss", "test_accuracy", "test_accuracy_vote", "test_accuracy_segment", "test_macro_f1",
            *(f"test_recall/{name}" for name in class_names)]


def _final_test(model, best_weights, data, cfg, device, length: int) -> dict:
    """Evaluate the best weights on the test split (the model's current weights are kept)."""
    current = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_weights)
    test = evaluate(model, data.x_test, data.y_test, cfg["batch_size"], device, length)
    model.load_state_dict(current)
    per_class = class_metrics(data.y_test.numpy(), test.predictions, data.class_names)
    return {"test_loss": test.loss, "test_accuracy": test.accuracy, "test_accuracy_vote": test.accuracy_vote,
            "test_accuracy_segment": test.accuracy_segment, **{f"test_{k}": v for k, v in per_class.items()},
            "_test": test}


def _write_test_artifacts(ckpt: Path, test, data) -> None:
    labels = data.y_test.numpy()
    pd.DataFrame({"id": data.ids_test, "label": labels, "prediction": test.predictions,
                  "vote": test.votes}).to_csv(ckpt / "predictions.csv", index=False)
    confusion_table(labels, test.predictions, data.class_names).to_csv(ckpt / "confusion_matrix.csv")
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
