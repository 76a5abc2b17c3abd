"""AudioMNIST (Becker et al., "AudioMNIST: Exploring explainable artificial intelligence for audio
analysis on a simple benchmark", J. Franklin Inst. 2024; https://github.com/soerenab/AudioMNIST):
30,000 spoken digits, 60 speakers x 10 digits x 50 takes, 48 kHz mono. Dataset name ``audiomnist60``
(not ``audio_mnist``, which is the Free Spoken Digit Dataset of :mod:`corpora.fsdd`).

Layout under ``data_dir`` (what :func:`install` leaves; the repository archive unpacks to it; ``data_dir``
may also be the ``data`` folder itself)::

    data/<speaker>/<digit>_<speaker>_<take>.wav     speaker 01-60, digit 0-9, take 0-49
    data/audioMNIST_meta.txt                        speakers' age, gender, accent, ...

The label is the digit. Split protocol (``config["protocol"]``): ``dmel`` (the only one; default), the
DMEL code's speaker split, 36/12/12 speakers (18,000/6,000/6,000 recordings) from
``corpora/lists/audiomnist/``; the same for every seed.

Every recording is decoded once into the shared cache (:mod:`corpora.audio_cache`): resampled to
``sample_rate`` (8 kHz in the ``audiomnist60`` grid) and brought to ``clip_seconds`` (1 s: the DMEL
code's ``n_points`` of 8,000 samples at 8 kHz; the longest recording is at most about 1 s long) by
``clip_padding``: the grid centres each recording as the DMEL code does (``center``:
:func:`corpora.audio_cache.fit_clip`); ``end`` pads after it. No recording is dropped for being short (the DMEL code keeps them all); unreadable or
empty files are skipped and counted (``info["unreadable"]``). :func:`install` downloads the repository
archive (``sh download_data.sh audiomnist``) and checks its content.
"""
from __future__ import annotations

import argparse
import os
import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm import tqdm

from corpora.audio_cache import cached_audio
from corpora.download import DownloadError, already_installed, downloaded, staged, summary, unzip
from corpora.registry import Corpus, register_corpus
from corpora.splits import Rows, Splits

URL = "https://github.com/soerenab/AudioMNIST/archive/refs/heads/master.zip"
DEFAULT_DEST = "data/audiomnist60"
PROTOCOLS = ("dmel",)
N_SPEAKERS, N_DIGITS, N_TAKES = 60, 10, 50
RECORDING = re.compile(r"^(?P<digit>\d)_(?P<speaker>\d{2})_(?P<take>\d{1,2})\.wav$")
SPLIT_LIST = Path(__file__).resolve().parent / "lists" / "audiomnist" / "dmel_speaker_split.csv"
PROJECT = Path(__file__).resolve().parent.parent
FIX = ("Rerun to resume the download, or set AUDIOMNIST_URL to a mirror or a local copy "
       "(AUDIOMNIST_URL=file:///path/to/AudioMNIST-master.zip sh download_data.sh audiomnist).")
HOW_TO_GET = (f"download it with `sh download_data.sh audiomnist` (into {DEFAULT_DEST}; AUDIOMNIST_URL overrides "
              f"the source) and pass --data_dir={DEFAULT_DEST}")


def data_folder(data_dir) -> Path:
    """The folder holding one sub-folder per speaker: ``data_dir/data``, else ``data_dir`` itself."""
    if not data_dir:
        raise FileNotFoundError(f"audiomnist60 needs data_dir: {HOW_TO_GET}")
    for folder in (Path(data_dir) / "data", Path(data_dir)):
        if folder.is_dir() and any(p.is_dir() and re.fullmatch(r"\d{2}", p.name) for p in folder.iterdir()):
            return folder
    raise FileNotFoundError(f"no AudioMNIST speaker folders (data/01, data/02, ...) in {data_dir}: {HOW_TO_GET}")


