"""What ``main.py`` checks before Ray starts: every value it can judge without training.

Each problem is one line naming the flag or key, the value given and the fix (the valid choices or the
range), so that a command is refused (exit 2) before any trial starts and before anything is written:

* :func:`check_arguments`: the command line's numbers (epochs, resources, seeds, timeouts).
* :func:`check_space`: the distributions of a searched space (bounds in order, categories given).
* :func:`check_configs`: every resolved trial config (:func:`tuning.spaces.expand_grid`): the type and
  range of each key of ``training/config.py``, the names of enumerated keys (from the registries where
  they live: ``corpora.CORPORA``, ``models.classifiers.MODELS``, ...), and what the keys must agree on
  (the initial window between its floor and ceiling, the split sizes, a corpus's own rate and folds, a
  pretrained checkpoint's file and its fit: :func:`models.pretrained.config_problems`).
* :func:`check_storage`: the local folder the experiments go to can be created and written.

The checks only read; nothing is created. What needs the data or the cluster (a folder holding no
recordings, a GPU that torch cannot use) still fails at trial time, with one line per cause
(``main.py``'s summary of errored trials).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import sys
import urllib.parse
from pathlib import Path

from ray.tune.search.sample import Categorical, Domain

from corpora import CORPORA, get_corpus
from corpora.audio_cache import PADDINGS
from corpora.fma import SUBSETS as FMA_SUBSETS
from corpora.splits import random_split_indices
from corpora.synthetic import NOISE_KINDS
from models.classifiers import COMPRESSIONS, MODELS
from models.frontends import LAMBD_PARAMS
from models.functional import WINDOW_MODES
from models.registry import FEATURES, FRONTENDS, get_frontend
from models.leaf import LEAF_COMPRESSIONS
from models.pretrained import config_problems
from models.varying_stft import VARIATIONS
from training.config import DEFAULTS
from training.loop import LOSSES, OPTIMIZERS
from training.segments import TRAIN_SEGMENTS, segment_geometry
from training.trial import DEVICES
from transfer.features import EMBEDDERS
from transfer.features import problems as transfer_problems
from transfer.heads import HEADS
from tuning.storage import is_uri
from tuning.tracking import uri_problems


@dataclasses.dataclass(frozen=True)
class Range:
    """The numbers a key accepts: ``low``/``high`` bounds (``None``: unbounded; ``open_*``: the bound
    itself excluded), ``integer`` for counts, ``optional`` when ``None`` is a value of its own."""
    low: float | None = None
    high: float | None = None
    integer: bool = False
    open_low: bool = False
    open_high: bool = False
    optional: bool = False

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            return False
        return (math.isfinite(value)
                and (self.low is None or (value > self.low if self.open_low else value >= self.low))
                and (self.high is None or (value < self.high if self.open_high else value <= self.high)))

    def describe(self) -> str:
        """``"an integer >= 1"``, ``"a number in [0, 1)"``, ``"None or a number > 0"``, ..."""
        kind = "an integer" if self.integer else "a number"
        low, high = ("" if bound is None else f"{bound:.12g}" for bound in (self.low, self.high))
        if self.low is not None and self.high is not None:
            text = f"{kind} in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.open_low else '>='} {low}"
        else:
            text = kind
        return f"None or {text}" if self.optional else text


POSITIVE, NON_NEGATIVE = Range(0, open_low=True), Range(0)
COUNT, NON_NEGATIVE_COUNT = Range(1, integer=True), Range(0, integer=True)
MAYBE_POSITIVE, MAYBE_COUNT = Range(0, open_low=True, optional=True), Range(1, integer=True, optional=True)
SEED = Range(0, 2**32, integer=True, open_high=True)  # what numpy's global seeding accepts

# numeric keys of training/config.py -> the values they accept (a learning rate of 0 is a trial that cannot
# learn: tests/test_search.py's ASHA test runs one; 0 minutes between checkpoints is one every epoch)
RANGES = {
    # experiment, window
    "seed": SEED, "split_seed": dataclasses.replace(SEED, optional=True), "init_lambd": POSITIVE,
    "init_window_ms": MAYBE_POSITIVE, "min_lambd": POSITIVE, "min_window_ms": MAYBE_POSITIVE,
    "max_window_ms": MAYBE_POSITIVE, "dstft_max_window_ms": MAYBE_POSITIVE, "tf_warmup_epochs": NON_NEGATIVE_COUNT,
    # front-ends
    "hop_length": COUNT, "n_mels": COUNT, "fixed_win_ms": POSITIVE, "top_db": MAYBE_POSITIVE, "n_fft": COUNT,
    "sinc_window_ms": POSITIVE, "leaf_window_ms": POSITIVE, "efficientleaf_groups": COUNT,
    "efficientleaf_stride_factor": POSITIVE, "specaugment_freq": NON_NEGATIVE_COUNT,
    "specaugment_time": NON_NEGATIVE_COUNT,
    # CutMix, SapAugment
    "cutmix_p": Range(0, 1), "cutmix_min": Range(0, 1), "cutmix_max": Range(0, 1),
    "sapaugment_a": Range(0, 1, open_low=True, open_high=True), "sapaugment_s": POSITIVE,
    # training
    "momentum": Range(0, 1, open_high=True), "weight_decay": NON_NEGATIVE, "lr_gamma": NON_NEGATIVE,
    "lr_model": NON_NEGATIVE, "lr_tf": NON_NEGATIVE, "lr_frontend": Range(0, optional=True), "batch_size": COUNT, "max_epochs": COUNT, "patience": COUNT,
    "checkpoint_every": MAYBE_COUNT, "checkpoint_minutes": Range(0, optional=True),
    # segments, synthetic data, audio data
    "split_parts": COUNT, "segment_seconds": MAYBE_POSITIVE, "n_samples": COUNT, "n_points": COUNT,
    "sigma_ref": POSITIVE, "noise_std": NON_NEGATIVE, "t_center_max_offset": NON_NEGATIVE,
    "f_center_max_offset": NON_NEGATIVE, "fold": COUNT, "sample_rate": COUNT, "clip_seconds": POSITIVE,
    "decode_workers": MAYBE_COUNT,
    # pretrained head
    "checkpoint_sample_rate": MAYBE_COUNT, "freeze_epochs": NON_NEGATIVE_COUNT,
    # freezing then fine-tuning, ImageNet CNNs on images, chunks
    "pre_epochs": NON_NEGATIVE_COUNT, "finetune_layers": Range(0, 1), "fine_learning_rate": Range(0, optional=True),
    "image_height": COUNT, "image_width": COUNT, "chunk_seconds": MAYBE_POSITIVE, "chunk_hop_seconds": MAYBE_POSITIVE,
    # transfer learning
    "n_mfcc": COUNT, "pca_components": MAYBE_COUNT, "C": POSITIVE, "n_neighbors": COUNT, "mlp_hidden": COUNT,
    "train_per_class": MAYBE_COUNT, "patch_seconds": MAYBE_POSITIVE, "patch_hop_seconds": MAYBE_POSITIVE,
    "embedding_sample_rate": MAYBE_COUNT,
}
# enumerated keys -> their names, from the registries that act on them
CHOICES = {
    "dataset_name": CORPORA, "model_name": tuple(sorted(MODELS)), "frontend": FRONTENDS,  # the registries, read live
    "feature": (None, *FEATURES),
    "optimizer_name": OPTIMIZERS, "window_mode": WINDOW_MODES, "loss": LOSSES, "lambd_param": LAMBD_PARAMS,
    "compression": COMPRESSIONS, "leaf_compression": LEAF_COMPRESSIONS, "dstft_variation": VARIATIONS,
    "noise_kind": NOISE_KINDS, "train_segments": TRAIN_SEGMENTS, "device": DEVICES, "fma_subset": FMA_SUBSETS,
    "clip_padding": PADDINGS, "classifier": (None, *HEADS), "embedding": (*EMBEDDERS.names(), "precomputed"),
}
FLAGS = tuple(k for k, v in DEFAULTS.items() if isinstance(v, bool))  # True or False
# keys checked by what they name, not by a range or a list: protocol (the corpus's own list), stft_window
# (scipy's window names), data_dir (main.py checks the folder), cache_dir (any folder; created when needed)
# embedding_model/embedding_layer/embedding_dir/gamma (the embedder's and transfer's own checks: transfer/features.py)
OTHER_KEYS = ("protocol", "stft_window", "data_dir", "cache_dir", "embedding_model", "embedding_layer", "embedding_dir",
              "gamma")
OTHER_KEYS += ("checkpoint_path",)  # pretrained=True: the file exists, loads and fits (models.pretrained.config_problems)
OTHER_KEYS += ("cnn", "image_colormap", "weights_path")  # torchvision's and matplotlib's names; the file fits (_image_problems)


def check_configs(configs: list[dict]) -> list[str]:
    """Every distinct problem of the resolved trial configs ``configs``, one line each, in order of first
    appearance (a bad value on a grid axis is named once, not once per trial)."""
    return list(dict.fromkeys(line for config in configs for line in check_config(config)))


def check_config(config: dict) -> list[str]:
    """The problems of one resolved trial config (every key of ``training/config.py`` present)."""
    out = []
    for key, value in config.items():
        if key in CHOICES and value not in CHOICES[key]:
            out.append(_not_one_of(key, value, CHOICES[key]))
        elif key in RANGES and not RANGES[key].accepts(value):
            out.append(f"{key}={value!r}: must be {RANGES[key].describe()}")
        elif key in FLAGS and not isinstance(value, bool):
            out.append(f"{key}={value!r}: must be True or False")
    if out:  # the checks below read these values
        return out
    try:
        _segment_samples(config)
    except ValueError as err:
        return [str(err)]
    if config["classifier"] is not None:  # a scikit-learn head: no front-end; its embedder's checks instead
        return _corpus_problems(config) + transfer_problems(config)
    return [line for check in (_corpus_problems, _frontend_problems, _pretrained_problems, _cutmix_problems,
                               _finetune_problems, _image_problems)
            for line in check(config)]


def record_checked_keys() -> set[str]:
    """Config keys that a corpus record declares with its own ``problems`` check."""
    return {key for corpus in CORPORA.values() if corpus.problems for key in corpus.defaults}


def _not_one_of(key: str, value, choices) -> str:
    choices = tuple(choices)
    close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{key}={value!r}: must be one of {', '.join(map(str, choices))}{hint}"


def _sample_rate(config: dict) -> int | None:
    """Hz of the config's audio; ``None`` for generated data (the corpora not read from disk)."""
    return config["sample_rate"] if get_corpus(config["dataset_name"]).has_sample_rate else None


