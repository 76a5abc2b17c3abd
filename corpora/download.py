"""Dataset downloads: fetch (any URL, ``file://`` included, or a local path), verify, install atomically.

    python -m corpora.download fsdd [--version 1.0.8] [--dest data/audio-mnist] [--source URL_OR_PATH]

Nothing half-written is left behind: downloads go to ``*.part`` and are renamed when complete;
archives are extracted into a temporary folder beside the destination, verified against the
checksum list shipped in ``corpora/checksums/``, and only then renamed into place. A second
run finds the verified data and does nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

CHECKSUM_DIR = Path(__file__).resolve().parent / "checksums"
FSDD_URLS = {
    # DOI 10.5281/zenodo.1342401 (the version the DMEL code downloads)
    "1.0.8": "https://zenodo.org/record/1342401/files/Jakobovski/free-spoken-digit-dataset-v1.0.8.zip",
    # latest tag (3,000 recordings, six speakers), from the GitHub tag archive
    "1.0.10": "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip",
}
FSDD_DEFAULT_DEST = {"1.0.8": "data/audio-mnist", "1.0.10": "data/fsdd-v1.0.10"}
RECORDING = re.compile(r"^(?:.*/)?recordings/(\d_[a-z]+_\d+\.wav)$")


class DownloadError(RuntimeError):
    """The download or its content is wrong; the message says what and what to do."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(source: str, workdir: Path) -> Path:
    """A local file for ``source``: a local path or ``file://`` URL as it is, else a download into
    ``workdir`` (streamed to ``*.part`` with a progress bar, renamed when complete)."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("", "file"):
        path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else source)
        if not path.is_file():
            raise DownloadError(f"{source}: no such file")
        return path
    target = workdir / Path(parsed.path).name
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(source, timeout=60) as resp, open(part, "wb") as out, tqdm(
                total=int(resp.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                desc=f"downloading {target.name}") as bar:
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                bar.update(len(block))
    except OSError as err:
        part.unlink(missing_ok=True)
        raise DownloadError(f"could not download {source}: {err}. Set the source to a mirror or a local "
                            "copy (FSDD_URL=file:///path/to/fsdd.zip sh download_data.sh)") from err
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
                 if sha256(root / rel) != expected[rel]]
    return problems


def _summary(problems: list[str]) -> str:
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return "; ".join(problems[:5]) + more


def install_fsdd(dest: Path, version: str = "1.0.8", source: str | None = None,
                 expected: dict[str, str] | None = None) -> Path:
    """Install FSDD ``version`` as ``dest/recordings/*.wav``; returns ``dest``. Idempotent.

    ``expected`` (relative path -> sha256) defaults to the list shipped for ``version``.
    """
    if version not in FSDD_URLS:
        raise DownloadError(f"unknown FSDD version {version!r}; choose one of {sorted(FSDD_URLS)}")
    expected = expected or read_checksums(f"fsdd-v{version}")
    dest = Path(dest).resolve()
    if dest.exists():
        problems = verify_tree(dest, expected)
        if not problems:
            print(f"FSDD v{version} is already in {dest} ({len(expected)} recordings verified); nothing to do")
            return dest
        raise DownloadError(f"{dest} exists but is not FSDD v{version}: {_summary(problems)}. "
                            "Move it away and rerun to download a fresh copy.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.tmp-", dir=dest.parent) as tmp:
        archive = fetch(source or FSDD_URLS[version], Path(tmp))
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
                                f"{_summary(problems)}. Nothing was installed.")
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
    args = p.parse_args(argv)
    try:
        install_fsdd(Path(args.dest or FSDD_DEFAULT_DEST[args.version]), args.version, args.source or None)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
