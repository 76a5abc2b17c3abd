#!/bin/sh
# Create .venv (or $VENV) and install the pinned requirements; does nothing when they are installed.
set -e
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing requirements into $VENV (torch is large: a few minutes the first time)"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r requirements.txt
    echo "$want" > "$stamp"
fi
