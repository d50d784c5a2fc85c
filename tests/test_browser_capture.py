"""Keep what you see, in a headless Chromium: record a WebM, snapshot a PNG, pick a camera."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from test_browser_live import browser, server  # noqa: F401 - shared fixtures
from webrtc_helpers import (
    CHROMIUM,
    ServerThread,
    chromium,
    free_port,
    pattern,
    pin_cost,
    test_config,
)

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run)"
    ),
]

REMOTE_SIZE_JS = (
    "() => { const v = document.getElementById('remote'); return [v.videoWidth, v.videoHeight]; }"
)


def start_streaming(page, url: str) -> tuple[int, int]:
    """Open the live page, start at 320x240, wait for stylized frames; the remote video's size."""
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.is_disabled("#record") and page.is_disabled("#snapshot")
    page.select_option("#resolution", "320x240")
    page.click("#start")
    page.wait_for_function("() => document.getElementById('remote').videoWidth > 0", timeout=30_000)
    page.wait_for_selector("#snapshot:enabled", timeout=10_000)
    return tuple(page.evaluate(REMOTE_SIZE_JS))


def video_frames(path: Path) -> list[tuple[int, int]]:
    """(width, height) of every frame PyAV decodes from a file."""
    with av.open(str(path)) as container:
        return [(f.width, f.height) for f in container.decode(video=0)]


def test_record_saves_a_webm_of_the_stylized_video(server, browser, tmp_path):  # noqa: F811
    page = browser.new_page(accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    size = start_streaming(page, server.url)
    page.click("#record")
    assert page.is_visible("#record-time")
    page.wait_for_function(  # the timer runs while recording, and says the recording's size
        "() => document.querySelector('#record-time span').textContent.startsWith('0:02 · ')",
        timeout=20_000,
    )
    shown = page.text_content("#record-time span").split(" · ")[1]
    width, height = page.evaluate(REMOTE_SIZE_JS)
    assert shown == f"{width}×{height}"
    assert page.text_content("#record").strip() == "Stop recording"
    with page.expect_download(timeout=20_000) as download:
        page.click("#record")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".webm" and saved.name.startswith("stylefusion-alpha-")
    assert saved.stat().st_size > 0
    frames = video_frames(saved)
    assert len(frames) >= 10
    # the server's send budget may scale the stream down meanwhile: same picture, fewer pixels
    assert all(w * size[1] == h * size[0] and w <= size[0] for w, h in frames), set(frames)
    assert page.is_hidden("#record-time")
    toast = page.wait_for_selector("#toast:has-text('WEBM recording')").text_content()
    assert re.fullmatch(r"Saved a \d+×\d+ WEBM recording \(\d+\.\d MB\)", toast), toast
    assert errors == []


LOCAL_SIZE_JS = (
    "() => { const v = document.getElementById('local'); return [v.videoWidth, v.videoHeight]; }"
)


def test_snapshot_saves_the_camera_frame_painted_at_its_own_size(
    models_dir,
    tmp_path,
    browser,  # noqa: F811
):
    """The stream is as small as the send budget (here 160x120); a snapshot is a keepsake."""
    config = test_config(models_dir, tmp_path, port=free_port(), stats_interval_s=0.3)
    with ServerThread(config) as slow:
        pin_cost(slow.app, 1e-5)  # a slow server: it can only take 160x120
        page = browser.new_page(accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        start_streaming(page, slow.url)
        page.wait_for_selector("body[data-budget='160x120@5']", timeout=30_000)
        page.wait_for_function(f"() => ({REMOTE_SIZE_JS})()[0] === 160", timeout=30_000)
        camera = tuple(page.evaluate(LOCAL_SIZE_JS))
        assert camera == (320, 240)
        with page.expect_download(timeout=60_000) as download:
            page.click("#snapshot")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.suffix == ".png" and saved.name.startswith("stylefusion-alpha-")
        with Image.open(saved) as image:
            assert image.format == "PNG" and image.size == camera  # not the 160x120 stream
            painted = np.asarray(image.convert("RGB")).astype(int)
        assert painted.std() > 10  # a picture, not a blank canvas
        source = pattern(*camera, seed=4).astype(int)  # the fake camera's picture
        assert np.abs(painted - source).mean() > 20  # painted, not the camera's frame as is
        page.wait_for_selector("#toast:has-text('Saved a 320×240 snapshot')")
        page.wait_for_selector("#snapshot:enabled")
        assert errors == []


@pytest.fixture
def two_camera_browser():
    pytest.importorskip("playwright.sync_api")
    with chromium("--use-fake-device-for-media-stream=device-count=2") as two_cameras:
        yield two_cameras


LOCAL_CAMERA_JS = "() => document.getElementById('local').srcObject.getVideoTracks()[0].label"
REMOTE_TIME_JS = "() => document.getElementById('remote').currentTime"


def test_camera_picker_switches_cameras_while_streaming(server, two_camera_browser):  # noqa: F811
    page = two_camera_browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    start_streaming(page, server.url)
    page.wait_for_selector("#camera-field:not([hidden])", timeout=10_000)
    labels = page.eval_on_selector_all("#camera option", "els => els.map(e => e.textContent)")
    assert labels == ["fake_device_0", "fake_device_1"]
    assert page.evaluate(LOCAL_CAMERA_JS) == "fake_device_0"
    page.select_option("#camera", label="fake_device_1")
    page.wait_for_function(f"() => ({LOCAL_CAMERA_JS})() === 'fake_device_1'", timeout=10_000)
    before = page.evaluate(REMOTE_TIME_JS)
    page.wait_for_function(f"() => ({REMOTE_TIME_JS})() > {before} + 1", timeout=20_000)
    assert errors == []


def test_one_camera_shows_no_picker(server, browser):  # noqa: F811
    page = browser.new_page()
    start_streaming(page, server.url)
    assert page.eval_on_selector_all("#camera option", "els => els.length") == 1
    assert page.is_hidden("#camera-field")
