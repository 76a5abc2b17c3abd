"""main.py and produce_figures.py called in the test process, on one local Ray per pytest process.

A ``python main.py`` subprocess of a 2-trial, 1-epoch grid took 13.4 s on the 2-core machine (19
CPU-seconds in all), 7 s of it imports (2.9 s), starting a local Ray (3 s) and shutting it down (1.3 s).
The end-to-end tests that do not signal or kill the driver call :func:`main_py` instead:
``main.main(argv)`` with its output captured, on a Ray of ``RAY_CPUS`` CPUs started once (the way
``main.py`` starts it: ``tuning.runner.init_ray``, which ``main.main`` then finds running) and shut
down at the end of the session (``conftest.pytest_sessionfinish``). The tests that interrupt,
``kill -9`` or join a cluster still run ``main.py`` as a process of its own.
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path

# The CPUs of this process's Ray: the machine's share of this pytest-xdist worker (run_tests.sh runs one
# per CPU, at most 4). On 2 cores that is 1 each: Tune then reuses one trial process for all of a run's
# trials (each new one costs about 3.5 CPU-seconds of imports), and two workers' trials never outnumber
# the cores. The --num_cpus of the tests' command lines only counts where main.py starts its own Ray.
RAY_CPUS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def main_py(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python main.py *args`` in ``root``, run as ``main.main(list(args))`` in this process, on the Ray
    running here (:func:`ray_of`) or else a Ray of ``RAY_CPUS`` CPUs. Returns a ``CompletedProcess`` with
    the exit status (argparse's ``SystemExit`` included) and the text printed to stdout and stderr
    (Tune's own progress tables included)."""
    import main
    from tuning.runner import init_ray

    init_ray(None, RAY_CPUS)  # does nothing once Ray runs
    return _call(root, main.main, ["main.py", *args])


@contextlib.contextmanager
def ray_of(cpus: int):
    """For a test about concurrency: the :func:`main_py` calls inside run on a Ray of exactly ``cpus``
    CPUs, started for them and ended after (the next call starts ``RAY_CPUS`` again)."""
    from tuning.runner import init_ray

    shutdown()
    init_ray(None, cpus)
    try:
        yield
    finally:
        shutdown()


def produce_figures(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python produce_figures.py *args`` in ``root``, run as ``produce_figures.main`` in this process."""
    import produce_figures

    return _call(root, produce_figures.main, ["produce_figures.py", *args])


def _call(root: Path, entry, argv: list[str]) -> subprocess.CompletedProcess:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(root), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = entry(argv[1:])
        except SystemExit as exit_:  # argparse's errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def shutdown() -> None:
    """End the Ray this process started, if any."""
    import sys

    if "ray" in sys.modules:
        import ray

        ray.shutdown()
