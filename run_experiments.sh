#!/bin/sh
# The paper's experiments at full budget (meant for a GPU box or a Ray cluster; reruns resume).
# Datasets that are not downloaded are skipped with a message.
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
for name in gtzan fma; do
    echo "$name: not supported yet; skipped"
done
