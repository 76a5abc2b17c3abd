"""Free Spoken Digit Dataset (FSDD): ``<data_dir>/recordings/{digit}_{speaker}_{take}.wav``, 8 kHz mono PCM.

The label is the digit. Split protocols (``config["protocol"]``), all deterministic given the split seed
(``split_seed``, else ``seed``: :func:`corpora.splits.split_seed`):

* ``dmel`` (the DMEL code's): keep recordings of 1,500 to 5,500 samples, zero-pad at the end to
  5,500, then a seeded random 70/10/20 train/valid/test split.
* ``standard`` (the FSDD README's): takes 0-4 of every digit and speaker are the test set. Our
  choice for validation: takes 5-9; training takes 10-49.
* ``speaker``: whole speakers held out. Speakers are sorted by name; the test speaker is
  ``speakers[seed % n]``, the validation speaker the next one, the others train.

Every kept recording is zero-padded or cut at the end to ``n_points`` samples (5,500 in the
``audio_mnist`` grid; the number cut is reported as ``n_cropped``). A file that cannot be
decoded is skipped with a warning and counted (``n_unreadable``); a wrong sample rate raises
an error naming the file. Decoding happens once per process (Ray reuses trial processes).

:func:`install` downloads a release and verifies every recording against the sha256 list shipped in
``corpora/checksums/`` (``sh download_data.sh`` or ``python -m corpora fsdd``).
"""
from __future__ import annotations

import argparse
import os
import functools
import re
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from corpora.download import DownloadError, already_installed, downloaded, read_checksums, staged, summary, unzip, \
    verify_tree
from corpora.registry import Corpus, register_corpus
from corpora.splits import Splits, random_split_indices, split_seed

SAMPLE_RATE = 8000
NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
PROTOCOLS = ("dmel", "standard", "speaker")
DMEL_MIN, DMEL_MAX = 1500, 5500
URLS = {
    # DOI 10.5281/zenodo.1342401 (the version the DMEL code downloads)
    "1.0.8": "https://zenodo.org/record/1342401/files/Jakobovski/free-spoken-digit-dataset-v1.0.8.zip",
    # latest tag (3,000 recordings, six speakers), from the GitHub tag archive
    "1.0.10": "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip",
}
DEFAULT_DEST = {"1.0.8": "data/audio-mnist", "1.0.10": "data/fsdd-v1.0.10"}
FIX = "Set the source to a mirror or a local copy (FSDD_URL=file:///path/to/fsdd.zip sh download_data.sh)."
RECORDING = re.compile(r"^(?:.*/)?recordings/(\d_[a-z]+_\d+\.wav)$")


@functools.lru_cache(maxsize=4)
def read_recordings(data_dir: str) -> tuple[list[np.ndarray], list[tuple[int, str, int]], list[str], int]:
    """Decode every recording under ``data_dir/recordings``.

    Returns ``(waveforms, (digit, speaker, take) per file, file stems, number unreadable)``;
    waveforms are float32 in [-1, 1], in file-name order.
    """
    folder = Path(data_dir) / "recordings"
    if not folder.is_dir():
        raise FileNotFoundError(f"no FSDD recordings at {folder}: download them with `sh download_data.sh` "
                                "(or pass --data_dir=<folder holding recordings/>)")
    waves, meta, stems, unreadable = [], [], [], []
    for path in sorted(folder.glob("*.wav")):
        match = NAME.match(path.name)
        if match is None:
            continue
        try:
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            unreadable.append(f"{path.name} ({err})")
            continue
        if rate != SAMPLE_RATE:
            raise ValueError(f"{path}: sample rate {rate} Hz, FSDD is {SAMPLE_RATE} Hz; is this the FSDD folder?")
        if audio.shape[0] == 0:
            unreadable.append(f"{path.name} (empty)")
            continue
        waves.append(audio.mean(axis=1))
        meta.append((int(match.group(1)), match.group(2), int(match.group(3))))
        stems.append(path.stem)
    if unreadable:
        warnings.warn(f"FSDD: skipped {len(unreadable)} unreadable file(s): {', '.join(unreadable[:5])}")
    if not waves:
        raise FileNotFoundError(f"no readable FSDD recordings in {folder}; rerun `sh download_data.sh`")
    return waves, meta, stems, len(unreadable)


def fit_length(wave: np.ndarray, n_points: int) -> np.ndarray:
    """Zero-pad or cut ``wave`` at the end to ``n_points`` samples."""
    out = np.zeros(n_points, dtype=np.float32)
    out[:min(len(wave), n_points)] = wave[:n_points]
    return out


