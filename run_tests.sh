#!/bin/sh
# Set up the environment and run the test suite (CI runs exactly this).
set -e
cd "$(dirname "$0")"
sh setup_env.sh
exec "${VENV:-.venv}/bin/python" -m pytest -q --durations=15 "$@" tests
