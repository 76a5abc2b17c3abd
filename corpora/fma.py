"""Free Music Archive (FMA; Defferrard et al., ISMIR 2017, https://github.com/mdeff/fma): genre classification.

Layout under ``data_dir`` (what :func:`install` leaves; the official zips unpack to it)::

    fma_metadata/tracks.csv     one row per track_id, two-level columns ('set', 'subset'), ('set', 'split'),
                                ('track', 'genre_top'), ...
    fma_small/NNN/NNNNNN.mp3    8,000 clips of 30 s, 8 balanced genres (NNNNNN = track_id, zero-padded)
    fma_medium/NNN/NNNNNN.mp3   25,000 clips, 16 unbalanced genres (fma_small's tracks included)

The label is the top genre, ``('track', 'genre_top')``; the split is the official one, ``('set', 'split')``
(protocol ``"official"``: training / validation / test). Audio is decoded once into the shared cache of
:mod:`corpora.audio_cache`: downmixed, resampled to ``sample_rate``, cropped or zero-padded to
``clip_seconds``. A file that does not decode to half a clip is skipped and counted (fma_small has six:
three a fraction of a second long, three with no audio), as is a track whose mp3 is missing. The dataset
folder is only read.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from corpora.audio_cache import cached_audio
from corpora.download import DownloadError, fetch, file_digest, is_remote
from corpora.registry import Corpus, register_corpus
from corpora.splits import Rows, Splits

FMA_URL = "https://os.unil.cloud.switch.ch/fma/"
# the SHA-1 sums published in the FMA README
SHA1 = {
    "fma_metadata.zip": "f0df49ffe5f2a6008d7dc83c6915b31835dfe733",
    "fma_small.zip": "ade154f733639d52e35e32f5593efe5be76c6d70",
    "fma_medium.zip": "c67b69ea232021025fca9231fc1c7c1a063ab50b",
}
SUBSETS = ("small", "medium")                 # the subsets installed and loaded here
SUBSET_ORDER = ("small", "medium", "large")   # nested: small is inside medium inside large
SPLITS = ("training", "validation", "test")
PROTOCOLS = ("official",)
SUBSET, SPLIT, GENRE = ("set", "subset"), ("set", "split"), ("track", "genre_top")
PROJECT = Path(__file__).resolve().parent.parent
FIX = ("Rerun to resume the download, or set FMA_URL to a mirror: an https URL, or a file:// URL or local "
       "folder holding the zips (FMA_URL=/path/to/zips sh download_data.sh fma).")


def read_tracks(path: Path) -> pd.DataFrame:
    """``fma_metadata/tracks.csv``: index ``track_id`` (int), two-level columns, as the FMA code reads it;
    ``('set', 'subset')`` becomes an ordered categorical small < medium < large."""
    tracks = pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)
    absent = [col for col in (SUBSET, SPLIT, GENRE) if col not in tracks.columns]
    if absent:
        raise ValueError(f"{path} has no column(s) {absent}: not the FMA tracks.csv")
    tracks[SUBSET] = tracks[SUBSET].astype(pd.CategoricalDtype(SUBSET_ORDER, ordered=True))
    return tracks


def select(tracks: pd.DataFrame, subset: str) -> pd.DataFrame:
    """The tracks of ``subset`` (``medium`` includes ``small``) that have a top genre, by track_id."""
    if subset not in SUBSET_ORDER:
        raise ValueError(f"unknown FMA subset {subset!r}; choose one of {SUBSET_ORDER}")
    return tracks[(tracks[SUBSET] <= subset) & tracks[GENRE].notna()].sort_index()


def track_path(audio_root: Path, track_id: int) -> Path:
    """``audio_root/NNN/NNNNNN.mp3``: the six-digit zero-padded id, in the folder of its first three digits."""
    name = f"{int(track_id):06d}"
    return Path(audio_root) / name[:3] / f"{name}.mp3"


def archive_source(base: str, filename: str) -> str:
    """``filename`` in ``base``: an http(s) or ``file://`` URL of a folder, or a local folder."""
    if urllib.parse.urlparse(base).scheme:
        return base.rstrip("/") + "/" + filename
    return str(Path(base) / filename)


