"""Which code produced a result: the git commit of the project, recorded by every trial.

The driver (``main.py``) passes its own version to the trials in ``$DMEL_CODE_VERSION``, so trials
on cluster nodes, which run a copy of the code without ``.git``, record it too."""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VERSION_ENV = "DMEL_CODE_VERSION"


def _git(root: Path, *args: str) -> str | None:
    try:
        run = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return run.stdout.strip() if run.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def code_version(root: str | Path = PROJECT_ROOT) -> str:
    """``git rev-parse --short HEAD`` of ``root``, plus ``-dirty`` when tracked files differ from it;
    ``"unknown"`` when git is missing or ``root`` is not the top of a git work tree (e.g. the copy of
    the code that Ray's runtime environment ships to a cluster node, which leaves ``.git`` out).
    ``$DMEL_CODE_VERSION``, when set (by the driver), is the answer for the project itself."""
    if os.environ.get(VERSION_ENV) and Path(root).resolve() == PROJECT_ROOT:
        return os.environ[VERSION_ENV]
    root = Path(root).resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:
        return "unknown"
    commit = _git(root, "rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if status else "") if status is not None else commit
