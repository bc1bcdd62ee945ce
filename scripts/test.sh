#!/usr/bin/env bash
# The test suite (CI runs exactly this through `make test`).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest --basetemp="$ROOT/.cache/pytest" "$@"
