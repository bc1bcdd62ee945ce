#!/usr/bin/env bash
# The main job: every notebook headless on the embedded default data, reports into reports/.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
# shipped models (data/models, docs/models.md): recompute each headline metric first; the index
# that `wormlab run` writes shows the table. Smoke runs skip it. A failed verify fails the job at
# the end (a verify skipped because its held-out data is absent on this machine does not).
verify_rc=0
if [[ " $* " != *" --smoke "* ]]; then
    "$VENV/bin/wormlab" models verify --out "${WORMLAB_REPORTS:-$ROOT/reports}/models_verify.json" \
        || verify_rc=$?
fi
"$VENV/bin/wormlab" run --all "$@"
exit "$verify_rc"