def _segment_samples(config: dict) -> int:
    """Samples of the model's input: a clip's segment (``clip_seconds`` for the cached corpora, else
    ``n_points``; :func:`training.segments.segment_geometry`, whose ``ValueError`` names a bad one)."""
    if "clip_seconds" in (get_corpus(config["dataset_name"]).cache_keys or ()):
        clip = round(config["clip_seconds"] * config["sample_rate"])
    else:
        clip = config["n_points"]
    return segment_geometry(config, clip, _sample_rate(config))[0]


def _corpus_problems(config: dict) -> list[str]:
    """What the corpus module itself fixes: its protocols (``PROTOCOLS``), its one recording rate
    (``SAMPLE_RATE``, FSDD), its folds (``N_FOLDS``, ESC-50), and, for generated data, three non-empty
    splits (``SPLIT_FRACTIONS`` of ``n_samples``)."""
    name = config["dataset_name"]
    record = get_corpus(name)
    corpus = sys.modules[record.load_splits.__module__]
    out = record.problems(config) if record.problems else []
    protocols = getattr(corpus, "PROTOCOLS", None)
    if protocols is not None and config["protocol"] is not None and config["protocol"] not in protocols:
        out.append(_not_one_of("protocol", config["protocol"], protocols) + f" for {name} (or None: its default)")
    rate = getattr(corpus, "SAMPLE_RATE", None)
    if rate is not None and config["sample_rate"] != rate:
        out.append(f"sample_rate={config['sample_rate']!r}: {name} is recorded at {rate} Hz; set sample_rate={rate}")
    folds = getattr(corpus, "N_FOLDS", None)
    if folds is not None and not 1 <= config["fold"] <= folds:
        out.append(f"fold={config['fold']!r}: {name} has folds 1 to {folds}")
    fractions = getattr(corpus, "SPLIT_FRACTIONS", None)
    if fractions is not None and not _splits_filled(config["n_samples"], fractions):
        least = next(n for n in range(1, 1000) if _splits_filled(n, fractions))
        out.append(f"n_samples={config['n_samples']!r}: leaves a train, valid or test split of {name} empty; "
                   f"use at least {least}")
    return out


