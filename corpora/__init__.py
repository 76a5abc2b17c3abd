"""Dataset loaders and generators. Every corpus exposes ``load_splits(config) -> Splits``; every
downloadable one owns ``install`` and its command-line options (``python -m corpora <dataset>``)."""
from __future__ import annotations

import importlib

from corpora.splits import Splits

# dataset_name -> module holding load_splits(config)
CORPORA = {"time_frequency": "corpora.synthetic", "audio_mnist": "corpora.fsdd", "gtzan": "corpora.gtzan",
           "fma": "corpora.fma", "esc50": "corpora.esc50", "audiomnist60": "corpora.audiomnist"}
# corpora read from disk -> where download_data.sh puts them, and how to get them
DEFAULT_DATA_DIRS = {"audio_mnist": "data/audio-mnist", "gtzan": "data/gtzan", "fma": "data/fma",
                     "esc50": "data/esc50", "audiomnist60": "data/audiomnist60"}
DOWNLOAD_HINTS = {
    "audio_mnist": "download it with `sh download_data.sh` (FSDD into data/audio-mnist)",
    "gtzan": "download it with `sh download_data.sh gtzan` (into data/gtzan; GTZAN_URL=<url or local "
             "genres.tar.gz> for a mirror)",
    "fma": "download it with `sh download_data.sh fma` (fma_metadata + fma_small into data/fma; FMA_URL=<base url "
           "or local folder> for a mirror)",
    "esc50": "download it with `sh download_data.sh esc50` (into data/esc50; ESC50_URL=<url or local zip> for a "
             "mirror)",
    "audiomnist60": "download it with `sh download_data.sh audiomnist` (AudioMNIST, 60 speakers, into "
                    "data/audiomnist60; AUDIOMNIST_URL=<url or local zip> for a mirror)",
}
# keys that decide which decoded-audio cache a config reads (corpora decoded into a cache)
CACHE_KEYS = {"gtzan": ("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir"),
              "fma": ("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir", "fma_subset"),
              "esc50": ("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir"),
              "audiomnist60": ("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir")}
# download name (python -m corpora <name>, sh download_data.sh <name>) -> (module owning install, help)
DOWNLOADS = {
    "fsdd": ("corpora.fsdd", "Free Spoken Digit Dataset"),
    "gtzan": ("corpora.gtzan", "GTZAN genre collection (genres.tar.gz)"),
    "fma": ("corpora.fma", "Free Music Archive: fma_metadata and the audio of each subset"),
    "esc50": ("corpora.esc50", "ESC-50 environmental sounds (the GitHub repository archive)"),
    "audiomnist": ("corpora.audiomnist", "AudioMNIST: 60 speakers x 500 spoken digits (the GitHub repository "
                                         "archive)"),
}


def load_splits(config: dict) -> Splits:
    """Train/valid/test data for ``config["dataset_name"]``."""
    name = config["dataset_name"]
    if name not in CORPORA:
        raise ValueError(f"unknown dataset_name {name!r}; choose one of {sorted(CORPORA)}")
    return importlib.import_module(CORPORA[name]).load_splits(config)


def prepare(configs: list[dict]) -> int:
    """Build the decoded-audio cache of every distinct data setting in ``configs`` now, in this
    process (all cores, with a progress bar), so trials only open it. Returns the number of
    settings prepared; corpora without a cache are skipped."""
    seen = set()
    for config in configs:
        keys = CACHE_KEYS.get(config["dataset_name"])
        if keys is None:
            continue
        setting = (config["dataset_name"], *(str(config[k]) for k in keys))
        if setting not in seen:
            seen.add(setting)
            load_splits(config)
    return len(seen)
