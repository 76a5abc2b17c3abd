"""GTZAN genre collection (Tzanetakis & Cook 2002): 1,000 excerpts of 30 s, 100 in each of 10 genres.

Layout ``<data_dir>/genres/<genre>/<genre>.NNNNN.{wav,au}`` (the Hugging Face re-host has .wav,
the original Marsyas tarball .au); ``data_dir`` may also be the ``genres`` folder itself. Clips are
matched by stem (``genre.NNNNN``); the label is the genre's index in ``GENRES``.

Split protocols (``config["protocol"]``):

* ``filtered`` (default): the artist-disjoint "fault-filtered" split of Kereliuk, Sturm & Larsen,
  "Deep Learning and Music Adversaries" (2015), 443/197/290 clips, from the lists shipped in
  ``corpora/lists/gtzan/``; the other 70 clips are unused.
* ``random``: a seeded 70/10/20 split of every clip found.

Every clip is decoded once into the shared cache (:mod:`corpora.audio_cache`) at
``config["sample_rate"]`` Hz and cropped or zero-padded to ``clip_seconds``. Bad files are skipped
and counted in ``info["unreadable"]`` (``jazz.00054.wav`` is unreadable in common copies, and it is
in the training list); listed clips not on disk are warned about and counted in ``info["missing"]``.

:func:`install` downloads and unpacks the collection (``sh download_data.sh gtzan``).
"""
from __future__ import annotations

import argparse
import os
import gzip
import re
import tarfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from corpora.audio_cache import cached_audio
from corpora.download import DownloadError, already_installed, downloaded, staged, summary
from corpora.registry import Corpus, register_corpus
from corpora.splits import Rows, Splits, random_split_indices, split_seed

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
CLIPS_PER_GENRE = 100
CLIP = re.compile(r"^((?P<genre>[a-z]+)\.\d{5})\.(?:wav|au)$")
PROTOCOLS = ("filtered", "random")
SPLIT_NAMES = ("train", "valid", "test")
LIST_DIR = Path(__file__).resolve().parent / "lists" / "gtzan"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Hugging Face re-host of the Marsyas tarball (the original opihi.cs.uvic.ca host is gone)
URL = "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz"
DEFAULT_DEST = "data/gtzan"
FIX = ("Rerun to resume the download, or set GTZAN_URL to a mirror or a local copy "
       "(GTZAN_URL=file:///path/to/genres.tar.gz sh download_data.sh gtzan).")
HOW_TO_GET = (f"download it with `sh download_data.sh gtzan` (into {DEFAULT_DEST}; GTZAN_URL overrides the "
              f"source) and pass --data_dir={DEFAULT_DEST}")


def genres_folder(data_dir) -> Path:
    """The folder holding one sub-folder per genre: ``data_dir/genres``, else ``data_dir`` itself."""
    if not data_dir:
        raise FileNotFoundError(f"GTZAN needs data_dir: {HOW_TO_GET}")
    for folder in (Path(data_dir) / "genres", Path(data_dir)):
        if any((folder / genre).is_dir() for genre in GENRES):
            return folder
    raise FileNotFoundError(f"no GTZAN genre folders (genres/blues, genres/classical, ...) in {data_dir}: {HOW_TO_GET}")


def find_clips(folder: Path) -> dict[str, Path]:
    """``stem -> path`` of every ``<genre>/<genre>.NNNNN.{wav,au}`` under ``folder``, in ``GENRES``
    order, then by name (of two files with one stem, the first by name)."""
    clips = {}
    for genre in GENRES:
        if not (folder / genre).is_dir():
            continue
        for path in sorted((folder / genre).iterdir()):
            match = CLIP.match(path.name)
            if match and match["genre"] == genre:
                clips.setdefault(match[1], path)
    return clips


def read_list(split: str) -> list[str]:
    """Stems (``genre.NNNNN``) of the fault-filtered ``split`` (train, valid or test), in list order."""
    return [Path(line).stem for line in (LIST_DIR / f"{split}_filtered.txt").read_text().split()]


def split_rows(protocol: str, stems: list[str], seed: int) -> tuple[list[np.ndarray], list[str]]:
    """Rows of train/valid/test under ``protocol`` (indices into ``stems``) and the listed stems not in ``stems``."""
    if protocol == "random":
        return [np.sort(p) for p in random_split_indices(len(stems), (0.7, 0.1, 0.2), seed)], []
    row = {stem: i for i, stem in enumerate(stems)}
    listed = [read_list(name) for name in SPLIT_NAMES]
    rows = [np.array([row[s] for s in names if s in row], dtype=np.int64) for names in listed]
    return rows, [s for names in listed for s in names if s not in row]


