"""The live page in Chromium mixes a second style of a multi-style network in, live."""

from __future__ import annotations

import shutil

import pytest
from conftest import make_tiny_multistyle, make_tiny_style
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
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run)"
    ),
]

STREAMING = (
    "() => { const v = document.getElementById('remote');"
    " return v.readyState >= 2 && v.videoWidth > 0; }"
)


async def pinned(server: ServerThread) -> None:
    """A fixed model cost: the budget stays at what the page sends, whatever the box's load."""
    pin_cost(server.app, 1e-9)


@pytest.fixture
def browser(tmp_path):
    pytest.importorskip("playwright.sync_api")
    clip = write_y4m(tmp_path / "camera.y4m")
    camera = ("--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}")
    with chromium(*camera) as browser:
        yield browser
    shutil.rmtree(tmp_path / "var", ignore_errors=True)


def test_the_mix_slider_blends_a_second_style_in_and_the_server_acks_it(tmp_path, browser):
    models = tmp_path / "models"
    models.mkdir()
    make_tiny_multistyle(models, ["ink", "oil"], seed=11)
    make_tiny_style(models, "alpha", seed=1)  # a single-style network: it mixes with nothing
    with ServerThread(test_config(models, tmp_path, port=free_port())) as server:
        server.call(pinned(server))
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.select_option("#style", "ink")
        options = page.eval_on_selector_all("#blend-style option", "els => els.map(e => e.value)")
        assert options == ["oil"]  # only the other style of ink's network
        page.click("#start")
        page.wait_for_function(STREAMING, timeout=30_000)
        page.wait_for_selector("body[data-active-style=ink]", timeout=20_000)
        page.eval_on_selector(
            "#blend", "el => { el.value = '0.5'; el.dispatchEvent(new Event('input')); }"
        )
        page.wait_for_selector("body[data-blend='oil:0.5']", timeout=20_000)  # the server's ack
        assert page.text_content("#remote-style") == "ink + 50% oil"
        assert page.text_content("#blend-value") == "50%"
        page.select_option("#style", "alpha")  # another network: nothing to mix with
        page.wait_for_selector("body[data-active-style=alpha]", timeout=20_000)
        assert page.is_disabled("#blend") and page.is_disabled("#blend-style")
        assert "one multi-style network" in page.text_content("#blend-hint")
        page.click("#stop")
        assert errors == []
