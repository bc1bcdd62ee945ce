"""JupyterLab in headless Chromium: 00_connectome runs and its widget reacts to a change.

Users work in JupyterLab, so this drives the real thing: a JupyterLab server on localhost,
Debian's Chromium through Playwright (no browser download), Run All, then a dropdown change.
A screenshot lands in reports/browser/.
"""

import os
import shutil
import socket
import subprocess
import sys
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


KERNEL_IDLE = """(() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k && k.status === 'idle';
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/setup.sh as root (apt-get chromium)")
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(project_root() / "notebooks" / "00_connectome.ipynb", work)
    port, token = _free_port(), "wormlab-test"
    env = {**os.environ, "PYTHONPATH": str(project_root())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--expose-app-in-browser", "--ServerApp.disable_check_xsrf=True",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode(errors="replace")) from None
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start within 90 s")
    yield url, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_connectome_widget_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    url, token = lab
    shots = reports_dir() / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/00_connectome.ipynb?token={token}", timeout=120_000)
            page.wait_for_function("window.jupyterapp && window.jupyterapp.shell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            page.wait_for_function(KERNEL_IDLE, timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
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
            no_news = page.get_by_role("button", name="No")
            if no_news.count():
                no_news.first.click()
            summary.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "00_connectome_widget.png"))
        finally:
            browser.close()
    assert (shots / "00_connectome_widget.png").stat().st_size > 10_000
