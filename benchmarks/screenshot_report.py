"""Screenshot of the HTML report in headless Chromium, to look at what a reader sees.

    apt-get install -y chromium                      # Debian's package; not needed by the tests
    python benchmarks/screenshot_report.py results/index.html --out /tmp/report.png [--width 1280] [--tile 2000]

Opens the page from disk with every network request refused (``--host-resolver-rules``), so what shows is
what the page itself holds, in a ``width`` x ``height`` CSS-pixel window (tall enough for the whole page
by default), cuts the empty background off the bottom, and prints the PNG's path. With ``--tile H`` the
shot is also cut into pieces ``<out>_1.png``, ``<out>_2.png``, ... of ``H`` pixels each (an image viewer
shrinks one very tall image until nothing can be read), and their paths are printed too. Exit 1 if
Chromium wrote no image. (A ``#fragment`` in the URL is no way to see one section: headless Chromium
then shot an empty window.)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium(explicit: str | None) -> str:
    """The Chromium executable: ``explicit`` or the first of :data:`CANDIDATES` on ``PATH``."""
    for name in ([explicit] if explicit else CANDIDATES):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(f"no Chromium found (tried {', '.join([explicit] if explicit else CANDIDATES)}); "
                     "install Debian's: apt-get install -y chromium")


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 16000, chromium: str | None = None,
               timeout: float = 120.0) -> Path:
    """Render ``page`` (an HTML file) in headless Chromium and save a ``width`` x ``height`` screenshot to
    ``out`` (PNG), the rows of plain background below the page cut off; return ``out``. Raises
    ``RuntimeError`` with Chromium's output if no image was written."""
    page, out = Path(page).resolve(), Path(out).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"no page at {page}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [find_chromium(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
               "--virtual-time-budget=10000",  # let images decode and the page settle before the shot
               "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the page must hold everything it shows
               f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri()]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot (exit {run.returncode}):\n{run.stderr[-3000:]}")
    with Image.open(out) as shot:
        shot = shot.convert("RGB")
    # the last row that differs from the bottom-right pixel (the page background), plus a margin
    background = Image.new("RGB", shot.size, shot.getpixel((shot.width - 1, shot.height - 1)))
    box = ImageChops.difference(shot, background).getbbox()
    shot.crop((0, 0, shot.width, min(shot.height, (box[3] if box else 1) + 40))).save(out)
    return out


def tiles(shot: Path, tile_height: int) -> list[Path]:
    """Cut ``shot`` into ``<stem>_1.png``, ``<stem>_2.png``, ... of ``tile_height`` pixels (the last one
    shorter) next to it; return their paths."""
    paths = []
    with Image.open(shot) as image:
        for i, top in enumerate(range(0, image.height, tile_height), start=1):
            path = shot.with_name(f"{shot.stem}_{i}.png")
            image.crop((0, top, image.width, min(image.height, top + tile_height))).save(path)
            paths.append(path)
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("page", type=Path, help="the HTML file, e.g. results/index.html")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "report_screenshot.png")
    p.add_argument("--width", type=int, default=1280, help="window width (CSS pixels)")
    p.add_argument("--height", type=int, default=16000,
                   help="window height (CSS pixels): the most of the page the shot covers")
    p.add_argument("--tile", type=int, default=None, help="also cut the shot into pieces this many pixels high")
    p.add_argument("--chromium", default=None, help="the browser executable (default: chromium on PATH)")
    args = p.parse_args(argv)
    try:
        path = screenshot(args.page, args.out, args.width, args.height, args.chromium)
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    for piece in tiles(path, args.tile) if args.tile else []:
        print(piece)
    return 0


if __name__ == "__main__":
    sys.exit(main())