def verified_archive(source: str, downloads: Path, expected: str) -> Path:
    """The archive at ``source`` (downloaded into ``downloads`` if remote) once its SHA-1 is ``expected``;
    a mismatching download is deleted, a mismatching local copy left alone."""
    archive = fetch(source, downloads, FIX)
    actual = file_digest(archive, "sha1", progress=True)
    if actual != expected:
        if is_remote(source):
            archive.unlink()
            todo = "The download was deleted; rerun to fetch it again, or set FMA_URL to another mirror."
        else:
            todo = f"{archive} is a corrupt or different copy: replace it."
        raise DownloadError(f"{archive.name} has SHA-1 {actual}, expected {expected} (from {source}). {todo}")
    return archive


def extract(archive: Path, name: str, dest: Path) -> None:
    """Unpack the ``name/`` folder of ``archive`` into ``dest/name``, through a temporary folder in ``dest``."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if m.filename.split("/")[0] == name]
        if not members:
            raise DownloadError(f"{archive} holds no {name}/ folder: not the FMA archive")
        size = sum(m.file_size for m in members)
        free = shutil.disk_usage(dest).free
        if size > free:
            raise DownloadError(f"unpacking {archive.name} needs {size / 1e9:.1f} GB, but {dest} has "
                                f"{free / 1e9:.1f} GB free. Free some space and rerun.")
        with tempfile.TemporaryDirectory(prefix=f".{name}.tmp-", dir=dest) as tmp, tqdm(
                total=size, unit="B", unit_scale=True, desc=f"extracting {archive.name}") as bar:
            for member in members:
                zf.extract(member, tmp)
                bar.update(member.file_size)
            os.replace(Path(tmp) / name, dest / name)


def install(dest: Path, subsets=("small",), base: str | None = None, sha1: dict[str, str] | None = None) -> Path:
    """Install ``dest/fma_metadata`` and ``dest/fma_<subset>`` for each of ``subsets``; returns ``dest``.

    The zips come from ``base`` (default :data:`FMA_URL`; an http(s) URL, a ``file://`` URL of a folder
    or a local folder). Remote ones download into ``dest/.downloads`` (resumed after an interruption)
    and are deleted once unpacked. Every archive is checked against ``sha1`` (file name -> SHA-1, default
    the published :data:`SHA1`) before any is unpacked, and each part appears in ``dest`` only when
    complete. A part already in ``dest`` is left as it is.
    """
    unknown = sorted(set(subsets) - set(SUBSETS))
    if unknown:
        raise DownloadError(f"unknown FMA subset(s) {unknown}; choose from {SUBSETS}")
    sums = SHA1 if sha1 is None else sha1
    dest = Path(dest).resolve()
    names = ["fma_metadata", *(f"fma_{s}" for s in subsets)]
    todo = [n for n in names if not (dest / n).is_dir()]
    for name in sorted(set(names) - set(todo)):
        print(f"{name} is already in {dest}; nothing to do")
    if not todo:
        return dest
    downloads = dest / ".downloads"
    try:
        archives = {n: verified_archive(archive_source(base or FMA_URL, f"{n}.zip"), downloads, sums[f"{n}.zip"])
                    for n in todo}
        dest.mkdir(parents=True, exist_ok=True)
        for name, archive in archives.items():
            extract(archive, name, dest)
            if archive.parent == downloads:
                archive.unlink()
            print(f"installed {name} into {dest} (SHA-1 of {archive.name} verified)")
    finally:
        if downloads.is_dir() and not any(downloads.iterdir()):
            downloads.rmdir()
    return dest


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m corpora fma``; their defaults come from ``FMA_SUBSETS`` (space-separated),
    ``FMA_DIR`` and ``FMA_URL`` when set."""
    parser.add_argument("--subsets", nargs="+", default=(os.environ.get("FMA_SUBSETS") or "small").split(),
                        help="small and/or medium (default small)")
    parser.add_argument("--dest", default=os.environ.get("FMA_DIR") or "data/fma")
    parser.add_argument("--base", default=os.environ.get("FMA_URL") or None, help="https or file:// URL of the folder holding the zips, "
                        "or a local folder; default the official one")


def install_from_args(args: argparse.Namespace) -> Path:
    return install(Path(args.dest), args.subsets, args.base or None)


