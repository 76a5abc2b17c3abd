#!/bin/sh
# Set up, run the main job on built-in data at a CPU budget, and draw the figures (~10 min on 2 cores).
# The synthetic time_frequency grid always; FSDD (audio_mnist) too when data/audio-mnist exists.
set -e
cd "$(dirname "$0")"
sh setup_env.sh
PY="${VENV:-.venv}/bin/python"
ROOT=${RAY_ROOT_DIR:-$(pwd)/ray_results/quick}
DATA=${DATA_DIR:-$(pwd)/data/audio-mnist}
"$PY" main.py --name=time_frequency --num_samples=1 --max_epochs=10 --set n_samples=600 \
    --ray_root_dir="$ROOT" --data_dir="$DATA"
if [ -d "$DATA/recordings" ]; then
    for name in audio_mnist audio_mnist_reference; do
        "$PY" main.py --name=$name --num_samples=1 --max_epochs=15 --ray_root_dir="$ROOT" --data_dir="$DATA"
    done
else
    echo "FSDD not found at $DATA: skipping audio_mnist (sh download_data.sh fetches it)"
fi
"$PY" produce_figures.py --split=test --ray_root_dir="$ROOT" --data_dir="$DATA"
