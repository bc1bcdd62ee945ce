#!/usr/bin/env bash
# The main job: every notebook headless on the embedded default data, reports into reports/.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
exec "$VENV/bin/wormlab" run --all "$@"
