#!/bin/sh
# The paper's experiments at full budget (meant for a GPU box or a Ray cluster; reruns resume).
# Datasets that are not downloaded are skipped with a message. Budgets: MAX_EPOCHS (synthetic),
# AUDIO_MAX_EPOCHS (FSDD), GTZAN_MAX_EPOCHS, FMA_MAX_EPOCHS; NUM_SAMPLES for all.
set -e
cd "$(dirname "$0")"
PY="${VENV:-.venv}/bin/python"
ROOT=${RAY_ROOT_DIR:-$(pwd)/ray_results}
DATA=${DATA_DIR:-$(pwd)/data/audio-mnist}
NUM_SAMPLES=${NUM_SAMPLES:-5}
MAX_EPOCHS=${MAX_EPOCHS:-10000}
"$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="$MAX_EPOCHS" --name=time_frequency \
    --ray_root_dir="$ROOT" --data_dir="$DATA"
if [ -d "$DATA/recordings" ]; then
    for name in audio_mnist audio_mnist_reference; do
        "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${AUDIO_MAX_EPOCHS:-1000}" --name=$name \
            --ray_root_dir="$ROOT" --data_dir="$DATA"
    done
else
    echo "FSDD not found at $DATA: skipping audio_mnist (sh download_data.sh fetches it)"
fi
# GTZAN and FMA: whole grids are GPU work (fractional GPUs are picked automatically).
if [ -d "${GTZAN_DIR:-data/gtzan}" ]; then
    "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${GTZAN_MAX_EPOCHS:-200}" --name=gtzan \
        --ray_root_dir="$ROOT" --data_dir="$(cd "${GTZAN_DIR:-data/gtzan}" && pwd)"
else
    echo "GTZAN not found at ${GTZAN_DIR:-data/gtzan}: skipping gtzan (sh download_data.sh gtzan fetches it)"
fi
if [ -d "${FMA_DIR:-data/fma}" ]; then
    "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${FMA_MAX_EPOCHS:-100}" --name=fma \
        --ray_root_dir="$ROOT" --data_dir="$(cd "${FMA_DIR:-data/fma}" && pwd)"
else
    echo "FMA not found at ${FMA_DIR:-data/fma}: skipping fma (sh download_data.sh fma fetches it)"
fi
