"""A finished trial of a Tune experiment, and its model rebuilt from the final checkpoint.

A trial's final checkpoint (``training/trial.py``) holds ``config.json`` (the resolved config),
``best_model.pt`` (the weights of the epoch with the lowest validation loss, the ones it was tested with)
and ``classes.json`` (class names in label order, sample rate, clip length in samples). A trial written
before ``classes.json`` existed gives its class names through ``confusion_matrix.csv``'s header, and its
clip length through its corpus's rule (see :func:`clip_geometry`).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pandas as pd
import torch

from corpora.registry import get_corpus
from figures.read import UnreadableExperiment, load_experiment, read_checkpoint_file
from models.classifiers import Classifier, build_model
from training.config import DEFAULTS
from training.loop import seed_everything
from training.segments import segment_geometry, segments_per_clip

BEST_METRIC = "best_valid_acc"  # --best: the highest of this, ties to the lower best_valid_loss, then the trial id


class PredictError(Exception):
    """A problem the user can fix; the message is one line naming it and the fix."""


@dataclass
class FinishedTrial:
    """What prediction needs to know about one finished trial.

    ``config``: the trial's resolved config (keys added to the harness since then take their defaults).
    ``n_points``: samples per clip, as the corpus cut its clips; ``padding``: where a short clip's zeros go
    (:func:`corpora.audio_cache.fit_clip`); ``float16``: the corpus read its clips from a float16
    decoded-audio cache, so new clips are rounded the same way. ``metrics``: the trial's last report.
    """

    experiment: str
    trial_id: str
    checkpoint_dir: str
    config: dict
    class_names: list[str]
    sample_rate: int
    n_points: int
    padding: str
    float16: bool
    metrics: dict

    @property
    def n_segments(self) -> int:
        """Segments per clip (:func:`training.segments.segments_per_clip`)."""
        return segments_per_clip(self.n_points, self.segment_length, self.segment_hop)

    @property
    def segment_length(self) -> int:
        """Samples per segment: the model's input length, as ``run_trial`` computes it
        (:func:`training.segments.segment_geometry`)."""
        return segment_geometry(self.config, self.n_points, self.sample_rate)[0]

    @property
    def segment_hop(self) -> int:
        """Samples between segment starts (the segment length but with ``chunk_hop_seconds``)."""
        return segment_geometry(self.config, self.n_points, self.sample_rate)[1]


def select_trial(df: pd.DataFrame, trial: str | None = None, best: bool = False) -> pd.Series:
    """The row of ``df`` (:func:`figures.read.load_experiment` with ``keep_unfinished=True``) to predict with.

    ``trial``: a trial id (or its folder name); ``best``: the finished trial with the highest
    ``best_valid_acc`` (:data:`BEST_METRIC`); neither: the experiment's only finished trial.
    Raises :class:`PredictError` naming the trials to choose from.
    """
    where = df.attrs.get("experiment", "the experiment")
    done = df[df["done"].fillna(False).astype(bool)] if "done" in df else df.iloc[:0]
    ids = ", ".join(sorted(done["trial_id"].astype(str))) if len(done) else ""
    if trial is not None:
        folders = df.attrs.get("trials")
        folder_ids = dict(zip(folders["trial_dir"], folders["trial_id"])) if folders is not None else {}
        trial_id = folder_ids.get(trial, trial)
        match = df[df["trial_id"].astype(str) == str(trial_id)] if "trial_id" in df else df.iloc[:0]
        if match.empty:
            return _fail(f"no trial {trial!r} in {where}; " + (f"its finished trials are {ids}" if ids else
                         "it has no finished trial yet (rerun main.py to finish it)"))
        row = match.iloc[0]
        if not bool(row.get("done", False)):
            status = row.get("status") or "never reported"
            return _fail(f"trial {trial_id} in {where} is not finished ({status}): rerun main.py to finish it"
                         + (f", or choose a finished trial: {ids}" if ids else ""))
        return row
    if done.empty:
        n = len(df.attrs["trials"]) if df.attrs.get("trials") is not None else len(df)
        return _fail(f"no finished trial in {where} ({n} trial(s), none tested yet): rerun the main.py command "
                     "that made it to finish them")
    if best:
        order = done.assign(_acc=done[BEST_METRIC].astype(float), _loss=done["best_valid_loss"].astype(float))
        return order.sort_values(["_acc", "_loss", "trial_id"], ascending=[False, True, True]).iloc[0]
    if len(done) > 1:
        return _fail(f"{where} has {len(done)} finished trials: give --trial ID (one of {ids}) or --best")
    return done.iloc[0]


def _fail(message: str):
    raise PredictError(message)


def load_trial(experiment: str, trial: str | None = None, best: bool = False) -> FinishedTrial:
    """The finished trial of ``experiment`` (``<storage>/<name>``, a path or a URI) that
    :func:`select_trial` picks, read from its final checkpoint."""
    try:
        df, _ = load_experiment(experiment, keep_unfinished=True)
    except FileNotFoundError:
        raise PredictError(f"no experiment at {experiment}: give --experiment <storage>/<name>, the folder "
                           "main.py wrote (<ray_root_dir or storage>/<name>)") from None
    except UnreadableExperiment as err:
        raise PredictError(f"{err}; is it a folder main.py wrote?") from None
    row = select_trial(df, trial, best)
    return read_trial(str(row["checkpoint_dir"]), str(row["trial_id"]), df.attrs.get("experiment", experiment),
                      {k: v for k, v in row.items() if not str(k).startswith("config/")})


def read_trial(checkpoint_dir: str, trial_id: str = "", experiment: str = "", metrics: dict | None = None
               ) -> FinishedTrial:
    """A :class:`FinishedTrial` from its final checkpoint folder (a path or a URI)."""
    saved = _read(checkpoint_dir, "config.json", trial_id)
    config = {**DEFAULTS, **json.loads(saved)}
    try:
        corpus = get_corpus(config["dataset_name"])
    except (KeyError, ValueError) as err:
        raise PredictError(f"trial {trial_id} was trained on dataset_name={config['dataset_name']!r}, which this "
                           f"harness does not know ({err}); predict with the code that trained it") from None
    recorded = read_checkpoint_file(checkpoint_dir, "classes.json")
    classes = json.loads(recorded) if recorded is not None else {}
    sample_rate = classes.get("sample_rate", config["sample_rate"] if corpus.has_sample_rate else None)
    if not corpus.has_sample_rate or not sample_rate:
        raise PredictError(f"trial {trial_id} was trained on the synthetic {config['dataset_name']} signals, which "
                           "have no sample rate; predict needs audio: choose a trial trained on an audio corpus")
    class_names = classes.get("class_names") or _confusion_classes(checkpoint_dir, trial_id)
    n_points, padding = clip_geometry(config, int(sample_rate))
    return FinishedTrial(experiment, trial_id, checkpoint_dir, config, [str(c) for c in class_names],
                         int(sample_rate), int(classes.get("n_points", n_points)), padding,
                         corpus.cache_keys is not None, dict(metrics or {}))


def clip_geometry(config: dict, sample_rate: int) -> tuple[int, str]:
    """``(samples per clip, padding)`` as the trial's corpus cut its clips: a corpus whose cache is keyed
    by ``clip_seconds`` (GTZAN, FMA, ESC-50, AudioMNIST, folder) cuts ``round(clip_seconds * sample_rate)``
    samples, padded by ``clip_padding``; the others (FSDD) cut ``n_points``, padded at the end.
    (``classes.json``'s ``n_points``, the length the trial really had, wins over the first.)"""
    keys = get_corpus(config["dataset_name"]).cache_keys or ()
    n_points = round(config["clip_seconds"] * sample_rate) if "clip_seconds" in keys else int(config["n_points"])
    return n_points, config["clip_padding"] if "clip_padding" in keys else "end"


def _confusion_classes(checkpoint_dir: str, trial_id: str) -> list[str]:
    """Class names from ``confusion_matrix.csv``'s header (trials written before ``classes.json``)."""
    table = read_checkpoint_file(checkpoint_dir, "confusion_matrix.csv")
    if table is None:
        raise PredictError(f"trial {trial_id}'s checkpoint {checkpoint_dir} records no class names (neither "
                           "classes.json nor confusion_matrix.csv): it is not a final checkpoint; rerun main.py")
    return list(pd.read_csv(io.BytesIO(table), index_col=0, dtype=str).columns)


def _read(checkpoint_dir: str, name: str, trial_id: str) -> bytes:
    data = read_checkpoint_file(checkpoint_dir, name)
    if data is None:
        raise PredictError(f"trial {trial_id}'s checkpoint {checkpoint_dir} has no {name}: the checkpoint is "
                           "incomplete; rerun main.py to write it again")
    return data


def build_trained(trial: FinishedTrial, device: torch.device | str = "cpu") -> Classifier:
    """The trial's model with its best weights (``best_model.pt``, read on the CPU), on ``device``, in eval mode."""
    model = _build(trial)
    weights = torch.load(io.BytesIO(_read(trial.checkpoint_dir, "best_model.pt", trial.trial_id)),
                         map_location="cpu", weights_only=True)
    model.load_state_dict(weights)
    return model.to(device).eval()


def build_initial(trial: FinishedTrial, device: torch.device | str = "cpu") -> Classifier:
    """The trial's model as it was before its first step: :func:`training.loop.seed_everything` with the trial's
    ``seed`` and ``deterministic``, then :func:`models.classifiers.build_model`, as ``run_trial`` does (the
    corpora draw their splits from generators of their own, so loading the data in between touches no global
    random state). Eval mode, on ``device``."""
    seed_everything(trial.config["seed"], trial.config["deterministic"])
    return _build(trial).to(device).eval()


def _build(trial: FinishedTrial) -> Classifier:
    return build_model(trial.config, trial.segment_length, len(trial.class_names), trial.sample_rate)

