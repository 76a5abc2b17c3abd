"""Every key a trial config may hold, with its default. Unknown keys fail loudly.

The keys below are the ones every trial reads; each front-end's and each corpus's own keys and defaults
come from its record (``Frontend.defaults`` in ``models.registry``, ``Corpus.defaults`` in
``corpora.registry``), so a new component declares its keys in its own module.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

import corpora  # noqa: F401 - fills the corpus registry
import models  # noqa: F401 - fills the front-end registry
from corpora.registry import corpus_defaults
from models.registry import frontend_defaults

COMMON = {
    # experiment
    "dataset_name": "time_frequency",  # a registered corpus (python main.py --list; corpora.registry)
    "seed": 0,                         # seeds Python, NumPy, torch and the data
    "split_seed": None,                # seeds the train/valid/test split: None = ``seed`` (a new split per repetition) | an int: one split for every repetition (the DMEL code's: 0, the paper grids')
    # model
    "model_name": "linear_net",        # the head: see models.classifiers.MODELS
    "frontend": "gaussian",            # a registered front-end (python main.py --list); its own keys are in its record (models.registry)
    "feature": None,                   # what the front-end gives the head: None = the head's (model_name) when the front-end can | spec | mel
    "tf_warmup_epochs": 0,             # epochs, the front-end's learnable parameters frozen at the start while the classifier trains (0 = off)
    "hop_length": 1,                   # samples
    "n_mels": 64,
    "compression": "log",              # log: each front-end's own log | pcen: learnable PCEN (log-space per-band s, alpha, delta, r) on its energies; not for leaf/efficientleaf (they end in sPCEN)
    "standardize": False,              # standardise each example's front-end output (zero mean, unit std)
    "specaugment_freq": 0,             # SpecAugment: widest frequency mask, bins (0 = off); training only
    "specaugment_time": 0,             # SpecAugment: widest time mask, frames (0 = off); training only
    # CutMix and SapAugment (training only; models/batch_augment.py, training/sapaugment.py; docs/configuration.md)
    "cutmix": False,                   # CutMix on the head's input: a square patch from another example of the batch, labels mixed by its area share
    "cutmix_p": 0.5,                   # CutMix: probability per example
    "cutmix_min": 0.075,               # CutMix: smallest patch side, share of the shorter spectrogram axis (DeepSpectrumLite's default)
    "cutmix_max": 0.25,                # CutMix: largest patch side (share); uniform in between, or set by SapAugment's strength
    "sapaugment": False,               # SapAugment (Hu et al. 2021): strengths from the batch's loss ranks size CutMix, SpecAugment masks, waveform augmentation
    "sapaugment_a": 0.5,               # SapAugment: a in (0, 1), strength 1 - I_r(s(1-a), s a) at loss rank r; falls around r = 1 - a (DeepSpectrumLite's sap_aug_a)
    "sapaugment_s": 10.0,              # SapAugment: s > 0, the steepness (DeepSpectrumLite's sap_aug_s)
    # transfer learning (transfer/, docs/transfer.md): a scikit-learn head on embedding rows instead of a neural model
    "classifier": None,                # None: the neural model above | svm_linear | svm_rbf | logreg | knn | mlp (transfer/heads.py)
    "embedding": "mfcc",               # what the head reads: mfcc | logmel | musicnn | torch (your model) | precomputed (the embeddings corpus)
    "embedding_model": "MSD_musicnn",  # musicnn: MSD_musicnn | MTT_musicnn | MSD_vgg | MTT_vgg; torch: the model's file (.pt2: torch.export, else TorchScript)
    "embedding_layer": "max_pool",     # the layer read (musicnn: taggram | penultimate | max_pool | mean_pool ...; the recipe's: max_pool)
    "embedding_dir": None,             # the musicnn weights (sh download_data.sh musicnn); None = <project>/data/musicnn
    "embedding_sample_rate": None,     # torch: the rate its model takes, Hz (None: the corpus's)
    "patch_seconds": None,             # patch length, s: one row per patch (None: the model's own, musicnn 3 s; mfcc/logmel the whole clip)
    "patch_hop_seconds": None,         # s between patches (None: patch_seconds, no overlap; the recipe's musicnn: 1)
    "n_mfcc": 20,                      # mfcc: coefficients (mean and std of each per patch)
    "pca_components": None,            # PCA with whitening before the head (None: none; the recipe: 128)
    "standardize_rows": False,         # a StandardScaler before the head (the recipe has none)
    "C": 1.0,                          # svm_linear / svm_rbf / logreg: inverse regularisation
    "gamma": "scale",                  # svm_rbf: kernel width (scale | auto | a number)
    "n_neighbors": 1,                  # knn (cosine distance): neighbours
    "mlp_hidden": 20,                  # mlp: hidden units
    "train_per_class": None,           # train on this many examples per class, a seeded stratified subset of the train split (nested across sizes; None: all). Neural trials too
    # training
    "optimizer_name": "sgd",           # sgd | adam | adamw
    "momentum": 0.0,                   # sgd momentum
    "weight_decay": 0.0,
    "lr_gamma": 1.0,                   # exponential learning-rate decay per epoch (1 = constant)
    "augment_waveform": False,         # random gain, coloured noise and delay on training waveforms
    "lr_model": 1e-3,
    "lr_tf": 1.0,                      # learning rate of lambda (DMEL/DSPEC's window)
    "lr_frontend": None,               # learning rate of every other learnable front-end's parameters (None: lr_model, with the head)
    "loss": "ce",                      # ce: softmax cross-entropy | bce: sigmoid + binary cross-entropy on one-hot labels (mean over classes; the DMEL code's CNN6)
    "batch_size": 128,
    "max_epochs": 100,
    "patience": 100,                   # epochs without a lower valid loss before stopping
    "checkpoint_every": None,          # epochs between resume checkpoints (None: by time only); always at the end
    "checkpoint_minutes": 5.0,         # minutes between resume checkpoints (whichever of the two comes first)
    # pretrained head (models/pretrained.py; docs/configuration.md)
    "pretrained": False,               # cnn6: start from PANNs' AudioSet CNN6 (checkpoint_path); the output layer too when there are 527 classes
    "checkpoint_path": None,           # the PANNs checkpoint, Cnn6_mAP=0.343.pth (https://zenodo.org/record/3987831)
    "checkpoint_sample_rate": 32000,   # Hz the checkpoint was trained at (PANNs: 32000; None: unknown, not checked)
    "checkpoint_rate_check": True,     # refuse a checkpoint_sample_rate other than sample_rate; False: fine-tune across rates
    "freeze_epochs": 0,                # epochs at the start in which only the head's output layer trains (the front-end too waits; 0 = off)
    "pre_epochs": 0,                   # DeepSpectrumLite's name for freeze_epochs (the larger of the two applies)
    "finetune_layers": 1.0,            # after those epochs: the share of the head's layers that trains, the last ones (1: all; DeepSpectrumLite's finetune_layer = 1 - this)
    "fine_learning_rate": None,        # after those epochs: lr_model's parameters train at this rate (None: lr_model throughout); the front-end's own rates stay
    # ImageNet CNNs on spectrogram images (model_name="imagenet": models/imagenet.py, models/images.py; docs/configuration.md)
    "cnn": "mobilenet_v2",             # any torchvision classification model (torchvision.models.get_model): resnet50, densenet121, mobilenet_v2, efficientnet_b0, vgg16, ...
    "weights_path": None,              # a local state dict of that CNN (its ImageNet weights, or yours); None: from scratch
    "image_colormap": "viridis",       # a matplotlib colour map: viridis | cividis | inferno | magma | plasma | ...
    "image_height": 224,               # pixels (bilinear, anti-aliased resize)
    "image_width": 224,                # pixels
    "image_db": True,                  # the image shows dB (the front-end's log; the same image whatever the log's base) | False: linear energies
    # device and speed
    "device": "auto",                  # auto: CUDA exactly when Ray assigned the trial a GPU | cpu | cuda
    "deterministic": True,             # deterministic kernels (bit-exact resume); False lets cuDNN pick the fastest
    "amp": False,                      # bf16 autocast for the classifier head (the front-end stays float32)
    # segments: a clip is cut into split_parts equal segments (or segments of segment_seconds)
    "split_parts": 1,
    "segment_seconds": None,           # s; when set, split_parts = clip_seconds / segment_seconds
    "train_segments": "random_crop",   # random_crop: one random segment per clip and epoch | all: every segment
    "chunk_seconds": None,             # s; instead of the two above: segments of this length (DeepSpectrumLite's chunk_size), int(seconds x rate) samples
    "chunk_hop_seconds": None,         # s between chunk starts (None: chunk_seconds, no overlap); the clip's last incomplete chunk is dropped
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
    "protocol": None,                  # split protocol; None = the corpus default (FSDD dmel, GTZAN filtered, ESC-50 dmel, AudioMNIST dmel)
    "fold": 1,                         # ESC-50 protocol "fold": the test fold, 1-5 (the other four train; 1/8 of their source recordings validate)
    "sample_rate": 8000,               # Hz (GTZAN/FMA audio is resampled to it)
    "clip_seconds": 30.0,              # GTZAN/FMA/ESC-50/AudioMNIST: every clip cropped/zero-padded to this length, s
    "clip_padding": "end",             # GTZAN/FMA/ESC-50/AudioMNIST: end: zeros after the recording, crop its end | center: the DMEL code's AudioMNIST, np.pad(x, 1 + (n - len(x)) // 2)[:n] (longer clips: their middle n samples)
    "fma_subset": "small",             # FMA: small (8 genres) | medium (16 genres)
    "cache_dir": None,                 # decoded-audio cache; None = <project>/cache
    "decode_workers": None,            # processes decoding audio into the cache; None = all cores
}


class _Defaults(Mapping):
    """``COMMON`` plus every registered front-end's and corpus's keys, read when asked (a component
    registered after this module was imported still has its keys)."""

    def _all(self) -> dict:
        return {**COMMON, **frontend_defaults(), **corpus_defaults()}

    def __getitem__(self, key: str):
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


DEFAULTS: Mapping = _Defaults()


def is_variant(key: str) -> bool:
    """``variant`` and ``variant_*`` keys are grid axes whose values are dicts of config keys set
    together (e.g. a front-end and its settings; see search_spaces.py)."""
    return key == "variant" or key.startswith("variant_")


def resolve_config(config: dict) -> dict:
    """``DEFAULTS`` updated with ``config``, whose variant dicts are merged in last (in key order);
    raises ``KeyError`` naming unknown keys."""
    merged = {k: v for k, v in config.items() if not is_variant(k)}
    for key in sorted(k for k in config if is_variant(k)):
        merged.update(config[key] or {})
    config = merged
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise KeyError(f"unknown config key(s): {', '.join(hints)}; valid keys are listed in training/config.py")
    return {**DEFAULTS, **config}