def _splits_filled(n: int, fractions: tuple[float, float, float]) -> bool:
    return all(len(part) for part in random_split_indices(n, fractions, 0))


def _frontend_problems(config: dict) -> list[str]:
    """What the front-end's record refuses (``Frontend.problems``): its window between floor and ceiling,
    EfficientLEAF's groups, Ada-STFT's window names, ...; and a front-end that needs a sample rate on
    data without one."""
    record, rate = get_frontend(config["frontend"]), _sample_rate(config)
    if record.needs_sample_rate and rate is None:
        return [f"frontend={record.name!r}: {config['dataset_name']} has no sample rate, and this front-end's "
                "filters are in Hz or ms; use gaussian (DSPEC) or a corpus of audio"]
    return record.problems(config, rate, _segment_samples(config)) if record.problems else []


def _pretrained_problems(config: dict) -> list[str]:
    """``pretrained=True``: a cnn6 with a ``checkpoint_path`` that exists, loads and fits (mel count, sample
    rate: :func:`models.pretrained.config_problems`)."""
    return config_problems(config, _sample_rate(config))


def _cutmix_problems(config: dict) -> list[str]:
    """CutMix's smallest patch no larger than its largest."""
    if config["cutmix"] and config["cutmix_min"] > config["cutmix_max"]:
        return [f"cutmix_min={config['cutmix_min']!r}: above cutmix_max={config['cutmix_max']!r}; "
                "give the smaller patch share first"]
    return []


