"""Clips on the admin page in a real headless Chromium: upload, watch with sound, download."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_helpers import make_clip
from webrtc_helpers import admin_page, test_config

from server.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
# the page's Watch starts playback itself; headless Chromium would want a fresh gesture
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--autoplay-policy=no-user-gesture-required"]

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

AUDIO_DECODED_JS = "video => video.webkitAudioDecodedByteCount"


async def test_a_clip_with_ac3_sound_plays_with_sound_on_the_admin_page(
    aiohttp_server, tmp_path: Path, models_dir: Path
) -> None:
    """AC-3 in MP4 plays silent in Chromium: the result must carry sound Chromium decodes."""
    from playwright.async_api import async_playwright, expect

    server = await aiohttp_server(create_app(test_config(models_dir, tmp_path)))
    clip = make_clip(tmp_path / "Holiday Trip.mp4", frames=30, audio="ac3", audio_layout="5.1")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page, errors = await admin_page(browser, str(server.make_url("/admin")))
            form = page.locator("#video-form")
            await form.locator("input[name=file]").set_input_files(clip)
            await form.locator("select[name=style]").select_option("alpha")
            await form.locator("button[type=submit]").click()

            job = page.locator(".job").first
            await expect(job).to_have_attribute("data-state", "done", timeout=120_000)
            await job.locator(".job-watch").click()
            video = job.locator(".job-video")
            await expect(video).to_be_visible(timeout=20_000)
            await page.wait_for_function(
                f"v => ({AUDIO_DECODED_JS})(v) > 0", arg=await video.element_handle()
            )
            assert await video.evaluate("v => v.error") is None
            await expect(job.locator(".job-title b")).to_have_text("Clip · Holiday Trip")

            async with page.expect_download() as download:  # named after the clip and style
                await job.locator(".job-download").click()
            assert (await download.value).suggested_filename == "holiday-trip-alpha.mp4"
            assert errors == []
        finally:
            await browser.close()
