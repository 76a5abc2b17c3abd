"""ESC-50 (Piczak, ACM MM 2015, https://github.com/karolpiczak/ESC-50): 2,000 environmental sounds of 5 s,
40 in each of 50 classes, in 5 folds of 400.

Layout under ``data_dir`` (what :func:`install` leaves; the repository archive unpacks to it)::

    meta/esc50.csv     filename,fold,target,category,esc10,src_file,take: one row per clip, sorted by file name
    audio/<fold>-<src_file>-<take>-<target>.wav      44.1 kHz mono 16-bit

The label is ``target`` (0-49); ``class_names`` are the ``category`` names in target order. Every
clip is decoded once into the shared cache (:mod:`corpora.audio_cache`) at ``sample_rate`` Hz (8 kHz
in the ``esc50`` grid, as in the DMEL code) and cropped or zero-padded at the end to ``clip_seconds``.

Split protocols (``config["protocol"]``):

* ``dmel`` (default): the DMEL code's random 70/10/20 split (1,400/200/400), read by row position from
  ``corpora/lists/esc50/`` (computed with torch 2.13, see the README there for the caveat); the same
  for every seed, as in the DMEL code.
* ``fold``: the official 5-fold protocol. ``config["fold"]`` (1-5) is the test fold; the other four
  folds train, except a validation set for early stopping: the clips of a seeded 1/8 of their source
  recordings (``src_file``; clips cut from one recording stay on one side), about 200 clips. Report
  the mean over the five folds (the ``esc50_folds`` grid has ``fold`` as a grid axis).

Listed clips whose file is absent are warned about and counted (``info["missing"]``); unreadable
files are skipped and counted (``info["unreadable"]``). :func:`install` downloads the repository
archive (``sh download_data.sh esc50``) and checks its content, not its bytes (GitHub's archives
are not byte-stable).
"""
from __future__ import annotations

import argparse
import os
import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm import tqdm

from corpora.audio_cache import cached_audio
from corpora.download import DownloadError, already_installed, downloaded, staged, summary, unzip
from corpora.registry import Corpus, register_corpus
from corpora.splits import Rows, Splits, split_seed

URL = "https://github.com/karolpiczak/ESC-50/archive/refs/heads/master.zip"
DEFAULT_DEST = "data/esc50"
PROTOCOLS = ("dmel", "fold")
N_CLASSES, PER_CLASS, N_FOLDS = 50, 40, 5
META_COLUMNS = ("filename", "fold", "target", "category", "src_file")
VALID_SOURCE_FRACTION = 1 / 8  # protocol fold: share of the training folds' source recordings held out
LIST = Path(__file__).resolve().parent / "lists" / "esc50" / "dmel_random_split_seed0_torch2.13.csv"
PROJECT = Path(__file__).resolve().parent.parent
FIX = ("Rerun to resume the download, or set ESC50_URL to a mirror or a local copy "
       "(ESC50_URL=file:///path/to/ESC-50-master.zip sh download_data.sh esc50).")
HOW_TO_GET = (f"download it with `sh download_data.sh esc50` (into {DEFAULT_DEST}; ESC50_URL overrides the source) "
              f"and pass --data_dir={DEFAULT_DEST}")


def read_meta(data_dir: Path) -> pd.DataFrame:
    """``meta/esc50.csv`` under ``data_dir`` in file order (row position = the ``dmel`` list's ``row``)."""
    csv = Path(data_dir) / "meta" / "esc50.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"no ESC-50 metadata at {csv}: {HOW_TO_GET}")
    meta = pd.read_csv(csv)
    absent = [c for c in META_COLUMNS if c not in meta.columns]
    if absent:
        raise ValueError(f"{csv} has no column(s) {absent}: not the ESC-50 metadata")
    return meta


def class_names(meta: pd.DataFrame) -> list[str]:
    """Category names indexed by target."""
    names = meta.drop_duplicates("target").set_index("target")["category"]
    return [str(names.get(t, f"class {t}")) for t in range(N_CLASSES)]


@functools.lru_cache(maxsize=1)
def dmel_list() -> np.ndarray:
    """The ``dmel`` protocol's split name (train/valid/test) of each of the 2,000 rows, by row position."""
    table = pd.read_csv(LIST).sort_values("row")
    if table["row"].tolist() != list(range(len(table))):
        raise ValueError(f"{LIST} does not list rows 0..{len(table) - 1} once each")
    return table["split"].to_numpy()


