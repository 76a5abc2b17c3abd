"""Dataset downloads: fetch (any URL, ``file://`` included, or a local path), verify, install atomically.

    python -m corpora.download fsdd [--version 1.0.8] [--dest data/audio-mnist] [--source URL_OR_PATH]
    python -m corpora.download gtzan [--dest data/gtzan] [--source URL_OR_PATH]
    python -m corpora.download fma [--subsets small [medium]] [--dest data/fma] [--base URL_OR_FOLDER]

Nothing half-written is left behind: downloads go to ``*.part`` and are renamed when complete
(an interrupted http(s) download is resumed from its ``*.part``); archives are extracted into a
temporary folder beside the destination, verified, and only then renamed into place. A second
run finds the installed data and does nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from tqdm import tqdm

CHECKSUM_DIR = Path(__file__).resolve().parent / "checksums"
FSDD_URLS = {
    # DOI 10.5281/zenodo.1342401 (the version the DMEL code downloads)
    "1.0.8": "https://zenodo.org/record/1342401/files/Jakobovski/free-spoken-digit-dataset-v1.0.8.zip",
    # latest tag (3,000 recordings, six speakers), from the GitHub tag archive
    "1.0.10": "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip",
}
FSDD_DEFAULT_DEST = {"1.0.8": "data/audio-mnist", "1.0.10": "data/fsdd-v1.0.10"}
FSDD_FIX = "Set the source to a mirror or a local copy (FSDD_URL=file:///path/to/fsdd.zip sh download_data.sh)."
RECORDING = re.compile(r"^(?:.*/)?recordings/(\d_[a-z]+_\d+\.wav)$")


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


def install_fsdd(dest: Path, version: str = "1.0.8", source: str | None = None,
                 expected: dict[str, str] | None = None) -> Path:
    """Install FSDD ``version`` as ``dest/recordings/*.wav``; returns ``dest``. Idempotent.

    ``expected`` (relative path -> sha256) defaults to the list shipped for ``version``.
    """
    if version not in FSDD_URLS:
        raise DownloadError(f"unknown FSDD version {version!r}; choose one of {sorted(FSDD_URLS)}")
    expected = expected or read_checksums(f"fsdd-v{version}")
    dest = Path(dest).resolve()
    if already_installed(dest, lambda d: verify_tree(d, expected), f"FSDD v{version}", f"{len(expected)} recordings"):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.tmp-", dir=dest.parent) as tmp:
        archive = fetch(source or FSDD_URLS[version], Path(tmp), FSDD_FIX)
        staging = Path(tmp) / "staging"
        (staging / "recordings").mkdir(parents=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [(m, RECORDING.match(m.filename)) for m in zf.infolist()]
                members = [(m, match.group(1)) for m, match in members if match]
                if not members:
                    raise DownloadError(f"{archive} holds no recordings/*.wav: not an FSDD archive")
                for member, name in tqdm(members, desc="extracting", unit="file"):
                    with zf.open(member) as src, open(staging / "recordings" / name, "wb") as out:
                        shutil.copyfileobj(src, out)
        except zipfile.BadZipFile as err:
            raise DownloadError(f"{archive} is not a valid zip archive ({err}): a corrupt or incomplete "
                                "download. Rerun, or point FSDD_URL at a good copy.") from err
        problems = verify_tree(staging, expected)
        if problems:
            raise DownloadError(f"the archive from {source or FSDD_URLS[version]} does not match FSDD v{version}: "
                                f"{summary(problems)}. Nothing was installed.")
        os.replace(staging, dest)
    print(f"installed FSDD v{version} into {dest} ({len(expected)} recordings verified)")
    return dest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="dataset", required=True)
    fsdd = sub.add_parser("fsdd", help="Free Spoken Digit Dataset")
    fsdd.add_argument("--version", default="1.0.8", choices=sorted(FSDD_URLS))
    fsdd.add_argument("--dest", default=None, help="default data/audio-mnist (v1.0.8), data/fsdd-v1.0.10")
    fsdd.add_argument("--source", default=None, help="URL (file:// too) or local zip; default the official one")
    gtzan = sub.add_parser("gtzan", help="GTZAN genre collection (genres.tar.gz)")
    gtzan.add_argument("--dest", default="data/gtzan")
    gtzan.add_argument("--source", default=None, help="URL (file:// too) or local genres.tar.gz; default the "
                       "Hugging Face copy marsyas/gtzan")
    fma = sub.add_parser("fma", help="Free Music Archive: fma_metadata and the audio of each subset")
    fma.add_argument("--subsets", nargs="+", default=["small"], help="small and/or medium (default small)")
    fma.add_argument("--dest", default="data/fma")
    fma.add_argument("--base", default=None, help="https or file:// URL of the folder holding the zips, "
                     "or a local folder; default the official one")
    args = p.parse_args(argv)
    try:
        # the corpus modules import this one (and the decoding stack): imported when asked for
        if args.dataset == "fsdd":
            install_fsdd(Path(args.dest or FSDD_DEFAULT_DEST[args.version]), args.version, args.source or None)
        elif args.dataset == "gtzan":
            from corpora import gtzan
            gtzan.install(Path(args.dest), args.source or None)
        else:
            from corpora import fma
            fma.install(Path(args.dest), args.subsets, args.base or None)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
