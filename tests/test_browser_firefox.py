"""Firefox ESR (headless, driven through Marionette) streams through the live page too."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser_live import VIDEO_DIFFERENCE_JS
from webrtc_helpers import ServerThread, free_port, test_config

FIREFOX = Path("/usr/bin/firefox-esr")

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not FIREFOX.exists(), reason="needs Debian's firefox-esr (.ci/run)"),
]

PREFS = {
    "media.navigator.streams.fake": True,  # a synthetic camera
    "media.navigator.permission.disabled": True,  # no permission prompt
    "media.peerconnection.ice.obfuscate_host_addresses": False,  # plain host candidates
}


@pytest.fixture
def firefox(tmp_path) -> Iterator[Any]:
    marionette = pytest.importorskip("marionette_driver.marionette")
    client = marionette.Marionette(
        host="127.0.0.1",
        port=free_port(),
        bin=str(FIREFOX),
        prefs=PREFS,
        app_args=["-headless"],
        gecko_log=str(tmp_path / "gecko.log"),  # not the working directory
        startup_timeout=120,
    )
    try:
        client.start_session()
        yield client
    finally:
        client.cleanup()
        shutil.rmtree(tmp_path / "var", ignore_errors=True)


def wait_for(check: Callable[[], Any], timeout_s: float = 30) -> Any:
    """Poll until check() is truthy; its value, or AssertionError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the page")


def test_firefox_streams_stylized_video_and_switches_style(models_dir, tmp_path, firefox):
    config = test_config(models_dir, tmp_path, port=free_port(), stats_interval_s=0.5)
    with ServerThread(config) as server:
        firefox.navigate(server.url + "/")
        js = firefox.execute_script
        wait_for(lambda: js("return document.body.dataset.ready === 'true'"))
        js("document.getElementById('start').click()")
        remote_time = "return document.getElementById('remote').currentTime"
        wait_for(lambda: js(remote_time) > 0.5, timeout_s=60)
        played = js(remote_time)
        wait_for(lambda: js(remote_time) > played + 0.5)  # frames keep coming
        assert js(f"return ({VIDEO_DIFFERENCE_JS})()") > 10  # stylized, not the camera
        assert js("return document.body.dataset.budget")  # the server's budget arrived

        js(
            "const s = document.getElementById('style'); s.value = 'beta';"
            "s.dispatchEvent(new Event('change'))"
        )
        wait_for(lambda: js("return document.body.dataset.activeStyle") == "beta")
        js("document.getElementById('stop').click()")
        wait_for(lambda: js("return document.body.dataset.connection") == "idle")