def _finetune_problems(config: dict) -> list[str]:
    """``pre_epochs`` and ``freeze_epochs`` are one setting under two names: both set, they must agree."""
    pre, freeze = config["pre_epochs"], config["freeze_epochs"]
    if pre and freeze and pre != freeze:
        return [f"pre_epochs={pre} and freeze_epochs={freeze} name the same frozen epochs; set one of them"]
    return []


def _image_problems(config: dict) -> list[str]:
    """``model_name="imagenet"``: a torchvision CNN name, a matplotlib colour map, a ``weights_path`` that exists
    and fits the CNN (read without loading its tensors), frozen epochs only with weights, and linear images
    (``image_db=False``) only from a log front-end."""
    if config["model_name"] != "imagenet":
        return []
    from models.imagenet import check_cnn_name, fit_problem, read_state_dict
    from models.images import colormap_table

    out = [line for line in [check_cnn_name(config["cnn"])] if line]
    try:
        colormap_table(config["image_colormap"])
    except ValueError as err:
        out.append(str(err))
    if config["weights_path"] and not out:
        try:
            problem = fit_problem(config["cnn"], read_state_dict(Path(config["weights_path"])))
        except ValueError as err:
            problem = str(err)
        if problem:
            out.append(problem if problem.startswith("weights_path=") else f"weights_path={config['weights_path']!r}: {problem}")
    if not config["weights_path"] and (config["pre_epochs"] or config["freeze_epochs"]):
        out.append(f"pre_epochs={config['pre_epochs'] or config['freeze_epochs']}: would freeze a CNN without weights; "
                   "set weights_path, or pre_epochs=0 to train it from scratch")
    record = get_frontend(config["frontend"])
    if not config["image_db"] and (config["compression"] != "log" or record.own_compression):
        out.append("image_db=False shows linear energies, the exp of the front-end's log: it needs compression='log' "
                   "and a front-end without its own compression")
    return out


