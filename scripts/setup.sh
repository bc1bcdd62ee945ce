#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment. Idempotent: a second run only checks.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
pip_install() {  # this machine's pip config names an absent index: drop its warning spam
  "$VENV/bin/python" -m pip --disable-pip-version-check -q install "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:///opt/" || true; }
  return "${PIPESTATUS[0]}"
}
# torch FIRST: the CPU wheel on this machine's disk; an unpinned torch pulls a multi-GB CUDA build.
pip_install "torch==2.13.0"
pip_install -e ".[neuron,dev]"
# Data-only packages whose code downloads at run time: their data files are all we read.
# leiferlab-wbi: the Leifer eigenworm basis; wormpose: a Gaussian mixture of real postures
# (never imported: it needs TensorFlow).
pip_install --no-deps "leiferlab-wbi==0.2.3" "wormpose==1.3.0"
# Headless Chromium for the JupyterLab browser test (Debian's package; browser downloads fail here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -q && apt-get install -y -q chromium) >/dev/null
  else
    echo "setup: chromium missing and not root: tests/test_browser.py will fail" >&2
  fi
fi
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
touch "$VENV/.wormlab-installed"
echo "setup: environment ready in $VENV"
