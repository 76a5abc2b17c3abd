#!/bin/sh
# Download datasets into data/. Usage: sh download_data.sh [fsdd|gtzan|fma ...]   (default: fsdd)
#   FSDD_URL      source of the FSDD zip: any URL (file:// too) or a local path (offline mirrors)
#   FSDD_VERSION  1.0.8 (default; 1,500 recordings, into data/audio-mnist) or 1.0.10 (3,000)
#   FSDD_DIR      destination (default data/audio-mnist for 1.0.8, data/fsdd-v1.0.10 for 1.0.10)
#   GTZAN_URL     source of genres.tar.gz (default the Hugging Face copy marsyas/gtzan): URL, file:// or a path
#   GTZAN_DIR     destination (default data/gtzan)
#   FMA_URL       base holding fma_metadata.zip, fma_small.zip, ...: URL, file:// folder or a local folder
#   FMA_SUBSETS   FMA audio subsets, e.g. "small medium" (default small); FMA_DIR destination (default data/fma)
set -e
cd "$(dirname "$0")"
[ -x "${VENV:-.venv}/bin/python" ] || sh setup_env.sh
PY="${VENV:-.venv}/bin/python"
[ $# -gt 0 ] || set -- fsdd
for dataset in "$@"; do
    case "$dataset" in
        fsdd|audio_mnist)
            "$PY" -m corpora.download fsdd --version "${FSDD_VERSION:-1.0.8}" \
                ${FSDD_DIR:+--dest "$FSDD_DIR"} ${FSDD_URL:+--source "$FSDD_URL"} ;;
        gtzan)
            "$PY" -m corpora.download gtzan ${GTZAN_DIR:+--dest "$GTZAN_DIR"} ${GTZAN_URL:+--source "$GTZAN_URL"} ;;
        fma)
            # shellcheck disable=SC2086
            "$PY" -m corpora.download fma --subsets ${FMA_SUBSETS:-small} ${FMA_DIR:+--dest "$FMA_DIR"} \
                ${FMA_URL:+--base "$FMA_URL"} ;;
        *) echo "unknown dataset '$dataset' (known: fsdd, gtzan, fma)" >&2; exit 2 ;;
    esac
done
