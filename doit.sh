#!/bin/sh
# Everything: set up, download the data, run every experiment, produce every figure and table.
set -e
cd "$(dirname "$0")"
sh setup_env.sh
sh download_data.sh
sh run_experiments.sh
"${VENV:-.venv}/bin/python" produce_figures.py --split=test --ray_root_dir="${RAY_ROOT_DIR:-$(pwd)/ray_results}" \
    --data_dir="${DATA_DIR:-$(pwd)/data/audio-mnist}"