def split_rows(meta: pd.DataFrame, protocol: str, fold: int, seed: int) -> list[np.ndarray]:
    """Row indices of train/valid/test under ``protocol`` (see the module docstring)."""
    if protocol == "dmel":
        names = dmel_list()
        if len(meta) != len(names):
            raise ValueError(f"the dmel protocol lists {len(names)} rows of meta/esc50.csv, this copy has "
                             f"{len(meta)}: use --set protocol=fold, or the published ESC-50")
        return [np.flatnonzero(names == part) for part in ("train", "valid", "test")]
    if protocol == "fold":
        if fold not in range(1, N_FOLDS + 1):
            raise ValueError(f"ESC-50 fold must be 1-{N_FOLDS}, got {fold!r}")
        folds = meta["fold"].to_numpy()
        test = np.flatnonzero(folds == fold)
        rest = np.flatnonzero(folds != fold)
        sources = np.unique(meta["src_file"].to_numpy()[rest].astype(str))
        held = np.random.default_rng(seed).permutation(sources)[:max(1, round(VALID_SOURCE_FRACTION * len(sources)))]
        in_valid = np.isin(meta["src_file"].to_numpy()[rest].astype(str), held)
        return [rest[~in_valid], rest[in_valid], test]
    raise ValueError(f"unknown ESC-50 protocol {protocol!r}; choose one of {PROTOCOLS}")


def load_splits(config: dict) -> Splits:
    """ESC-50 splits for ``config`` (``data_dir``, ``protocol``, ``fold``, ``seed``, ``sample_rate``,
    ``clip_seconds``, ``cache_dir``, ``decode_workers``). ``x_*`` are :class:`Rows` of the decoded-audio
    cache, ``(n, round(clip_seconds * sample_rate))``; ``ids_*`` are file stems."""
    protocol = config["protocol"] or "dmel"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown ESC-50 protocol {protocol!r}; choose one of {PROTOCOLS}")
    if not config.get("data_dir"):
        raise FileNotFoundError(f"esc50 needs data_dir: {HOW_TO_GET}")
    root = Path(config["data_dir"])
    meta = read_meta(root)
    paths = [root / "audio" / name for name in meta["filename"]]
    present = np.array([p.is_file() for p in paths], dtype=bool)
    if not present.any():
        raise FileNotFoundError(f"none of the {len(paths)} clips of {root / 'meta' / 'esc50.csv'} is in "
                                f"{root / 'audio'}: {HOW_TO_GET}")
    if not present.all():
        missing = [p.name for p, ok in zip(paths, present) if not ok]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        warnings.warn(f"ESC-50: {len(missing)} clip(s) of meta/esc50.csv are not in {root / 'audio'}: "
                      f"{', '.join(missing[:5])}{more}; left out (info['missing'])")
    rows = split_rows(meta, protocol, int(config["fold"]), split_seed(config))
    sample_rate = config["sample_rate"]
    kept = np.flatnonzero(present)
    cache = cached_audio("esc50", [paths[i] for i in kept], root / "audio", sample_rate,
                         round(config["clip_seconds"] * sample_rate), Path(config["cache_dir"] or PROJECT / "cache"),
                         workers=config["decode_workers"], padding=config["clip_padding"])
    cache_row = np.full(len(meta), -1, dtype=np.int64)
    cache_row[kept] = np.arange(len(kept))
    ok = np.zeros(len(meta), dtype=bool)
    ok[kept] = cache.ok
    parts = [r[ok[r]] for r in rows]
    for name, part in zip(("train", "valid", "test"), parts):
        if len(part) == 0:
            raise ValueError(f"ESC-50 protocol {protocol!r} gives an empty {name} split for the {int(present.sum())} "
                             f"clip(s) in {root / 'audio'}")
    labels = torch.from_numpy(meta["target"].to_numpy().astype(np.int64))
    stems = [Path(name).stem for name in meta["filename"]]
    x = [Rows(cache.audio, cache_row[p]) for p in parts]
    y = [labels[torch.from_numpy(p)] for p in parts]
    ids = [[stems[i] for i in p] for p in parts]
    info = {"unreadable": int((~cache.ok).sum()), "missing": int((~present).sum())}
    return Splits(x[0], y[0], x[1], y[1], x[2], y[2], n_classes=N_CLASSES, sample_rate=sample_rate,
                  class_names=class_names(meta), ids_train=ids[0], ids_valid=ids[1], ids_test=ids[2], info=info)


