"""Chromium on the watch page (a WHEP player) and on the live page's Share (a WHIP publisher)."""

from __future__ import annotations

import json
import shutil
import urllib.request

import numpy as np
import pytest
from aiohttp import ClientSession
from webrtc_helpers import (
    ADMIN_TOKEN,
    CHROMIUM,
    ServerThread,
    chromium,
    difference,
    free_port,
    pin_cost,
    test_config,
    write_y4m,
)
from whip_helpers import Publisher, Watcher

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run)"
    ),
]

# the watch page's video as 160x120 RGB bytes (None until a frame is shown)
VIDEO_PIXELS_JS = """() => {
  const video = document.getElementById("video");
  if (video.readyState < 2 || !video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = 160; canvas.height = 120;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0, 160, 120);
  const rgba = ctx.getImageData(0, 0, 160, 120).data;
  return Array.from(rgba.filter((_, i) => i % 4 !== 3));
}"""
PLAYING_JS = "() => document.getElementById('{id}').readyState >= 2"


def streams(server: ServerThread) -> list[dict]:
    with urllib.request.urlopen(server.url + "/api/streams", timeout=10) as response:
        return json.load(response)["streams"]


async def pinned(server: ServerThread) -> None:
    """A fixed model cost: a tiny model starved by Chromium must not shrink the send budget."""
    pin_cost(server.app, 1e-9)


async def publish(server: ServerThread, name: str) -> Publisher:
    """An aiortc publisher, living on the server's loop (the test thread runs Playwright)."""
    publisher = Publisher(audio=True)
    async with ClientSession(base_url=server.url) as http:
        assert (await publisher.publish(http, name)).status == 201
    return publisher


async def watch_one_frame(server: ServerThread, name: str) -> tuple[Watcher, np.ndarray]:
    """An aiortc WHEP watcher and the first settled frame it gets."""
    watcher = Watcher(audio=False)
    async with ClientSession(base_url=server.url) as http:
        assert (await watcher.watch(http, name)).status == 201
    return watcher, await watcher.latest_image(skip=3, timeout=30)


@pytest.fixture
def server(models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, port=free_port(), max_pending_per_client=8)
    with ServerThread(config) as running:
        running.call(pinned(running))
        yield running


@pytest.fixture
def browser(tmp_path):
    pytest.importorskip("playwright.sync_api")
    clip = write_y4m(tmp_path / "camera.y4m")
    camera = ("--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}")
    with chromium(*camera) as browser:
        yield browser
    shutil.rmtree(tmp_path / "var", ignore_errors=True)


def test_watch_page_waits_plays_and_comes_back(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 640, "height": 360})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/watch/cam")
    page.wait_for_selector("body[data-state=waiting]")  # not live yet: it keeps asking
    assert "Waiting for cam" in page.text_content("#status")
    publisher = server.call(publish(server, "cam"))
    try:
        page.wait_for_selector("body[data-state=playing]", timeout=60_000)
        page.wait_for_function(PLAYING_JS.format(id="video"), timeout=30_000)
        page.wait_for_timeout(1000)  # a few frames: the codec settles
        pixels = page.evaluate(VIDEO_PIXELS_JS)
        shown = np.array(pixels, np.uint8).reshape(120, 160, 3)
        assert difference(shown, publisher.camera.image) > 10  # stylized, not the camera
        assert streams(server)[0]["watchers"] == 1
        box = page.evaluate("() => document.getElementById('video').getBoundingClientRect()")
        assert (box["width"], box["height"]) == (640, 360)  # the whole window
        page.screenshot(path=str(tmp_path / "watch.png"))

        page.mouse.move(50, 50)  # the style menu shows while the mouse moves
        page.wait_for_selector("#controls:not([hidden])")
        page.wait_for_function("() => document.getElementById('style').options.length === 2")
        page.select_option("#style", "beta")  # no token yet: the page asks for one
        page.wait_for_selector("#token-field:not([hidden])")
        page.fill("#token", ADMIN_TOKEN)
        page.press("#token", "Enter")
        page.wait_for_function("() => document.getElementById('token-field').hidden")
        assert streams(server)[0]["style"] == "beta"

        server.call(publisher.close())  # the streamer stops
        page.wait_for_selector("body[data-state=ended], body[data-state=waiting]", timeout=60_000)
        publisher = server.call(publish(server, "cam"))  # ... and starts again
        page.wait_for_selector("body[data-state=playing]", timeout=60_000)
        page.wait_for_function(PLAYING_JS.format(id="video"), timeout=30_000)
    finally:
        server.call(publisher.close())
    assert errors == []


def test_share_turns_the_camera_into_a_stream(server, browser, tmp_path):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.select_option("#resolution", "320x240")
    page.click("#share-box summary")
    page.fill("#share-name", "class")
    page.fill("#share-token", ADMIN_TOKEN)
    page.click("#share")  # starts the camera too
    page.wait_for_selector("body[data-sharing=class]", timeout=30_000)
    page.wait_for_function(PLAYING_JS.format(id="remote"), timeout=60_000)
    assert page.get_attribute("#share-link", "href").endswith("/watch/class")
    watcher, image = server.call(watch_one_frame(server, "class"), timeout=60)
    try:
        assert image.shape == (240, 320, 3)
        (listed,) = streams(server)
        assert listed["name"] == "class" and listed["watchers"] == 2  # the page's own view too
        page.select_option("#style", "beta")  # over the WHIP session's control channel
        page.wait_for_selector("body[data-active-style=beta]", timeout=30_000)
        assert streams(server)[0]["style"] == "beta"
        page.screenshot(path=str(tmp_path / "share.png"))

        page.click("#share-stop")  # the watchers' sessions end; the page streams as before
        server.call(watcher.wait_closed(), timeout=60)
        page.wait_for_function("() => !document.body.dataset.sharing")
        page.wait_for_selector("body[data-connection=connected]", timeout=30_000)
        assert streams(server) == []
    finally:
        server.call(watcher.close())
    assert errors == []
