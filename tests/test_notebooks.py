"""Every notebook runs headless via papermill in smoke mode; a failing cell fails the test."""

import pytest

from wormlab.notebooks import list_notebooks, run_notebook
from wormlab.paths import shared_data_dir

NOTEBOOKS = list_notebooks()
# notebooks about real recordings only (no synthetic stand-in makes sense for them): without
# ../shared/data they stop at once with an error naming WORMLAB_SHARED_DATA
NEEDS_REAL_DATA = {"06_behaviour"}


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_smoke(name, tmp_path):
    if name in NEEDS_REAL_DATA and shared_data_dir() is None:
        pytest.skip(f"{name} needs the real recordings (../shared/data or WORMLAB_SHARED_DATA)")
    res = run_notebook(name, smoke=True, out_dir=tmp_path, timeout_s=900)
    if not res.ok:
        pytest.fail(f"notebook {name} failed: {res.error} (executed copy: {res.ipynb})")
    assert res.html is not None and res.html.stat().st_size > 0
    assert (tmp_path / name / "latest.html").exists()
    # reports are read offline: plotting libraries must be inlined, not fetched from a CDN
    assert "cdn.bokeh.org" not in res.html.read_text(encoding="utf-8"), f"{name}: bokeh from CDN"


def test_every_notebook_is_clean_and_parameterised():
    import nbformat

    from wormlab.notebooks import notebook_parameters, notebook_path

    assert NOTEBOOKS, "no notebooks found"
    for name in NOTEBOOKS:
        nb = nbformat.read(notebook_path(name), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), f"{name}: first code cell untagged"
        assert all(not c.outputs for c in code), f"{name}: committed with outputs"
        params = notebook_parameters(name)
        assert "smoke" in params and params["smoke"].type_name == "bool", name
        assert "seed" in params, name
