#!/bin/sh
# Everything: set up, download the data, run every experiment, produce every figure and table.
# DATASETS="fsdd musicnn gtzan fma" sh doit.sh also fetches GTZAN (1.2 GB) and FMA small (7.2 GB); default
# fsdd and the musicnn weights (a 29 MB wheel from PyPI) that the transfer grid reads.
# DATASETS="fsdd musicnn esc50 audiomnist" adds the DMEL paper's ESC-50 (~600 MB) and AudioMNIST (~1 GB).
set -e
cd "$(dirname "$0")"
sh setup_env.sh
# shellcheck disable=SC2086
sh download_data.sh ${DATASETS:-fsdd musicnn}
sh run_experiments.sh
"${VENV:-.venv}/bin/python" produce_figures.py --split=test --ray_root_dir="${RAY_ROOT_DIR:-$(pwd)/ray_results}" \
    --data_dir="${DATA_DIR:-$(pwd)/data/audio-mnist}"