def split_indices(meta: list[tuple[int, str, int]], lengths: np.ndarray, protocol: str,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train/valid/test recordings under ``protocol`` (see the module docstring)."""
    takes = np.array([m[2] for m in meta])
    speakers = np.array([m[1] for m in meta])
    if protocol == "dmel":
        keep = np.flatnonzero((lengths >= DMEL_MIN) & (lengths <= DMEL_MAX))
        parts = random_split_indices(len(keep), (0.7, 0.1, 0.2), seed)
        return tuple(np.sort(keep[p]) for p in parts)
    if protocol == "standard":
        return np.flatnonzero(takes >= 10), np.flatnonzero((takes >= 5) & (takes < 10)), np.flatnonzero(takes < 5)
    if protocol == "speaker":
        names = sorted(set(speakers))
        if len(names) < 3:
            raise ValueError(f"protocol 'speaker' needs at least 3 speakers, found {names}")
        test, valid = names[seed % len(names)], names[(seed + 1) % len(names)]
        return (np.flatnonzero((speakers != test) & (speakers != valid)), np.flatnonzero(speakers == valid),
                np.flatnonzero(speakers == test))
    raise ValueError(f"unknown FSDD protocol {protocol!r}; choose one of {PROTOCOLS}")


def load_splits(config: dict) -> Splits:
    """FSDD splits for ``config`` (``data_dir``, ``protocol``, ``seed`` or ``split_seed``, ``n_points``)."""
    if not config.get("data_dir"):
        raise FileNotFoundError("audio_mnist needs data_dir (download FSDD with `sh download_data.sh`)")
    if config["sample_rate"] != SAMPLE_RATE:
        raise ValueError(f"FSDD is recorded at {SAMPLE_RATE} Hz; set sample_rate={SAMPLE_RATE}")
    waves, meta, stems, n_unreadable = read_recordings(str(Path(config["data_dir"]).resolve()))
    lengths = np.array([len(w) for w in waves])
    n_points = config["n_points"]
    protocol = config["protocol"] or "dmel"
    parts = split_indices(meta, lengths, protocol, split_seed(config))
    for name, part in zip(("train", "valid", "test"), parts):
        if len(part) == 0:
            raise ValueError(f"FSDD protocol {protocol!r} gives an empty {name} split for the "
                             f"{len(waves)} recordings in {config['data_dir']}")
    used = np.concatenate(parts)
    x = [torch.from_numpy(np.stack([fit_length(waves[i], n_points) for i in p])) for p in parts]
    y = [torch.tensor([meta[i][0] for i in p], dtype=torch.int64) for p in parts]
    ids = [[stems[i] for i in p] for p in parts]
    info = {"unreadable": n_unreadable, "excluded": len(waves) - len(used),
            "cropped": int((lengths[used] > n_points).sum())}
    return Splits(x[0], y[0], x[1], y[1], x[2], y[2], n_classes=10, sample_rate=SAMPLE_RATE,
                  class_names=[str(d) for d in range(10)], ids_train=ids[0], ids_valid=ids[1], ids_test=ids[2],
                  info=info)


def install(dest: Path, version: str = "1.0.8", source: str | None = None,
            expected: dict[str, str] | None = None) -> Path:
    """Install FSDD ``version`` as ``dest/recordings/*.wav``; returns ``dest``. Idempotent.

    ``source``: a URL (``file://`` too) or a local path of the zip; default the release's (``URLS``).
    ``expected`` (relative path -> sha256) defaults to the list shipped for ``version``. The zip is
    unpacked beside ``dest`` and verified before one rename puts it in place.
    """
    if version not in URLS:
        raise DownloadError(f"unknown FSDD version {version!r}; choose one of {sorted(URLS)}")
    expected = expected or read_checksums(f"fsdd-v{version}")
    source = source or URLS[version]
    dest = Path(dest).resolve()
    if already_installed(dest, lambda d: verify_tree(d, expected), f"FSDD v{version}", f"{len(expected)} recordings"):
        return dest

    def target(name: str) -> str | None:
        match = RECORDING.match(name)
        return f"recordings/{match.group(1)}" if match else None

    dest.parent.mkdir(parents=True, exist_ok=True)
    with downloaded(source, dest, FIX) as archive, staged(dest) as staging:
        unzip(archive, staging, target, "FSDD (recordings/*.wav)", "Rerun, or point FSDD_URL at a good copy.")
        problems = verify_tree(staging, expected)
        if problems:
            raise DownloadError(f"the archive from {source} does not match FSDD v{version}: "
                                f"{summary(problems)}. Nothing was installed.")
    print(f"installed FSDD v{version} into {dest} ({len(expected)} recordings verified)")
    return dest


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m corpora fsdd``; their defaults come from ``FSDD_VERSION``, ``FSDD_DIR`` and
    ``FSDD_URL`` when set (what ``download_data.sh`` documents)."""
    parser.add_argument("--version", default=os.environ.get("FSDD_VERSION") or "1.0.8", choices=sorted(URLS))
    parser.add_argument("--dest", default=os.environ.get("FSDD_DIR") or None,
                        help="default data/audio-mnist (v1.0.8), data/fsdd-v1.0.10")
    parser.add_argument("--source", default=os.environ.get("FSDD_URL") or None,
                        help="URL (file:// too) or local zip; default the official one")


def install_from_args(args: argparse.Namespace) -> Path:
    return install(Path(args.dest or DEFAULT_DEST[args.version]), args.version, args.source or None)


register_corpus(Corpus(
    "audio_mnist", load_splits, "Free Spoken Digit Dataset: 10 digits, 8 kHz (v1.0.8: 1,500 recordings)",
    default_dir=DEFAULT_DEST["1.0.8"],
    download_hint="download it with `sh download_data.sh` (FSDD into data/audio-mnist)",
    download="fsdd", download_help="Free Spoken Digit Dataset",
    add_download_arguments=add_download_arguments, install_from_args=install_from_args, dir_env="DATA_DIR"))
