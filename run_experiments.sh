#!/bin/sh
# The paper's experiments at full budget (meant for a GPU box or a Ray cluster; reruns resume).
# Datasets that are not downloaded are skipped with a message. Budgets: MAX_EPOCHS (synthetic),
# AUDIO_MAX_EPOCHS (FSDD), GTZAN_MAX_EPOCHS, FMA_MAX_EPOCHS, ESC50_MAX_EPOCHS, AUDIOMNIST_MAX_EPOCHS;
# NUM_SAMPLES for all. Data folders: DATA_DIR (FSDD), GTZAN_DIR, FMA_DIR, ESC50_DIR, AUDIOMNIST_DIR.
# MAIN_ARGS: more main.py flags for every grid, e.g. MAIN_ARGS="--address=HEAD:6379 --storage=/shared/rr"
# or a smoke budget MAIN_ARGS="--set n_samples=150" (split on spaces).
set -e
cd "$(dirname "$0")"
PY="${VENV:-.venv}/bin/python"
ROOT=${RAY_ROOT_DIR:-$(pwd)/ray_results}
DATA=${DATA_DIR:-$(pwd)/data/audio-mnist}
NUM_SAMPLES=${NUM_SAMPLES:-5}
MAX_EPOCHS=${MAX_EPOCHS:-10000}
MAIN_ARGS=${MAIN_ARGS:-}
"$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="$MAX_EPOCHS" --name=time_frequency \
    --ray_root_dir="$ROOT" $MAIN_ARGS --data_dir="$DATA"
if [ -d "$DATA/recordings" ]; then
    for name in audio_mnist audio_mnist_reference; do
        "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${AUDIO_MAX_EPOCHS:-1000}" --name=$name \
            --ray_root_dir="$ROOT" $MAIN_ARGS --data_dir="$DATA"
    done
else
    echo "FSDD not found at $DATA: skipping audio_mnist (sh download_data.sh fetches it)"
fi
# GTZAN and FMA: whole grids are GPU work (fractional GPUs are picked automatically).
if [ -d "${GTZAN_DIR:-data/gtzan}" ]; then
    "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${GTZAN_MAX_EPOCHS:-200}" --name=gtzan \
        --ray_root_dir="$ROOT" $MAIN_ARGS --data_dir="$(cd "${GTZAN_DIR:-data/gtzan}" && pwd)"
else
    echo "GTZAN not found at ${GTZAN_DIR:-data/gtzan}: skipping gtzan (sh download_data.sh gtzan fetches it)"
fi
if [ -d "${FMA_DIR:-data/fma}" ]; then
    "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${FMA_MAX_EPOCHS:-100}" --name=fma \
        --ray_root_dir="$ROOT" $MAIN_ARGS --data_dir="$(cd "${FMA_DIR:-data/fma}" && pwd)"
else
    echo "FMA not found at ${FMA_DIR:-data/fma}: skipping fma (sh download_data.sh fma fetches it)"
fi
# The DMEL paper's Tables 2 and 3 (100 epochs, as the paper): ESC-50 on its random split and on the official folds,
# AudioMNIST (60 speakers; the grid audiomnist60, not FSDD's audio_mnist).
if [ -d "${ESC50_DIR:-data/esc50}" ]; then
    for name in esc50 esc50_folds; do
        "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${ESC50_MAX_EPOCHS:-100}" --name=$name \
            --ray_root_dir="$ROOT" $MAIN_ARGS --data_dir="$(cd "${ESC50_DIR:-data/esc50}" && pwd)"
    done
else
    echo "ESC-50 not found at ${ESC50_DIR:-data/esc50}: skipping esc50 (sh download_data.sh esc50 fetches it)"
fi
if [ -d "${AUDIOMNIST_DIR:-data/audiomnist60}" ]; then
    "$PY" main.py --num_samples="$NUM_SAMPLES" --max_epochs="${AUDIOMNIST_MAX_EPOCHS:-100}" --name=audiomnist60 \
        --ray_root_dir="$ROOT" $MAIN_ARGS --data_dir="$(cd "${AUDIOMNIST_DIR:-data/audiomnist60}" && pwd)"
else
    echo "AudioMNIST not found at ${AUDIOMNIST_DIR:-data/audiomnist60}: skipping audiomnist60" \
        "(sh download_data.sh audiomnist fetches it)"
fi
