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
pip_install -e ".[neuron,dev,atlas]"  # atlas: wormneuroatlas (GPL-3), optional extra
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
# The NEURON path (wormlab.circuit.reference: NEURON references, rom's NEURON generator, the
# equivalence tests that CI runs): the Python packages come with the extra 'neuron' above;
# jNeuroML needs Java, nrnivmodl a C++ compiler and make. Install them (root, Debian) or stop.
neuron_needs=()
command -v java >/dev/null 2>&1 || neuron_needs+=(openjdk-17-jre-headless)
command -v make >/dev/null 2>&1 || neuron_needs+=(make)
{ command -v c++ || command -v g++; } >/dev/null 2>&1 || neuron_needs+=(g++)
if [ "${#neuron_needs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -q && apt-get install -y -q "${neuron_needs[@]}") >/dev/null
  else
    echo "setup: the NEURON path needs ${neuron_needs[*]} (missing; not root on Debian, so" \
      "not installed here). Install them, then rerun scripts/setup.sh." >&2
    exit 1
  fi
fi
# The adapter's own check (the one the tests use): stop here rather than skip tests later.
"$VENV/bin/python" - <<'PY'
import sys

from wormlab.circuit.reference import FIX, neuron_missing

reason = neuron_missing()
if reason:
    sys.exit(f"setup: the NEURON/c302 stack is incomplete: {reason}. Fix: {FIX}")
PY
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
touch "$VENV/.wormlab-installed"
echo "setup: environment ready in $VENV"
