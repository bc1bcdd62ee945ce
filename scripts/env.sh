# Environment shared by `make reports`, `make test` and CI: keep every cache inside the project.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VENV="${VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
export NEURON_HOME="$VENV"              # jNeuroML's findNeuronHome needs it (shared/DATA.md)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"   # 2 cores: one torch thread (shared/DATA.md)
export WORMLAB_THREADS="${WORMLAB_THREADS:-1}"
export TORCHINDUCTOR_CACHE_DIR="$ROOT/.cache/torchinductor"
export IPYTHONDIR="$ROOT/.cache/ipython"
export JUPYTER_CONFIG_DIR="$ROOT/.cache/jupyter/config"
export JUPYTER_DATA_DIR="$ROOT/.cache/jupyter/data"
export JUPYTER_RUNTIME_DIR="$ROOT/.cache/jupyter/runtime"
export MPLCONFIGDIR="$ROOT/.cache/matplotlib"
export PYDEVD_DISABLE_FILE_VALIDATION=1
mkdir -p "$ROOT/.cache"
