#!/bin/sh
# Set up the environment and run the test suite (CI runs exactly this).
set -e
cd "$(dirname "$0")"
sh setup_env.sh
# one pytest process per CPU, at most 4 (each may start a local Ray); a file's tests stay together, and
# the slowest files go first (tests/conftest.py). Options given to this script come last and win:
# `sh run_tests.sh -n 0` runs serially.
exec "${VENV:-.venv}/bin/python" -m pytest -q -n auto --maxprocesses=4 --dist loadgroup --no-loadscope-reorder \
    --durations=15 "$@" tests
