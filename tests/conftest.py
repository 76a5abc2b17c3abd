import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# moto's recommended fake credentials, for the whole session: set before any Ray starts, so the trial
# processes of the in-process runs (tests/inprocess.py) write to the local S3 endpoint with them too, and
# no test can reach a real AWS account with the user's own credentials
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def pytest_configure(config):
    from training.loop import allow_deterministic_cublas

    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one); run with `pytest -m gpu`")
    os.environ.update(FAKE_AWS)
    allow_deterministic_cublas()  # before any test touches CUDA (torch reads it once per process)


def pytest_sessionfinish(session, exitstatus):
    from tests.inprocess import shutdown

    shutdown()


# tests that read the session's one small experiment run on one pytest-xdist worker, so it is run once
SHARED_EXPERIMENT = "tiny_experiment"
# the groups that take longest, longest first (measured sequentially: 25-135 CPU-seconds each) are handed
# out first (run_tests.sh keeps this order: --no-loadscope-reorder), so that no worker is left with one of
# them at the end while the other has nothing to do
SLOW_GROUPS = ("tests.test_cluster", "tests.test_tune", SHARED_EXPERIMENT, "tests.test_dmel_paper_tune",
               "tests.test_search", "tests.test_benchmarks", "tests.test_scripts", "tests.test_music_tune",
               "tests.test_device")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests without CUDA. For ``pytest -n N --dist loadgroup`` (run_tests.sh): the tests of a
    file stay on one worker (its module fixtures, a two-node cluster among them, are built once), and
    every test that reads ``tiny_experiment`` joins one group."""
    import torch

    skip = None if torch.cuda.is_available() else pytest.mark.skip(reason="no usable CUDA GPU here")
    for item in items:
        if skip and "gpu" in item.keywords:
            item.add_marker(skip)
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    items.sort(key=_slow_first)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """Stop when pytest-xdist's groups did not take. xdist carries them in the test ids (``<id>@<group>``),
    which pytest 9.2 no longer lets it rewrite (pytest-xdist#1386): the tests of a file would be spread
    over the workers one by one, their module fixtures (a two-node cluster) built on each."""
    if node.config.getvalue("dist") == "loadgroup" and ids and not any("@" in i for i in ids):
        pytest.exit("pytest-xdist's --dist loadgroup did not group the tests: install the pytest and pytest-xdist "
                    "of requirements.txt (sh setup_env.sh), or run serially (-n 0)", returncode=4)


def _group(item) -> str:
    return SHARED_EXPERIMENT if SHARED_EXPERIMENT in item.fixturenames else item.module.__name__


def _slow_first(item) -> int:
    group = _group(item)
    return SLOW_GROUPS.index(group) if group in SLOW_GROUPS else len(SLOW_GROUPS)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def s3():
    """A local S3 endpoint (moto's server) with an empty bucket ``results`` (credentials: ``FAKE_AWS``);
    yields ``("host:port", filesystem)``."""
    import pyarrow.fs
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"127.0.0.1:{port}"
    fs = pyarrow.fs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1",
                                 access_key="testing", secret_key="testing", allow_bucket_creation=True)
    fs.create_dir("results")
    yield endpoint, fs
    server.stop()


@pytest.fixture(scope="session")
def tiny_experiment(root, tmp_path_factory) -> Path:
    """A finished time_frequency experiment run by main.py (``TINY_GRID``: 8 trials of 2 epochs on 150
    signals, about 10 s), run once per pytest session; returns the storage folder (the experiment is
    ``<storage>/time_frequency``). Tests only read it (copy it to change it)."""
    from tests.fixtures import TINY_GRID
    from tests.inprocess import main_py

    storage = tmp_path_factory.mktemp("tiny") / "rr"
    run = main_py(root, *TINY_GRID, f"--ray_root_dir={storage}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return storage


@pytest.fixture(scope="session")
def tiny_figures(root, tiny_experiment, tmp_path_factory) -> tuple[Path, str]:
    """``produce_figures.py --split=test`` over ``tiny_experiment``, run once per session (4 CPU-seconds a
    call): the results folder (``figures/``, ``tables/``, ``index.html``) and what it printed. Tests
    only read it."""
    from tests.inprocess import produce_figures

    out = tmp_path_factory.mktemp("tiny_figures") / "results"
    run = produce_figures(root, "--split=test", f"--ray_root_dir={tiny_experiment}", f"--results_dir={out}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, run.stdout
