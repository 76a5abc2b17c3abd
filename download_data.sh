#!/bin/sh
# Download datasets into data/. Usage: sh download_data.sh [fsdd|gtzan|fma|esc50|audiomnist ...]   (default: fsdd)
# Every download resumes after an interruption, verifies the content and installs atomically; a rerun does nothing.
#   FSDD_URL        source of the FSDD zip: any URL (file:// too) or a local path (offline mirrors)
#   FSDD_VERSION    1.0.8 (default; 1,500 recordings, into data/audio-mnist) or 1.0.10 (3,000)
#   FSDD_DIR        destination (default data/audio-mnist for 1.0.8, data/fsdd-v1.0.10 for 1.0.10)
#   GTZAN_URL       source of genres.tar.gz (default the Hugging Face copy marsyas/gtzan): URL, file:// or a path
#   GTZAN_DIR       destination (default data/gtzan)
#   FMA_URL         base holding fma_metadata.zip, fma_small.zip, ...: URL, file:// folder or a local folder
#   FMA_SUBSETS     FMA audio subsets, e.g. "small medium" (default small); FMA_DIR destination (default data/fma)
#   ESC50_URL       ESC-50 repository zip (default github.com/karolpiczak/ESC-50, master): URL, file:// or a path
#   ESC50_DIR       destination (default data/esc50)
#   AUDIOMNIST_URL  AudioMNIST repository zip, ~1 GB (default github.com/soerenab/AudioMNIST, master)
#   AUDIOMNIST_DIR  destination (default data/audiomnist60; the grid is audiomnist60, not FSDD's audio_mnist)
set -e
cd "$(dirname "$0")"
[ -x "${VENV:-.venv}/bin/python" ] || sh setup_env.sh
PY="${VENV:-.venv}/bin/python"
[ $# -gt 0 ] || set -- fsdd
for dataset in "$@"; do
    case "$dataset" in
        fsdd|audio_mnist)
            "$PY" -m corpora fsdd --version "${FSDD_VERSION:-1.0.8}" \
                ${FSDD_DIR:+--dest "$FSDD_DIR"} ${FSDD_URL:+--source "$FSDD_URL"} ;;
        gtzan)
            "$PY" -m corpora gtzan ${GTZAN_DIR:+--dest "$GTZAN_DIR"} ${GTZAN_URL:+--source "$GTZAN_URL"} ;;
        fma)
            # shellcheck disable=SC2086
            "$PY" -m corpora fma --subsets ${FMA_SUBSETS:-small} ${FMA_DIR:+--dest "$FMA_DIR"} \
                ${FMA_URL:+--base "$FMA_URL"} ;;
        esc50|esc-50)
            "$PY" -m corpora esc50 ${ESC50_DIR:+--dest "$ESC50_DIR"} ${ESC50_URL:+--source "$ESC50_URL"} ;;
        audiomnist|audiomnist60)
            "$PY" -m corpora audiomnist ${AUDIOMNIST_DIR:+--dest "$AUDIOMNIST_DIR"} \
                ${AUDIOMNIST_URL:+--source "$AUDIOMNIST_URL"} ;;
        *) echo "unknown dataset '$dataset' (known: fsdd, gtzan, fma, esc50, audiomnist)" >&2; exit 2 ;;
    esac
done