def check_space(space: dict) -> list[str]:
    """The distributions of a param space: each numeric one with its lower bound below its upper bound, each
    ``choice`` with categories (Ray accepts ``uniform(5, 1)`` and ``choice([])`` and fails later)."""
    out = []
    for key, domain in space.items():
        if not isinstance(domain, Domain):
            continue
        if isinstance(domain, Categorical):
            if not domain.categories:
                out.append(f"{key}=choice([]): give choice() at least one value")
        elif not domain.lower < domain.upper:
            out.append(f"{key}: a distribution from {domain.lower:g} to {domain.upper:g}; its lower bound must be "
                       "below its upper bound: give the smaller one first")
    return out


def check_arguments(args) -> list[str]:
    """The command line's own numbers (``main.parse_args``' namespace): epochs, resources, the searcher's
    seed and the cluster timeout. A trial needs at least some CPU; a GPU share above 1 is whole GPUs (Ray's
    rule); without ``--address`` a trial asking for more CPUs than the local Ray has would wait forever."""
    rules = {"max_epochs": COUNT, "cpus_per_trial": POSITIVE, "gpus_per_trial": Range(0, optional=True),
             "max_concurrent": MAYBE_COUNT, "num_cpus": MAYBE_COUNT, "max_failures": Range(-1, integer=True),
             "connect_timeout": POSITIVE, "search_seed": SEED}
    out = [f"--{flag}={getattr(args, flag)!r}: must be {rule.describe()}"
           + (" (-1: retry forever)" if flag == "max_failures" else "")
           for flag, rule in rules.items() if not rule.accepts(getattr(args, flag))]
    if out:
        return out
    gpus = args.gpus_per_trial
    if gpus is not None and gpus > 1 and gpus != int(gpus):
        out.append(f"--gpus_per_trial={gpus!r}: a share above 1 must be whole GPUs (Ray's rule); use {int(gpus)} "
                   f"or {int(gpus) + 1}, or a fraction below 1")
    out += uri_problems(getattr(args, "mlflow", None))  # --mlflow's store (tuning/tracking.py)
    local_cpus = args.num_cpus or os.cpu_count() or 1
    if not args.address and args.cpus_per_trial > local_cpus:
        out.append(f"--cpus_per_trial={args.cpus_per_trial!r}: the local Ray has {local_cpus} CPUs "
                   f"({'--num_cpus' if args.num_cpus else 'this machine'}), so no trial would ever start; "
                   f"use at most {local_cpus}")
    return out


def check_storage(root: str, experiments: list[str], flag: str) -> list[str]:
    """Whether the experiments ``<root>/<name>`` can be written, for a local ``root`` (a path or a
    ``file://`` URI; object stores are left to Tune): each existing folder on the way must be a writable
    folder, and the nearest existing one is where the rest would be created. Nothing is created."""
    if is_uri(root) and not root.startswith("file://"):
        return []
    base = Path(urllib.parse.urlsplit(root).path if is_uri(root) else root)
    out = []
    for name in experiments:
        target = base / name
        existing = next(p for p in (target, *target.parents) if p.exists())
        if not existing.is_dir():
            out.append(f"{flag}={root}: {existing} is a file, not a folder; choose another location")
        elif not os.access(existing, os.W_OK | os.X_OK):
            out.append(f"{flag}={root}: cannot write in {existing} (permission or a read-only filesystem); "
                       "choose a folder you can write to")
    return list(dict.fromkeys(out))
