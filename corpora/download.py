"""Shared download helpers: fetch (any URL, ``file://`` included, or a local path), verify, install atomically.

Each corpus module owns its ``install`` (``corpora/fsdd.py``, ``gtzan.py``, ``fma.py``, ``esc50.py``,
``audiomnist.py``) and builds it from these helpers; the command line
(``python -m corpora <dataset> ...``, what ``download_data.sh`` runs) dispatches through each corpus's
record (its ``download`` and ``install_from_args``, :mod:`corpora.registry`). This module imports no corpus
module.

Nothing half-written is left behind: downloads go to ``*.part`` and are renamed when complete
(an interrupted http(s) download is resumed from its ``*.part``); archives are extracted into a
temporary folder beside the destination, verified, and only then renamed into place. A second
run finds the installed data and does nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

CHECKSUM_DIR = Path(__file__).resolve().parent / "checksums"


class DownloadError(RuntimeError):
    """The download or its content is wrong; the message says what and what to do."""


def file_digest(path: Path, algorithm: str = "sha256", progress: bool = False) -> str:
    """Hex digest of the file at ``path``; ``algorithm`` is any :func:`hashlib.new` name (sha256, sha1).

    Streamed in 1 MiB blocks; ``progress`` shows a bar (worth it for archives of many GB).
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=f"checking {path.name}", disable=not progress) as bar:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def is_remote(source: str) -> bool:
    """Whether ``source`` is downloaded (a URL other than ``file://``) rather than read in place."""
    return urllib.parse.urlparse(source).scheme not in ("", "file")


def fetch(source: str, workdir: Path, fix: str = "Rerun, or use a mirror or a local copy.") -> Path:
    """A local file for ``source``: a local path or ``file://`` URL as it is, else a download into
    ``workdir`` (created if needed) named after the URL's last path segment.

    A download streams to ``*.part`` with a progress bar and is renamed when complete; a file of the
    final name already in ``workdir`` is taken as complete. An existing ``*.part`` is continued with an
    HTTP ``Range`` request (appended to on ``206 Partial Content``, restarted if the server sends the
    whole file). On failure the ``*.part`` is kept for the next call and :class:`DownloadError` ends in ``fix``.
    """
    if not is_remote(source):
        parsed = urllib.parse.urlparse(source)
        path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else source)
        if not path.is_file():
            raise DownloadError(f"{source}: no such file")
        return path
    target = Path(workdir) / Path(urllib.parse.urlparse(source).path).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(source, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            if resp.status != 206:  # the whole file: start again
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length else None
            with open(part, "ab" if have else "wb") as out, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True,
                    desc=f"{'resuming' if have else 'downloading'} {target.name}") as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:
            raise DownloadError(f"could not download {source}: {err}. {fix}") from err
        part.unlink()  # 416: the *.part is not a prefix of this file
        return fetch(source, workdir, fix)
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"could not download {source}: {err}. {fix}") from err
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"the download of {source} stopped after {part.stat().st_size:,} of {total:,} bytes. {fix}")
    part.rename(target)
    return target


def read_checksums(name: str) -> dict[str, str]:
    """``relative path -> sha256`` from ``corpora/checksums/<name>.sha256``."""
    lines = (CHECKSUM_DIR / f"{name}.sha256").read_text().split("\n")
    return {rel: digest for digest, rel in (line.split(maxsplit=1) for line in lines if line.strip())}


def verify_tree(root: Path, expected: dict[str, str], pattern: str = "recordings/*.wav") -> list[str]:
    """Problems with ``root`` against ``expected`` (missing, unexpected, or changed files); empty if fine."""
    present = {p.relative_to(root).as_posix() for p in root.glob(pattern)}
    problems = [f"missing {rel}" for rel in sorted(set(expected) - present)]
    problems += [f"unexpected {rel}" for rel in sorted(present - set(expected))]
    problems += [f"checksum mismatch {rel}" for rel in sorted(present & set(expected))
                 if file_digest(root / rel, "sha256") != expected[rel]]
    return problems


def summary(problems: list[str]) -> str:
    """The first five problems joined, and how many more there are."""
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return "; ".join(problems[:5]) + more


def already_installed(dest: Path, problems: Callable[[Path], list[str]], what: str, verified: str) -> bool:
    """``True`` (after saying so) when ``dest`` holds a copy of ``what`` that ``problems`` finds nothing
    wrong with; ``False`` when ``dest`` does not exist; raises when it holds something else."""
    if not dest.exists():
        return False
    found = problems(dest)
    if found:
        raise DownloadError(f"{dest} exists but is not {what}: {summary(found)}. "
                            "Move it away and rerun to download a fresh copy.")
    print(f"{what} is already in {dest} ({verified} verified); nothing to do")
    return True


@contextlib.contextmanager
def downloaded(source: str, dest: Path, fix: str) -> Iterator[Path]:
    """The archive at ``source`` as a local file, for installing into ``dest``.

    A local path or ``file://`` URL is used in place. A remote archive downloads into
    ``.<dest name>.downloads`` beside ``dest`` (an interrupted download keeps its ``*.part`` there
    and the next call resumes it); the folder is deleted when the body finishes, or raises
    :class:`DownloadError` (bad content: the next run fetches a fresh copy).
    """
    downloads = dest.parent / f".{dest.name}.downloads"
    archive = fetch(source, downloads, fix)
    try:
        yield archive
    except DownloadError:
        if is_remote(source):
            shutil.rmtree(downloads, ignore_errors=True)
        raise
    if is_remote(source):
        shutil.rmtree(downloads, ignore_errors=True)


@contextlib.contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A fresh folder beside ``dest`` to build the installed tree in; renamed to ``dest`` (one
    atomic rename) when the body finishes, removed with its temporary parent when it raises."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.tmp-", dir=dest.parent) as tmp:
        staging = Path(tmp) / "staging"
        staging.mkdir()
        yield staging
        os.replace(staging, dest)


def unzip(archive: Path, staging: Path, target: Callable[[str], str | None], what: str, fix: str) -> int:
    """Extract the members of the zip ``archive`` for which ``target(member name)`` gives a relative
    path, to that path under ``staging``; returns how many. Raises :class:`DownloadError` (ending in
    ``fix``) for a corrupt zip, or when no member is selected (the archive is not ``what``)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [(m, target(m.filename)) for m in zf.infolist() if not m.is_dir()]
            members = [(m, rel) for m, rel in members if rel]
            if not members:
                raise DownloadError(f"{archive} holds none of the files of {what}: not its archive. {fix}")
            for member, rel in tqdm(members, desc=f"extracting {archive.name}", unit="file"):
                out_path = staging / rel
                out_path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out_path, "wb") as out:
                    shutil.copyfileobj(src, out)
    except (zipfile.BadZipFile, EOFError) as err:
        raise DownloadError(f"{archive} is not a valid zip archive ({err}): a corrupt or incomplete "
                            f"download. {fix}") from err
    return len(members)

