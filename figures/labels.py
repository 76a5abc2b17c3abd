"""Front-end labels and initial windows of a table's trials, from the front-end registry, and the name of
the data they read.

A row of :func:`figures.read.load_experiment` holds only the ``config/<key>`` columns its experiment set;
:func:`trial_config` turns it into a config dict with the ``training.config.DEFAULTS`` filled in for the
rest, which is what a front-end's record reads (``models.registry``: its ``label`` and
``initial_window_ms``). A front-end the registry does not know (an experiment run with code that had one)
is labelled by its name and has no initial window (NaN): the figures go on.
"""
from __future__ import annotations

import functools
import math
from typing import Mapping

import numpy as np
import pandas as pd

from models.registry import frontend_label as registry_label
from models.registry import get_frontend
from registry import UnknownComponent
from training.config import DEFAULTS


def is_unset(value) -> bool:
    """A cell the experiment never set: absent, ``None`` or NaN (a list or dict value is set)."""
    return value is None or (np.ndim(value) == 0 and not isinstance(value, (str, dict)) and bool(pd.isna(value)))


def trial_config(row: pd.Series, defaults: Mapping | None = None) -> dict:
    """One trial's config: its ``config/<key>`` cells (``config/a/b`` columns of nested values skipped) over
    ``defaults`` (``training.config.DEFAULTS``; pass ``dict(DEFAULTS)`` once for many rows) where unset."""
    config = dict(DEFAULTS if defaults is None else defaults)
    for column, value in row.items():
        if isinstance(column, str) and column.startswith("config/") and "/" not in column[7:] and not is_unset(value):
            config[column[7:]] = value
    return config


@functools.cache
def _say_unknown(name: str) -> None:
    print(f"figures: the front-end {name!r} is not registered (models.registry); labelled by its name, "
          "without an initial window")


def _label(config: dict) -> str:
    try:
        return registry_label(config)
    except UnknownComponent:
        _say_unknown(config["frontend"])
        return str(config["frontend"]) + (" + PCEN" if config.get("compression") == "pcen" else "")


def _window_ms(config: dict) -> float:
    try:
        record = get_frontend(config["frontend"])
    except UnknownComponent:
        _say_unknown(config["frontend"])
        return math.nan
    return round(record.initial_window_ms(config, config["sample_rate"]), 1)


def frontend_label(row: pd.Series) -> str:
    """A short name for the front-end of one trial (``config/*`` columns): its record's label
    (:func:`models.registry.frontend_label`)."""
    return _label(trial_config(row))


def initial_window_ms(row: pd.Series) -> float:
    """Initial window length in ms to one decimal (its record's ``initial_window_ms`` at the trial's
    ``sample_rate``): 6 lambda for DMEL and DSTFT, n_fft for Ada-STFT, the Hann length for the fixed and
    trainable mel, the filter length for LEAF, EfficientLEAF and SincNet (a key the experiment never set:
    its default). NaN for a front-end the registry does not know."""
    return _window_ms(trial_config(row))


def with_frontends(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus ``frontend`` (label) and ``init_ms`` columns."""
    df = df.copy()
    defaults = dict(DEFAULTS)
    configs = [trial_config(row, defaults) for _, row in df.iterrows()]
    df["frontend"] = pd.Series([_label(c) for c in configs], index=df.index, dtype=object)
    df["init_ms"] = pd.Series([_window_ms(c) for c in configs], index=df.index, dtype=float)
    return df


def data_caption(df: pd.DataFrame, usual: str, caption: str) -> str:
    """How a table names its data: ``caption`` (the grid's own corpus, e.g. ``"FSDD (protocol dmel)"``) when
    every trial of ``df`` read the corpus ``usual`` (its ``dataset_name``); else the corpora they did read,
    a ``folder`` with its ``data_dir`` (a grid run on other data with ``--set dataset_name=...``):
    ``"folder /data/my_audio"``."""
    names = (df["config/dataset_name"] if "config/dataset_name" in df else pd.Series(index=df.index, dtype=object))
    names = names.where(~names.map(is_unset), DEFAULTS["dataset_name"])
    if (names == usual).all():
        return caption
    dirs = df["config/data_dir"] if "config/data_dir" in df else pd.Series(index=df.index, dtype=object)
    read = {f"{name} {folder}" if name == "folder" and not is_unset(folder) else str(name)
            for name, folder in zip(names, dirs)}
    return ", ".join(sorted(read))
