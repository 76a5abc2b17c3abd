"""docs/extending.md followed to the letter: a toy front-end, a toy corpus and a toy experiment, each one
module (or function) plus its registration, written into a copy of the project exactly as the page shows
them; then ``main.py --list`` shows all three and ``main.py --name=toy`` trains them through Ray Tune."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STEP = re.compile(r"^(Create|Append to) `([^`]+)`:\n\n```\w*\n(.*?)```", re.S | re.M)


def doc_steps(root: Path) -> list[tuple[str, str, str]]:
    """``(action, path, text)`` of every "Create `path`:" / "Append to `path`:" block of docs/extending.md."""
    return STEP.findall((root / "docs" / "extending.md").read_text())


@pytest.fixture(scope="module")
def project(root, tmp_path_factory) -> Path:
    """A copy of the project's files (tracked and new, not ignored) with the page's steps applied."""
    dest = tmp_path_factory.mktemp("extended") / "project"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (root / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, dest / name)
    for action, path, text in doc_steps(root):
        target = dest / path
        if action == "Create":
            assert not target.exists(), f"the page creates {path}, which exists"
            target.write_text(text)
        else:
            target.write_text(target.read_text().rstrip("\n") + "\n\n\n" + text)
    return dest


def run(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, timeout=timeout)


def test_the_page_has_one_step_per_registration(root):
    assert [(action, path) for action, path, _ in doc_steps(root)] == [
        ("Create", "models/toy_bands.py"), ("Append to", "models/__init__.py"),
        ("Create", "corpora/toy_tones.py"), ("Append to", "corpora/__init__.py"), ("Append to", "search_spaces.py")]


def test_list_shows_the_three_new_components(project):
    out = run(project, "main.py", "--list")
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"^  toy +toy_tones +2 +0\.125 +figures\.generic$", out.stdout, re.M), out.stdout
    assert re.search(r"^  toy_bands +mel +- +toy: learnable bands", out.stdout, re.M), out.stdout
    assert re.search(r"^  toy_tones +toy: two tones in noise, generated +generated$", out.stdout, re.M), out.stdout


def test_the_toy_experiment_trains_both_frontends(project):
    out = run(project, "main.py", "--name=toy", "--max_epochs=2", "--num_cpus=1", "--ray_root_dir=rr", timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 trials finished, 0 unfinished, 0 errored" in out.stdout
    last = {}
    for result in (project / "rr" / "toy").glob("*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        last[rows[-1]["config"]["variant"]["frontend"]] = rows
    assert set(last) == {"toy_bands", "gaussian"}
    toy = last["toy_bands"]
    assert [row["epoch"] for row in toy] == [0, 1] and toy[-1]["done"] and 0 <= toy[-1]["test_accuracy"] <= 1
    assert toy[-1]["frontend_band_change"] > 0  # its drift() is reported and its bands moved
    assert "lambd_est" not in toy[-1]  # DMEL's metrics belong to DMEL
    assert "frontend_band_change" not in last["gaussian"][-1] and last["gaussian"][-1]["lambd_est"] > 0