def find_recordings(folder: Path) -> list[tuple[Path, int, str, int]]:
    """``(path, digit, speaker, take)`` of every ``<speaker>/<digit>_<speaker>_<take>.wav`` under ``folder``
    whose name agrees with its folder, by speaker, digit, take."""
    found = []
    for speaker_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in speaker_dir.glob("*.wav"):
            match = RECORDING.match(path.name)
            if match and match["speaker"] == speaker_dir.name:
                found.append((path, int(match["digit"]), match["speaker"], int(match["take"])))
    return sorted(found, key=lambda r: (r[2], r[1], r[3]))


@functools.lru_cache(maxsize=1)
def speaker_split() -> dict[str, str]:
    """Speaker (``"01"``-``"60"``) -> ``train``/``valid``/``test`` of the DMEL code's split."""
    table = pd.read_csv(SPLIT_LIST, dtype=str)
    return dict(zip(table["speaker"].str.zfill(2), table["split"]))


def load_splits(config: dict) -> Splits:
    """AudioMNIST splits for ``config`` (``data_dir``, ``protocol``, ``sample_rate``, ``clip_seconds``,
    ``clip_padding``, ``cache_dir``, ``decode_workers``). ``x_*`` are :class:`Rows` of the decoded-audio cache,
    ``(n, round(clip_seconds * sample_rate))``; ``ids_*`` are file stems (``digit_speaker_take``)."""
    protocol = config["protocol"] or "dmel"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown AudioMNIST protocol {protocol!r}; choose one of {PROTOCOLS}")
    folder = data_folder(config["data_dir"])
    recordings = find_recordings(folder)
    if not recordings:
        raise FileNotFoundError(f"no AudioMNIST recordings (<speaker>/<digit>_<speaker>_<take>.wav) in {folder}: "
                                f"{HOW_TO_GET}")
    split_of = speaker_split()
    unknown = sorted({r[2] for r in recordings} - set(split_of))
    if unknown:
        raise ValueError(f"AudioMNIST speaker(s) {unknown} in {folder} are not in the split list {SPLIT_LIST}")
    sample_rate = config["sample_rate"]
    cache = cached_audio("audiomnist", [r[0] for r in recordings], folder, sample_rate,
                         round(config["clip_seconds"] * sample_rate), Path(config["cache_dir"] or PROJECT / "cache"),
                         workers=config["decode_workers"], min_fraction=0.0,
                         padding=config["clip_padding"])
    split = np.array([split_of[r[2]] for r in recordings])
    parts = [np.flatnonzero((split == name) & cache.ok) for name in ("train", "valid", "test")]
    for name, part in zip(("train", "valid", "test"), parts):
        if len(part) == 0:
            raise ValueError(f"AudioMNIST protocol {protocol!r} gives an empty {name} split for the "
                             f"{len(recordings)} recording(s) in {folder}")
    labels = torch.tensor([r[1] for r in recordings], dtype=torch.int64)
    stems = [r[0].stem for r in recordings]
    x = [Rows(cache.audio, p) for p in parts]
    y = [labels[torch.from_numpy(p)] for p in parts]
    ids = [[stems[i] for i in p] for p in parts]
    return Splits(x[0], y[0], x[1], y[1], x[2], y[2], n_classes=N_DIGITS, sample_rate=sample_rate,
                  class_names=[str(d) for d in range(N_DIGITS)], ids_train=ids[0], ids_valid=ids[1], ids_test=ids[2],
                  info={"unreadable": int((~cache.ok).sum())})


