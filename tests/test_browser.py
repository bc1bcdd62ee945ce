"""JupyterLab in headless Chromium: every notebook's main widget reacts to a change.

Users work in JupyterLab, so this drives the real thing: one JupyterLab server on localhost for
the module, Debian's Chromium through Playwright (no browser download). 00_connectome runs as
shipped (Run All, then dropdown changes). For the other notebooks a tiny notebook written into
the server's temp folder imports the public panel from ``widgets/<x>.py``, builds it on small
synthetic inputs and displays it; the test then changes one control through the DOM (dropdown,
slider readout, button, tab), waits until the panel's output changes and asserts it did; a
traceback anywhere in the notebook (cell or widget output) fails the test. Before/after
screenshots of step i land in reports/browser/<name>-<i>-before.png / -after.png.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from wormlab.paths import project_root, reports_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.slow]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
TOKEN = "wormlab-test"

KERNEL_IDLE = """(() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k && k.status === 'idle';
})()"""
# a traceback anywhere in the notebook (cell or widget Output): JupyterLab renders errors as
# stderr text
TRACEBACK = """(() => [...document.querySelectorAll(
    '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(e => e.innerText).filter(t => t.includes('Traceback')).join('\\n'))()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shots() -> Path:
    d = reports_dir() / "browser"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/setup.sh as root (apt-get chromium)")
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(project_root() / "notebooks" / "00_connectome.ipynb", work)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(project_root())}
    # a kernel started with MPLBACKEND=Agg skips the inline backend (as wormlab.notebooks does)
    env.pop("MPLBACKEND", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}",
         "--expose-app-in-browser", "--ServerApp.disable_check_xsrf=True",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode(errors="replace")) from None
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start within 90 s")
    yield url, work
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    yield b
    b.close()
    pw.stop()


def _shutdown_kernels(url: str) -> None:
    """Free the 2 cores for the next notebook: stop every kernel the server runs."""
    req = urllib.request.Request(f"{url}/api/kernels?token={TOKEN}")
    for k in json.loads(urllib.request.urlopen(req, timeout=10).read()):
        urllib.request.urlopen(urllib.request.Request(
            f"{url}/api/kernels/{k['id']}?token={TOKEN}", method="DELETE"), timeout=30)


def _open_and_run(browser, url: str, name: str):
    """A fresh page (own workspace, so no earlier notebook is restored) with ``name`` run all."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/workspaces/{name.replace('.', '_')}/tree/{name}?token={TOKEN}",
              timeout=120_000)
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return page


def _dismiss_news(page) -> None:
    no_news = page.get_by_role("button", name="No")
    if no_news.count():
        no_news.first.click()


def _check_no_traceback(page, what: str) -> None:
    tb = page.evaluate(TRACEBACK)
    assert not tb, f"{what}: the notebook shows a traceback:\n{tb[-3000:]}"


def _wait_idle(page, timeout_s: float = 240.0) -> None:
    page.wait_for_timeout(300)  # let a comm message reach the kernel before asking
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_s * 1000)


def _signature(loc, kind: str):
    """What the user sees of ``loc``: its images (matplotlib PNGs, exact bytes), its text, or
    its pixels (bokeh canvases)."""
    if kind == "text":
        return loc.inner_text()
    if kind == "images":
        return tuple(loc.locator("img").evaluate_all("els => els.map(e => e.src)"))
    loc.scroll_into_view_if_needed()
    return loc.screenshot(animations="disabled")


def _settled(page, loc, kind: str, what: str, timeout_s: float = 30.0):
    """The signature once two reads 1 s apart agree (late rendering must not count as change)."""
    deadline = time.time() + timeout_s
    sig = _signature(loc, kind)
    while time.time() < deadline:
        page.wait_for_timeout(1000)
        again = _signature(loc, kind)
        if again == sig:
            return sig
        sig = again
    pytest.fail(f"{what}: the output keeps changing without any control being touched")


# ------------------------------------------------------------------ tiny notebooks per widget
# Each builds one notebook's panel(s) from small inputs the library generates (all synthetic),
# tags each panel with a CSS class so the test can find it, and displays it.
CIRCUIT = """
import holoviews as hv
from IPython.display import display
from wormlab import circuit
from widgets.circuit import circuit_panel, gradient_panel

hv.extension("bokeh", inline=True)  # as 01_circuit does
net = circuit.build_network(cells=("PLML", "AVAL", "AVAR", "AVBL", "PVCL"), share="class")
p = circuit_panel(net, duration_ms=20.0)
p.add_class("wb-circuit")
display(p)
g = gradient_panel(net, "AVA", "g_ca", duration_ms=5.0)
g.add_class("wb-gradient")
display(g)
"""

SAE = """
from IPython.display import display
from wormlab import recordings as R, sae
from widgets.sae import sae_panel

rec = R.virtual_worm(R.VirtualWormConfig(seed=0, protocol=R.ProtocolConfig(duration_s=400)))
cfg = sae.ExperimentConfig(train=sae.TrainConfig(n_steps=150, eval_every=50),
                           interpret=sae.InterpretConfig(n_perm=50))
exp = sae.fit_recording(rec, cfg, show_progress=False)
p = sae_panel(exp, sae.interpret(exp), condition="10mM CuSO4")
p.add_class("wb-sae")
display(p)
"""

POSTURE = """
import numpy as np
from IPython.display import display
from wormlab import posture as P
from widgets.posture import posture_quiz_panel, posture_scrub_panel

real = [P.synthetic_recording(300, 20, 10.0, seed=1).angles]
gen = [P.synthetic_recording(300, 20, 10.0, seed=2).angles]
quiz = P.Quiz(real, gen, clip_frames=20, seed=0)
q = posture_quiz_panel(quiz, fps=10.0)
q.add_class("wb-quiz")
display(q)
act = np.random.default_rng(0).standard_normal((300, 4))
s = posture_scrub_panel({"real": (real[0], act), "generated": (gen[0], act[::-1])},
                        ["c0.0", "c0.1", "c0.2", "c0.3"], 10.0)
s.add_class("wb-scrub")
display(s)
"""

BEHAVIOUR = """
import numpy as np
from IPython.display import display
from wormlab.behaviour import Worm
from widgets.behaviour import behaviour_panel

NAMES = ("AVAL", "AVBL", "RIML", "AIBL", "RMEL")


def synthetic_worm(i, n=240):  # reversals read out by the first neuron (AVAL-like)
    rng = np.random.default_rng(i)
    rev = np.sin(np.arange(n) / 9.0 + i) > 0.4
    x = rng.normal(0, 0.3, (n, len(NAMES)))
    x[:, 0] += 2.0 * rev
    x[:, 1] -= 1.0 * rev
    return Worm(f"synthetic/w{i}", "synthetic", x, NAMES, 1.7,
                behaviour={"reversal": rev.astype(int), "curvature": rng.uniform(0.3, 0.6, n)})


p = behaviour_panel([synthetic_worm(i) for i in range(4)], models=("gnn_static", "mlp"),
                    epochs=1, window=4)
p.add_class("wb-behaviour")
display(p)
"""

BODY = """
from IPython.display import display
from wormlab import body
from widgets.body import body_panel

model = body.Surrogate(body.SurrogateConfig(hidden_channels=4, n_modes=4, n_layers=1,
                                            n_ensemble=1), frame_dt_s=0.04)  # untrained
p = body_panel(model)
p.add_class("wb-body")
display(p)
"""

ROM = """
import torch
from IPython.display import display
from wormlab import rom
from widgets.rom import rom_panel

torch.manual_seed(0)
d = rom.smoke_dataset().resample(10)
m = rom.RomModel("gru", len(d.input_names), 4, len(d.output_names))  # untrained
m.meta = {"input_names": d.input_names, "output_names": d.output_names}
p = rom_panel(m, d.subset([0, 1, 2]), duration_ms=40.0, dt_ms=d.dt_s * 1e3)
p.add_class("wb-rom")
display(p)
"""


def _write_notebook(folder: Path, name: str, source: str) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(source).strip())]
    fname = f"{name}.ipynb"
    nbformat.write(nb, folder / fname)
    return fname


def _slider_to(value: int, nth: int = 0):
    def act(page, panel):  # type into the slider's editable readout, as a user can
        readout = panel.locator(".widget-slider .widget-readout").nth(nth)
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(value))
        page.keyboard.press("Enter")
    return act


def _click(name: str):
    def act(page, panel):
        panel.get_by_role("button", name=name, exact=True).first.click()
    return act


def _nth_select(nth: int, value: str, label: bool = False):
    def act(page, panel):
        sel = panel.locator(".widget-dropdown select").nth(nth)
        sel.select_option(label=value) if label else sel.select_option(value)
    return act


def _tab(title: str):
    def act(page, panel):
        panel.get_by_role("tab", name=title).click()
    return act


def _step(panel, what, act, watch=".widget-output", nth=0, kind="images", prep=None,
          figure=True):
    """One control change. ``watch``/``nth``: the element whose change is awaited; ``kind``: "images" compares its images' data, "text" its text, "pixels"
    its screenshots (bokeh canvases); ``prep``: an action before the "before" state (e.g. open a tab); ``figure``: a
    figure must be shown before the change."""
    return dict(panel=panel, what=what, act=act, watch=watch, nth=nth, kind=kind, prep=prep,
                figure=figure)


# name -> (notebook source, steps). The posture clip is an animation, so the quiz is judged
# by its score text, not its pixels.
CASES = {
    "01_circuit": (CIRCUIT, [
        _step("wb-circuit", "target PLML -> AVBL", _nth_select(0, "AVBL"), kind="pixels"),
        _step("wb-gradient", "loss AVA -> AVB", _nth_select(0, "AVB"), kind="pixels"),
    ]),
    "04_sae": (SAE, [
        _step("wb-sae", "condition -> 1uM diacetyl", _nth_select(0, "1uM diacetyl")),
        _step("wb-sae", "button 'most selective unit'", _click("most selective unit"),
              watch=".widget-html", kind="text", figure=False),
    ]),
    "07_posture": (POSTURE, [
        _step("wb-quiz", "guess 'real'", _click("real"), watch=".widget-html", nth=-1,
              kind="text", figure=False),
        _step("wb-scrub", "frame slider 0 -> 150", _slider_to(150)),
    ]),
    "06_behaviour": (BEHAVIOUR, [
        _step("wb-behaviour", "window # slider 0 -> 40", _slider_to(40, nth=1)),
        _step("wb-behaviour", "model gnn_static -> mlp", _nth_select(1, "mlp")),
    ]),
    "02_body_surrogate": (BODY, [
        _step("wb-body", "direction forward -> backward", _nth_select(0, "backward", True)),
    ]),
    "05_rom": (ROM, [
        _step("wb-rom", "button 'simulate + predict'", _click("simulate + predict"),
              figure=False),
        _step("wb-rom", "hidden units: sequence 0 -> 1",
              _nth_select(-1, "synthetic_001_step_early", True), nth=1,
              prep=_tab("hidden units")),
    ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_widget_reacts_in_jupyterlab(lab, browser, name):
    """Change one control of each panel in the browser; its output must change."""
    url, work = lab
    source, steps = CASES[name]
    fname = _write_notebook(work, f"wb_{name}", source)
    shots = _shots()
    for old in shots.glob(f"{name}-*.png"):
        old.unlink()
    page = _open_and_run(browser, url, fname)
    try:
        first_panel = page.locator(f".{steps[0]['panel']}")
        deadline = time.time() + 300
        while not first_panel.count() and time.time() < deadline:
            _check_no_traceback(page, name)
            page.wait_for_timeout(500)
        assert first_panel.count(), f"{name}: the panel never appeared"
        _wait_idle(page)
        _check_no_traceback(page, name)
        _dismiss_news(page)
        for i, st in enumerate(steps):
            what, kind = f"{name}/{st['what']}", st["kind"]
            panel = page.locator(f".{st['panel']}")
            if st["prep"]:
                st["prep"](page, panel)
                _wait_idle(page)
            target = panel.locator(st["watch"]).nth(st["nth"])
            if st["figure"]:  # a figure (or bokeh canvas) must be there to compare
                target.locator("img, canvas").first.wait_for(timeout=120_000)
            before = _settled(page, target, kind, what)
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"{name}-{i}-before.png"))
            st["act"](page, panel)
            deadline = time.time() + 180
            while _signature(target, kind) == before and time.time() < deadline:
                _check_no_traceback(page, what)
                page.wait_for_timeout(500)
            _wait_idle(page)
            _check_no_traceback(page, what)
            after = _settled(page, target, kind, what)
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"{name}-{i}-after.png"))
            assert after != before, f"{what} did not change the panel's output"
    finally:
        page.close()
        _shutdown_kernels(url)
    assert all((shots / f"{name}-{i}-after.png").stat().st_size > 10_000
               for i in range(len(steps)))


def test_connectome_widget_in_jupyterlab(lab, browser):
    from playwright.sync_api import expect

    url, _ = lab
    shots = _shots()
    page = _open_and_run(browser, url, "00_connectome.ipynb")
    try:
        summary = page.locator(".wormlab-connectome-summary")
        expect(summary).to_contain_text("AVAL (cook2019)", timeout=300_000)
        page.screenshot(path=str(shots / "00_connectome_before.png"))
        dataset_select = page.locator(".widget-dropdown select").nth(0)
        dataset_select.select_option("witvliet_8")
        expect(summary).to_contain_text("AVAL (witvliet_8)", timeout=60_000)
        neuron_select = page.locator(".widget-dropdown select").nth(1)
        neuron_select.select_option("AVBL")
        expect(summary).to_contain_text("AVBL (witvliet_8)", timeout=60_000)
        assert "class AVB, inter neuron" in summary.inner_text()
        chart = page.locator(".widget-output img")
        expect(chart).to_have_count(1, timeout=60_000)  # the partner chart was redrawn
        page.wait_for_timeout(1000)
        page.wait_for_function(KERNEL_IDLE, timeout=120_000)  # the partner chart redrawn
        _dismiss_news(page)
        summary.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "00_connectome_widget.png"))
    finally:
        page.close()
        _shutdown_kernels(url)
    assert (shots / "00_connectome_widget.png").stat().st_size > 10_000
