"""The admin page's Styles section in a real headless Chromium: rename, download, delete."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from webrtc_helpers import ADMIN_TOKEN as TOKEN
from webrtc_helpers import admin_page, test_config

from server.app import create_app
from stylefusion.style_folder import read_meta, write_meta

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


async def test_admin_page_renames_downloads_and_deletes_styles(
    aiohttp_server, tmp_path: Path, models_dir: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    server = await aiohttp_server(create_app(test_config(models_dir, tmp_path)))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page, errors = await admin_page(browser, str(server.make_url("/admin")), TOKEN)
            cards = page.locator("#style-list .style-card")
            await expect(cards).to_have_count(2)
            alpha, beta = cards.nth(0), cards.nth(1)
            thumb = alpha.locator(".style-thumb")
            assert (await thumb.get_attribute("src")).startswith("/api/styles/alpha/thumbnail")
            await expect(thumb).to_have_js_property("complete", True)
            assert await thumb.evaluate("img => img.naturalWidth") > 0

            await alpha.locator(".style-display").fill("Water Lilies")
            await alpha.locator(".style-save").click()
            await expect(page.locator("#toast")).to_contain_text("Renamed")
            meta = json.loads((models_dir / "alpha" / "meta.json").read_text())
            assert meta["display_name"] == "Water Lilies"

            async with page.expect_download() as download:
                await alpha.locator(".style-download").click()
            saved = tmp_path / (await download.value).suggested_filename
            await (await download.value).save_as(saved)
            assert saved.name == "alpha.zip"
            assert "alpha/meta.json" in zipfile.ZipFile(saved).namelist()

            await beta.locator(".style-remove").click()  # the confirm() is accepted
            await expect(cards).to_have_count(1)
            assert not (models_dir / "beta").exists()
            await expect(cards.first.locator(".style-remove")).to_be_disabled()  # the last one
            await expect(page.locator("#video-style option")).to_have_count(1)
            assert errors == []
        finally:
            await browser.close()


# every label's text fits its box: no ellipsis, no clipped input (Chromium's scrollWidth)
CUT_LABELS_JS = """() => [
  ...[...document.querySelectorAll('.style-tile')].filter((tile) => {
    const label = tile.querySelector('span'), box = tile.getBoundingClientRect();
    const text = label.getBoundingClientRect();
    return label.scrollWidth > label.clientWidth || text.top < box.top || text.bottom > box.bottom;
  }).map((tile) => tile.textContent),
  ...[...document.querySelectorAll('.style-display')]
    .filter((input) => input.scrollWidth > input.clientWidth).map((input) => input.value),
]"""


@pytest.mark.parametrize("width", [390, 1280])  # a phone, a desktop
async def test_style_names_are_shown_whole(
    aiohttp_server, tmp_path: Path, models_dir: Path, width: int
) -> None:
    """The Studio's style cards cut 'Rain Princess' to 'Rain Prin': names must show whole."""
    from playwright.async_api import async_playwright

    for name, display in [("alpha", "Rain Princess"), ("beta", "The Starry Night, Rhône")]:
        meta = read_meta(models_dir / name)
        write_meta(models_dir / name, meta | {"display_name": display})
    server = await aiohttp_server(create_app(test_config(models_dir, tmp_path)))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page, errors = await admin_page(browser, str(server.make_url("/admin")), TOKEN)
            await page.set_viewport_size({"width": width, "height": 900})
            await page.wait_for_selector("#style-list .style-card")
            assert await page.evaluate(CUT_LABELS_JS) == []
            await page.goto(str(server.make_url("/")))
            await page.wait_for_selector(".style-tile")
            labels = await page.eval_on_selector_all(
                ".style-tile span", "els => els.map(e => e.textContent)"
            )
            assert labels == ["Rain Princess", "The Starry Night, Rhône"]
            assert await page.evaluate(CUT_LABELS_JS) == []
            assert errors == []
        finally:
            await browser.close()