@functools.lru_cache(maxsize=2)
def labelled_tracks(csv: str, subset: str) -> pd.DataFrame:
    """Split and top genre of the tracks of ``subset`` in ``csv`` (read once per process: the real
    tracks.csv takes seconds)."""
    return select(read_tracks(Path(csv)), subset)[[SPLIT, GENRE]]


def load_splits(config: dict) -> Splits:
    """FMA splits for ``config`` (``data_dir``, ``fma_subset``, ``protocol``, ``sample_rate``, ``clip_seconds``,
    ``cache_dir``, ``decode_workers``). ``ids_*`` are six-digit track ids; ``info`` counts the
    ``unreadable`` files skipped by decoding and the ``missing`` mp3s of tracks in the metadata."""
    subset, protocol = config["fma_subset"], config["protocol"] or "official"
    if subset not in SUBSETS:
        raise ValueError(f"unknown fma_subset {subset!r}; choose one of {SUBSETS}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown FMA protocol {protocol!r}; choose one of {PROTOCOLS}")
    if not config.get("data_dir"):
        raise FileNotFoundError("fma needs data_dir (download FMA with `sh download_data.sh fma`, into data/fma)")
    root = Path(config["data_dir"])
    csv, audio_root = root / "fma_metadata" / "tracks.csv", root / f"fma_{subset}"
    if not csv.is_file() or not audio_root.is_dir():
        raise FileNotFoundError(f"no FMA {subset} at {root} (it needs fma_metadata/tracks.csv and fma_{subset}/): "
                                f"download it with `sh download_data.sh fma` (FMA_URL=<mirror> for a local copy), "
                                "or pass --data_dir=<folder holding them>")
    tracks = labelled_tracks(str(csv.resolve()), subset)
    class_names = sorted(tracks[GENRE].unique())
    paths = [track_path(audio_root, t) for t in tracks.index]
    present = np.array([p.is_file() for p in paths], dtype=bool)
    if not present.any():
        raise FileNotFoundError(f"none of the {len(paths)} mp3s of FMA {subset} is under {audio_root}; "
                                "rerun `sh download_data.sh fma`")
    ids = np.array([p.stem for p in paths])
    if not present.all():
        warnings.warn(f"FMA {subset}: {int((~present).sum())} track(s) in {csv} have no mp3 under {audio_root}: "
                      f"{', '.join(ids[~present][:5])}")
    tracks, ids = tracks[present], ids[present]
    sample_rate = config["sample_rate"]
    cache = cached_audio(f"fma_{subset}", [p for p, ok in zip(paths, present) if ok], audio_root, sample_rate,
                         round(config["clip_seconds"] * sample_rate), Path(config["cache_dir"] or PROJECT / "cache"),
                         workers=config["decode_workers"], padding=config["clip_padding"])
    labels = pd.Categorical(tracks[GENRE], categories=class_names).codes.astype(np.int64)
    split = tracks[SPLIT].to_numpy()
    parts = [np.flatnonzero(cache.ok & (split == name)) for name in SPLITS]
    for name, part in zip(SPLITS, parts):
        if len(part) == 0:
            raise ValueError(f"FMA {subset} has no readable {name} track under {audio_root}")
    x = [Rows(cache.audio, part) for part in parts]
    y = [torch.from_numpy(labels[part]) for part in parts]
    return Splits(x[0], y[0], x[1], y[1], x[2], y[2], n_classes=len(class_names), sample_rate=sample_rate,
                  class_names=class_names, ids_train=ids[parts[0]].tolist(), ids_valid=ids[parts[1]].tolist(),
                  ids_test=ids[parts[2]].tolist(), info={"unreadable": int((~cache.ok).sum()),
                                                      "missing": int((~present).sum())})


register_corpus(Corpus(
    "fma", load_splits, "Free Music Archive genres: fma_small (8,000 clips of 30 s, 8 genres), official split",
    default_dir="data/fma",
    download_hint="download it with `sh download_data.sh fma` (fma_metadata + fma_small into data/fma; FMA_URL=<base "
                  "url or local folder> for a mirror)",
    cache_keys=("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir", "fma_subset"),
    download="fma", download_help="Free Music Archive: fma_metadata and the audio of each subset",
    add_download_arguments=add_download_arguments, install_from_args=install_from_args, dir_env="FMA_DIR"))
