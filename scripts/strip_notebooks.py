"""Strip outputs and execution counts from notebooks (they are committed clean)."""

import sys
from pathlib import Path

import nbformat

root = Path(__file__).resolve().parents[1]
paths = [Path(p) for p in sys.argv[1:]] or sorted((root / "notebooks").glob("*.ipynb"))
for path in paths:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    print(f"stripped {path.name}")