def verify(root: Path, speakers: int = N_SPEAKERS, takes: int = N_TAKES) -> list[str]:
    """Problems with ``root/data`` as AudioMNIST (empty if fine): speakers 01..``speakers``, each with
    digits 0-9 x takes 0..``takes - 1``, every file readable (a WAV header with frames); no other
    recording."""
    folder = root / "data"
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        return [f"no data/ folder (found {found[:5] or 'nothing'})"]
    present = {(r[2], r[1], r[3]): r[0] for r in find_recordings(folder)}
    expected = {(f"{s:02d}", d, t) for s in range(1, speakers + 1) for d in range(N_DIGITS) for t in range(takes)}
    problems = []
    if set(present) != expected:
        n_speakers = len({k[0] for k in present})
        problems.append(f"{len(set(present) & expected)} of the {len(expected)} recordings found "
                        f"({n_speakers} of {speakers} speakers)")
    problems += [f"missing data/{s}/{d}_{s}_{t}.wav" for s, d, t in sorted(expected - set(present))]
    problems += [f"unexpected data/{s}/{d}_{s}_{t}.wav" for s, d, t in sorted(set(present) - expected)]
    for key in tqdm(sorted(expected & set(present)), desc="checking AudioMNIST audio", unit="file", leave=False):
        try:
            if sf.info(present[key]).frames == 0:
                problems.append(f"empty {present[key].relative_to(root)}")
        except (sf.SoundFileError, RuntimeError) as err:
            problems.append(f"unreadable {present[key].relative_to(root)} ({err})")
    return problems


def _target(name: str) -> str | None:
    """``<top>/data/<speaker>/*.wav`` and ``<top>/data/audioMNIST_meta.txt`` of the repository archive,
    without the top folder."""
    parts = name.split("/")
    if len(parts) == 4 and parts[1] == "data" and RECORDING.match(parts[3]):
        return "/".join(parts[1:])
    if parts[1:] == ["data", "audioMNIST_meta.txt"]:
        return "/".join(parts[1:])
    return None


def install(dest: Path, source: str | None = None, **expected) -> Path:
    """Install AudioMNIST as ``dest/data/<speaker>/*.wav`` (and ``dest/data/audioMNIST_meta.txt``); returns
    ``dest``. Idempotent.

    ``source``: a URL (``file://`` too) or a local path of the repository zip (about 1 GB); default ``URL``.
    A remote archive downloads into ``.<dest name>.downloads`` beside ``dest`` (an interrupted download
    resumes; deleted once unpacked or found bad). Only the recordings and the speakers' metadata are
    unpacked, beside ``dest``, checked by :func:`verify` (``expected`` overrides its counts) and renamed
    into place when right.
    """
    source = source or URL
    dest = Path(dest).resolve()
    if already_installed(dest, lambda d: verify(d, **expected), "AudioMNIST", "recordings"):
        return dest
    with downloaded(source, dest, FIX) as archive, staged(dest) as staging:
        unzip(archive, staging, _target, "AudioMNIST (<top>/data/<speaker>/<digit>_<speaker>_<take>.wav)",
              "Rerun, or set AUDIOMNIST_URL to a good copy.")
        problems = verify(staging, **expected)
        if problems:
            raise DownloadError(f"the archive from {source} is not AudioMNIST: {summary(problems)}. "
                                "Nothing was installed.")
    print(f"installed AudioMNIST into {dest} (recordings verified)")
    return dest


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m corpora audiomnist``; their defaults come from ``AUDIOMNIST_DIR`` and ``AUDIOMNIST_URL`` when set."""
    parser.add_argument("--dest", default=os.environ.get("AUDIOMNIST_DIR") or DEFAULT_DEST)
    parser.add_argument("--source", default=os.environ.get("AUDIOMNIST_URL") or None, help="URL (file:// too) or local zip of the AudioMNIST "
                        "repository; default the master branch archive on GitHub")


def install_from_args(args: argparse.Namespace) -> Path:
    return install(Path(args.dest), args.source or None)


register_corpus(Corpus(
    "audiomnist60", load_splits, "AudioMNIST: 60 speakers x 500 spoken digits, 48 kHz (DMEL paper, Table 3)",
    default_dir=DEFAULT_DEST,
    download_hint="download it with `sh download_data.sh audiomnist` (AudioMNIST, 60 speakers, into "
                  "data/audiomnist60; AUDIOMNIST_URL=<url or local zip> for a mirror)",
    cache_keys=("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir"),
    download="audiomnist", download_help="AudioMNIST: 60 speakers x 500 spoken digits (the GitHub repository archive)",
    add_download_arguments=add_download_arguments, install_from_args=install_from_args, dir_env="AUDIOMNIST_DIR"))
