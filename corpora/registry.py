"""The corpus registry: one :class:`Corpus` record per ``dataset_name``, registered by its module.

    from corpora.registry import Corpus, register_corpus
    register_corpus(Corpus("esc50", load_splits, default_dir="data/esc50", ...))

:mod:`corpora` imports every corpus module, so importing it fills the registry.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from corpora.splits import Splits
from registry import Registry

CORPORA: Registry["Corpus"] = Registry("dataset_name", "a corpus registers itself with corpora.registry.register_corpus; "
                                                       "see docs/extending.md")


@dataclass(frozen=True)
class Corpus:
    """What the harness needs to know about one corpus.

    Attributes:
        name: the ``dataset_name`` config value.
        load_splits: ``config -> Splits``: train/valid/test waveforms of one resolved config.
        description: one line for ``main.py --list``.
        reads_disk: the corpus is read from ``data_dir`` (``False``: generated, e.g. the synthetic pulses).
        default_dir: where ``download_data.sh`` puts it (``None``: ``--data_dir`` must be given).
        download_hint: how to get it, for the "no dataset at ..." message.
        cache_keys: config keys that decide which decoded-audio cache a config reads (``None``: no cache).
        download: the name of ``sh download_data.sh <name>`` / ``python -m corpora <name>`` (``None``: none).
        download_help: one line for that command's help.
        add_download_arguments: adds the download's options to an ``argparse`` parser.
        install_from_args: installs from the parsed options; returns the installed folder.
        has_sample_rate: its waveforms have a sample rate (``False`` for the rate-less synthetic signals).
        dir_env: the variable ``run_experiments.sh`` reads its folder from (``None``: ``default_dir`` only).
        defaults: config keys only this corpus reads, with their defaults (merged into
            ``training.config.DEFAULTS``).
        problems: ``config -> list[str]``: one line per value of its own keys it cannot take, checked before
            any trial starts (``tuning/validate.py``).
    """

    name: str
    load_splits: Callable[[dict], Splits]
    description: str
    reads_disk: bool = True
    default_dir: str | None = None
    download_hint: str | None = None
    cache_keys: tuple[str, ...] | None = None
    download: str | None = None
    download_help: str | None = None
    add_download_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    install_from_args: Callable[[argparse.Namespace], Path] | None = None
    has_sample_rate: bool = True
    dir_env: str | None = None
    defaults: Mapping[str, object] = field(default_factory=dict)
    problems: Callable[[dict], list[str]] | None = None


def register_corpus(corpus: Corpus) -> Corpus:
    """Add ``corpus`` to :data:`CORPORA` (a name registered twice raises ``ValueError``)."""
    return CORPORA.register(corpus.name, corpus)


def list_corpora() -> tuple[str, ...]:
    """Every registered ``dataset_name``."""
    return CORPORA.names()


def get_corpus(name: str) -> Corpus:
    """The record of ``dataset_name`` ``name`` (an unknown name lists the known ones)."""
    return CORPORA.get(name)


def corpus_defaults() -> dict[str, object]:
    """Every corpus's own config keys and defaults (the first declaration of a shared key wins)."""
    out: dict[str, object] = {}
    for corpus in CORPORA.values():
        for key, value in corpus.defaults.items():
            out.setdefault(key, value)
    return out


@dataclass(frozen=True)
class Download:
    """A download that is not a corpus (pretrained weights): what ``python -m corpora <name>`` reads of it,
    as named in :class:`Corpus` (``name`` is the download's name)."""

    name: str
    download_help: str
    add_download_arguments: Callable[[argparse.ArgumentParser], None]
    install_from_args: Callable[[argparse.Namespace], Path]


DOWNLOADS: Registry[Download] = Registry("download", "a download registers itself with "
                                                     "corpora.registry.register_download")


def register_download(record: Download) -> Download:
    """Add ``record`` to :data:`DOWNLOADS`. Its module is imported by ``corpora/__main__.py`` (:mod:`corpora`
    imports the corpus modules only)."""
    return DOWNLOADS.register(record.name, record)


def downloads() -> dict[str, Corpus | Download]:
    """``download name -> record`` for every corpus that can be downloaded, then every other download."""
    return {**{c.download: c for c in CORPORA.values() if c.download}, **dict(DOWNLOADS.items())}
