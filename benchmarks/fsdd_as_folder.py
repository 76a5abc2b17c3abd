"""FSDD laid out as a user's own labelled audio, for the ``folder`` corpus measurement of docs/benchmarks.md.

    python benchmarks/fsdd_as_folder.py --fsdd data/audio-mnist --out /tmp/fsdd-folder

writes ``<out>/digits/<digit>/<recording>`` (one sub-folder per class) and ``<out>/new/`` (takes 45-49
of every digit and speaker, held back for ``predict.py``). To exercise the decoder as a user's mixed
collection would, speaker ``nicolas``'s recordings become 16 kHz stereo FLAC (the right channel at half
level) and takes 0-9 of speaker ``theo`` become MP3; the rest are copied as they are (8 kHz WAV). ``--fsdd`` is an installed
FSDD folder (``sh download_data.sh`` puts it in ``data/audio-mnist``) with ``recordings/*.wav``.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RECORDING = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
NEW_TAKES = range(45, 50)
FLAC_SPEAKER, FLAC_RATE = "nicolas", 16000
MP3_SPEAKER, MP3_TAKES = "theo", range(10)


def write_layout(fsdd: Path, out: Path) -> dict[str, int]:
    """Write the two folders; returns how many files went to each format and to ``new``."""
    counts = {"wav": 0, "flac": 0, "mp3": 0, "new": 0}
    recordings = sorted((fsdd / "recordings").glob("*.wav"))
    if not recordings:
        raise SystemExit(f"no FSDD recordings in {fsdd / 'recordings'}: install FSDD with `sh download_data.sh`")
    for path in recordings:
        match = RECORDING.match(path.name)
        if match is None:
            continue
        digit, speaker, take = match.group(1), match.group(2), int(match.group(3))
        if take in NEW_TAKES:
            (out / "new").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / "new" / path.name)
            counts["new"] += 1
            continue
        folder = out / "digits" / digit
        folder.mkdir(parents=True, exist_ok=True)
        x, rate = sf.read(path, dtype="float64")
        if speaker == FLAC_SPEAKER:
            y = soxr.resample(x, rate, FLAC_RATE)
            sf.write(folder / f"{path.stem}.flac", np.stack([y, 0.5 * y], axis=1), FLAC_RATE)
            counts["flac"] += 1
        elif speaker == MP3_SPEAKER and take in MP3_TAKES:
            sf.write(folder / f"{path.stem}.mp3", x, rate, format="MP3")
            counts["mp3"] += 1
        else:
            shutil.copyfile(path, folder / path.name)
            counts["wav"] += 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsdd", type=Path, required=True, help="an installed FSDD folder (with recordings/)")
    parser.add_argument("--out", type=Path, required=True, help="where digits/ and new/ are written")
    args = parser.parse_args(argv)
    counts = write_layout(args.fsdd, args.out)
    print(f"{args.out / 'digits'}: {counts['wav']} WAV, {counts['flac']} FLAC, {counts['mp3']} MP3; "
          f"{args.out / 'new'}: {counts['new']} WAV held back")


if __name__ == "__main__":
    main(sys.argv[1:])
