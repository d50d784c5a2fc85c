"""Chromium on the live page: it sends what the server budgets, and survives a server restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from webrtc_helpers import (
    CHROMIUM,
    ServerThread,
    chromium,
    free_port,
    pin_cost,
    test_config,
    write_y4m,
)

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run)"
    ),
]

REMOTE_TIME_JS = "() => document.getElementById('remote').currentTime"


@pytest.fixture
def browser(tmp_path):
    pytest.importorskip("playwright.sync_api")
    clip = write_y4m(tmp_path / "camera.y4m")  # a 320x240 camera
    camera = ("--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}")
    with chromium(*camera) as browser:
        yield browser


def wait_playing(page, after: float = 0.0, timeout_ms: int = 30_000) -> float:
    """Wait until the stylized video plays past `after` seconds; returns its time."""
    page.wait_for_function(f"() => ({REMOTE_TIME_JS})() > {after} + 0.3", timeout=timeout_ms)
    return page.evaluate(REMOTE_TIME_JS)


def test_page_sends_at_the_servers_budget(models_dir, tmp_path, browser):
    config = test_config(models_dir, tmp_path, port=free_port(), stats_interval_s=0.3)
    with ServerThread(config) as server:
        assert server.app is not None
        pin_cost(server.app, 1e-5)  # a slow server: it can only take 160x120
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.click("#start")
        page.wait_for_selector("body[data-budget='160x120@5']", timeout=30_000)
        assert page.text_content("#budget") == "160×120 @ 5"
        # by default the camera opens at the budget's size
        page.wait_for_function("() => document.getElementById('local-size').textContent")
        assert page.text_content("#local-size") == "160×120"

        page.select_option("#resolution", "320x240")  # the viewer asks for more
        page.wait_for_selector("body[data-send-scale='2']", timeout=30_000)
        assert page.text_content("#local-size") == "320×240"
        count = page.evaluate("Number(document.body.dataset.statsCount || 0)")
        page.wait_for_function(
            f"() => Number(document.body.dataset.statsCount) >= {count + 2}", timeout=30_000
        )
        assert "arrives at 160×120" in page.text_content("#stats")  # the page halves it
        page.click("#stop")


def start_server(models_dir: Path, data_dir: Path, port: int) -> subprocess.Popen:
    """The real server in its own process, answering /healthz."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    args = ["--port", str(port), "--models-dir", str(models_dir), "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--device", "cpu", "--no-compile", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return process
        except OSError:
            assert process.poll() is None, "the server died while starting"
            time.sleep(0.3)
    process.kill()
    raise AssertionError("the server did not start")


@pytest.mark.slow
def test_page_reconnects_with_its_style_and_strength_after_a_server_restart(
    models_dir, tmp_path, browser
):
    port = free_port()
    server = start_server(models_dir, tmp_path / "var", port)
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready=true]")
        page.select_option("#style", "beta")
        page.fill("#strength", "0.5")
        page.click("#start")
        wait_playing(page)
        page.wait_for_selector("body[data-active-style=beta]", timeout=30_000)

        server.send_signal(signal.SIGKILL)  # the server dies without a goodbye
        server.wait(30)
        page.wait_for_selector("body[data-connection=reconnecting]", timeout=30_000)
        assert "Reconnecting" in page.text_content("#toast")

        server = start_server(models_dir, tmp_path / "var", port)
        page.wait_for_selector("body[data-connection=connected]", timeout=60_000)
        page.wait_for_function(
            "() => document.getElementById('stats').textContent.includes('strength 50%')",
            timeout=30_000,
        )
        page.wait_for_selector("body[data-active-style=beta]", timeout=30_000)
        wait_playing(page, after=page.evaluate(REMOTE_TIME_JS))

        page.click("#stop")  # stop still stops: no reconnecting after it
        page.wait_for_selector("body[data-connection=idle]")
        time.sleep(1.5)
        assert page.evaluate("document.body.dataset.connection") == "idle"
    finally:
        server.kill()
        server.wait(30)


UNREACHABLE_JS = """() => {
  // a network where no candidate works: both sides' candidates point at a dead port
  const dead = (sdp) => sdp.replace(/^(a=candidate:\\S+ \\d+ \\S+ \\d+ \\S+) \\d+/gm, "$1 9");
  const realFetch = window.fetch;
  window.fetch = async (url, options) => {
    if (!String(url).endsWith("/offer")) return realFetch(url, options);
    const offer = JSON.parse(options.body);
    const body = JSON.stringify({ ...offer, sdp: dead(offer.sdp) });
    const response = await realFetch(url, { ...options, body });
    if (!response.ok) return response;
    const answer = await response.json();
    return new Response(JSON.stringify({ ...answer, sdp: dead(answer.sdp) }), { status: 200 });
  };
}"""


def test_unreachable_server_media_fails_visibly(models_dir, tmp_path, browser):
    config = test_config(models_dir, tmp_path, port=free_port())
    with ServerThread(config) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.evaluate(UNREACHABLE_JS)
        page.click("#start")
        page.wait_for_selector("body[data-connection=reconnecting]", timeout=30_000)
        assert "could not be reached" in page.text_content("#toast")
        page.click("#stop")
        page.wait_for_selector("body[data-connection=idle]")