def load_splits(config: dict) -> Splits:
    """GTZAN splits for ``config`` (``data_dir``, ``protocol``, ``seed``, ``sample_rate``, ``clip_seconds``,
    ``cache_dir``, ``decode_workers``). ``x_*`` are :class:`Rows` of the decoded-audio cache,
    ``(n, round(clip_seconds * sample_rate))``."""
    protocol = config["protocol"] or "filtered"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown GTZAN protocol {protocol!r}; choose one of {PROTOCOLS}")
    folder = genres_folder(config["data_dir"])
    clips = find_clips(folder)
    if not clips:
        raise FileNotFoundError(f"no GTZAN clips (<genre>/<genre>.NNNNN.wav or .au) in {folder}: {HOW_TO_GET}")
    sample_rate = config["sample_rate"]
    cache = cached_audio("gtzan", list(clips.values()), folder, sample_rate,
                         round(config["clip_seconds"] * sample_rate), Path(config["cache_dir"] or PROJECT_ROOT / "cache"),
                         workers=config["decode_workers"], padding=config["clip_padding"])
    stems = list(clips)
    rows, missing = split_rows(protocol, stems, split_seed(config))
    parts = [r[cache.ok[r]] for r in rows]  # bad files dropped
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        warnings.warn(f"GTZAN: {len(missing)} clip(s) of the filtered split are not in {folder}: "
                      f"{', '.join(missing[:5])}{more}; left out (info['missing'])")
    for name, part in zip(SPLIT_NAMES, parts):
        if len(part) == 0:
            raise ValueError(f"GTZAN protocol {protocol!r} gives an empty {name} split for the {len(clips)} "
                             f"clip(s) in {folder}")
    labels = torch.tensor([GENRES.index(stem.split(".")[0]) for stem in stems], dtype=torch.int64)
    x = [Rows(cache.audio, p) for p in parts]
    y = [labels[torch.from_numpy(p)] for p in parts]
    ids = [[stems[i] for i in p] for p in parts]
    info = {"unreadable": sum(int((~cache.ok[r]).sum()) for r in rows), "missing": len(missing)}
    return Splits(x[0], y[0], x[1], y[1], x[2], y[2], n_classes=len(GENRES), sample_rate=sample_rate,
                  class_names=list(GENRES), ids_train=ids[0], ids_valid=ids[1], ids_test=ids[2], info=info)


def verify(root: Path) -> list[str]:
    """Problems with ``root/genres`` as the full collection (``<genre>/<genre>.NNNNN.{wav,au}``, NNNNN
    00000-00099 for each of the 10 genres; other files are ignored); empty if fine."""
    if not (root / "genres").is_dir():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        return [f"no genres/ folder (found {found[:5] or 'nothing'})"]
    present = set(find_clips(root / "genres"))
    expected = {f"{genre}.{i:05d}" for genre in GENRES for i in range(CLIPS_PER_GENRE)}
    problems = [f"{len(present & expected)} of the {len(expected)} clips found"] if present != expected else []
    problems += [f"missing genres/{s.split('.')[0]}/{s}.wav (or .au)" for s in sorted(expected - present)]
    return problems + [f"unexpected clip {s}" for s in sorted(present - expected)]


def extract(archive: Path, staging: Path) -> None:
    """Unpack the tar archive (gzipped or not) ``archive`` into ``staging``, refusing members that
    would land outside it (tarfile's "data" filter)."""
    try:
        with tarfile.open(archive) as tar:
            for member in tqdm(tar, desc=f"extracting {archive.name}", unit=" files"):
                tar.extract(member, staging, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DownloadError(f"could not unpack {archive} ({err}): a corrupt or incomplete download, or not a "
                            "tar archive. Rerun, or set GTZAN_URL to a good copy of genres.tar.gz.") from err


def install(dest: Path, source: str | None = None) -> Path:
    """Install GTZAN as ``dest/genres/<genre>/<genre>.NNNNN.{wav,au}``; returns ``dest``. Idempotent.

    ``source``: a URL (``file://`` too) or a local path of ``genres.tar.gz``; default ``URL``. A remote
    archive downloads into ``.<dest name>.downloads`` beside ``dest`` (resumed after an interruption,
    deleted once unpacked or found bad). The archive is unpacked beside ``dest`` and verified
    (:func:`verify`) before it is renamed into place, so ``dest`` never holds a partial copy.
    """
    source = source or URL
    dest = Path(dest).resolve()
    if already_installed(dest, verify, "GTZAN", f"{len(GENRES) * CLIPS_PER_GENRE} clips"):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with downloaded(source, dest, FIX) as archive, staged(dest) as staging:
        extract(archive, staging)
        problems = verify(staging)
        if problems:
            raise DownloadError(f"the archive from {source} is not GTZAN: {summary(problems)}. Nothing was installed.")
    print(f"installed GTZAN into {dest} ({len(GENRES) * CLIPS_PER_GENRE} clips verified)")
    return dest


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m corpora gtzan``; their defaults come from ``GTZAN_DIR`` and ``GTZAN_URL`` when set."""
    parser.add_argument("--dest", default=os.environ.get("GTZAN_DIR") or DEFAULT_DEST)
    parser.add_argument("--source", default=os.environ.get("GTZAN_URL") or None, help="URL (file:// too) or local genres.tar.gz; default the "
                        "Hugging Face copy marsyas/gtzan")


def install_from_args(args: argparse.Namespace) -> Path:
    return install(Path(args.dest), args.source or None)


register_corpus(Corpus(
    "gtzan", load_splits, "GTZAN genre collection: 1,000 clips of 30 s, 10 genres (fault-filtered split by default)",
    default_dir=DEFAULT_DEST,
    download_hint="download it with `sh download_data.sh gtzan` (into data/gtzan; GTZAN_URL=<url or local "
                  "genres.tar.gz> for a mirror)",
    cache_keys=("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir"),
    download="gtzan", download_help="GTZAN genre collection (genres.tar.gz)",
    add_download_arguments=add_download_arguments, install_from_args=install_from_args, dir_env="GTZAN_DIR"))