def verify(root: Path, per_class: int = PER_CLASS, n_folds: int = N_FOLDS, n_classes: int = N_CLASSES) -> list[str]:
    """Problems with ``root`` as ESC-50 (empty if fine): ``meta/esc50.csv`` lists ``n_classes x per_class``
    clips, ``per_class`` of each target, in ``n_folds`` equal folds, each file in ``audio/`` and readable
    (a WAV header with frames); no other WAV in ``audio/``."""
    if not (root / "meta" / "esc50.csv").is_file():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        return [f"no meta/esc50.csv (found {found[:5] or 'nothing'})"]
    try:
        meta = read_meta(root)
    except (ValueError, pd.errors.ParserError) as err:
        return [str(err)]
    problems = []
    n = n_classes * per_class
    if len(meta) != n:
        problems.append(f"meta/esc50.csv lists {len(meta)} clips, expected {n}")
    counts = meta["target"].value_counts()
    if sorted(counts.index) != list(range(n_classes)) or (counts != per_class).any():
        problems.append(f"expected {n_classes} classes (targets 0-{n_classes - 1}) of {per_class} clips, found "
                        f"{len(counts)} classes with {counts.min()}-{counts.max()} clips")
    folds = meta["fold"].value_counts()
    if sorted(folds.index) != list(range(1, n_folds + 1)) or (folds != n // n_folds).any():
        problems.append(f"expected folds 1-{n_folds} of {n // n_folds} clips, found {dict(sorted(folds.items()))}")
    listed = set(meta["filename"])
    on_disk = {p.name for p in (root / "audio").glob("*.wav")}
    problems += [f"missing audio/{name}" for name in sorted(listed - on_disk)]
    problems += [f"unexpected audio/{name} (not in meta/esc50.csv)" for name in sorted(on_disk - listed)]
    for name in tqdm(sorted(listed & on_disk), desc="checking ESC-50 audio", unit="file", leave=False):
        try:
            if sf.info(root / "audio" / name).frames == 0:
                problems.append(f"empty audio/{name}")
        except (sf.SoundFileError, RuntimeError) as err:
            problems.append(f"unreadable audio/{name} ({err})")
    return problems


def _target(name: str) -> str | None:
    """``<top>/audio/*.wav`` and ``<top>/meta/esc50.csv`` of the repository archive, without the top folder."""
    parts = name.split("/")
    if len(parts) == 3 and ((parts[1] == "audio" and parts[2].endswith(".wav")) or parts[1:] == ["meta", "esc50.csv"]):
        return "/".join(parts[1:])
    return None


def install(dest: Path, source: str | None = None, **expected) -> Path:
    """Install ESC-50 as ``dest/audio/*.wav`` and ``dest/meta/esc50.csv``; returns ``dest``. Idempotent.

    ``source``: a URL (``file://`` too) or a local path of the repository zip; default ``URL``. A remote
    archive downloads into ``.<dest name>.downloads`` beside ``dest`` (an interrupted download resumes;
    deleted once unpacked or found bad). The archive is unpacked beside ``dest``, checked by
    :func:`verify` (``expected`` overrides its counts), and renamed into place only when right.
    """
    source = source or URL
    dest = Path(dest).resolve()
    if already_installed(dest, lambda d: verify(d, **expected), "ESC-50", "clips, classes and folds"):
        return dest
    with downloaded(source, dest, FIX) as archive, staged(dest) as staging:
        unzip(archive, staging, _target, "ESC-50 (<top>/audio/*.wav, <top>/meta/esc50.csv)",
              "Rerun, or set ESC50_URL to a good copy.")
        problems = verify(staging, **expected)
        if problems:
            raise DownloadError(f"the archive from {source} is not ESC-50: {summary(problems)}. Nothing was installed.")
    print(f"installed ESC-50 into {dest} (clips, classes and folds verified)")
    return dest


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m corpora esc50``; their defaults come from ``ESC50_DIR`` and ``ESC50_URL`` when set."""
    parser.add_argument("--dest", default=os.environ.get("ESC50_DIR") or DEFAULT_DEST)
    parser.add_argument("--source", default=os.environ.get("ESC50_URL") or None, help="URL (file:// too) or local zip of the ESC-50 repository; "
                        "default the master branch archive on GitHub")


def install_from_args(args: argparse.Namespace) -> Path:
    return install(Path(args.dest), args.source or None)


register_corpus(Corpus(
    "esc50", load_splits, "ESC-50 environmental sounds: 2,000 clips of 5 s, 50 classes, 5 folds",
    default_dir=DEFAULT_DEST,
    download_hint="download it with `sh download_data.sh esc50` (into data/esc50; ESC50_URL=<url or local zip> for a "
                  "mirror)",
    cache_keys=("data_dir", "sample_rate", "clip_seconds", "clip_padding", "cache_dir"),
    download="esc50", download_help="ESC-50 environmental sounds (the GitHub repository archive)",
    add_download_arguments=add_download_arguments, install_from_args=install_from_args, dir_env="ESC50_DIR"))
