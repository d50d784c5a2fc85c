"""The admin page in a real headless Chromium: sign in, train a tiny style, see it finish."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import make_style_image, make_tiny_multistyle
from jobs_helpers import TOKEN
from webrtc_helpers import test_config

from server.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


async def open_admin(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A new tab on the admin page, and the list its page errors are collected in."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    return page, errors


async def test_admin_page_trains_a_style_end_to_end(
    aiohttp_server, tmp_path: Path, models_dir: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    config = test_config(models_dir, tmp_path, admin_token=TOKEN)  # photos: the shipped set
    server = await aiohttp_server(create_app(config))
    painting = make_style_image(tmp_path / "Water Lilies.png", seed=4)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page, errors = await open_admin(browser, str(server.make_url("/admin")))
            await expect(page.locator("#token-dialog")).to_be_visible()
            await page.fill("#token", "wrong-token")
            await page.click("#token-save")
            await expect(page.locator("#token-error")).to_contain_text("not right")
            await page.fill("#token", TOKEN)
            await page.click("#token-save")
            await expect(page.locator("#token-dialog")).to_be_hidden()

            await page.click("[data-tab=train]")
            form = page.locator("#train-form")
            await form.locator("input[name=style_image]").set_input_files(painting)
            await expect(form.locator("input[name=name]")).to_have_value("water-lilies")
            await form.locator("input[name=budget_value]").fill("4")
            await form.locator("input[name=size]").fill("32")
            await form.locator("summary").click()
            await form.locator("input[name=batch_size]").fill("2")
            await form.locator("input[name=style_size]").fill("64")  # Grams of a small painting
            await form.locator("button[type=submit]").click()

            job = page.locator(".job").first
            await expect(job).to_have_attribute("data-state", "done", timeout=120_000)
            await expect(job.locator(".job-title b")).to_have_text("Training · water-lilies")
            await expect(job.locator(".job-preview")).to_be_visible()
            await expect(job.locator(".job-live")).to_be_visible()
            style_option = page.locator("#video-style option[value=water-lilies]")
            await expect(style_option).to_have_count(1, timeout=20_000)
            assert (models_dir / "water-lilies" / "lite.safetensors").is_file()
            meta = json.loads((models_dir / "water-lilies" / "meta.json").read_text())
            assert meta["variants"]["lite"]["training"]["config"]["style_size"] == 64

            await job.locator(".job-delete").click()  # the job goes, the style it made stays
            await expect(page.locator(".job")).to_have_count(0)
            assert list((Path(config.data_dir) / "jobs").iterdir()) == []
            assert (models_dir / "water-lilies" / "lite.safetensors").is_file()
            assert errors == []
        finally:
            await browser.close()


async def test_the_train_form_says_how_long_a_new_style_takes(
    aiohttp_server, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    models = tmp_path / "shared"
    models.mkdir()
    make_tiny_multistyle(models, ["ink", "oil"], seed=3, variants=("lite",))
    server = await aiohttp_server(create_app(test_config(models, tmp_path, admin_token=TOKEN)))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page, errors = await open_admin(browser, str(server.make_url("/admin")))
            await page.fill("#token", TOKEN)
            await page.click("#token-save")
            await page.click("[data-tab=train]")
            form = page.locator("#train-form")
            estimate = page.locator("#train-estimate")
            await expect(estimate).to_contain_text("about", timeout=90_000)
            # the steps that leave it live within 5 minutes at the rate timed on this machine
            await expect(estimate).to_contain_text(re.compile(r"\d+ steps of 128 px crops"))
            await expect(estimate).to_contain_text("norms fitted to the shared network")
            await expect(form.locator("input[name=budget_value]")).to_have_attribute(
                "placeholder", re.compile(r"^\d+$")
            )
            await form.locator("input[name=size]").fill("32")
            await form.locator("input[name=budget_value]").fill("600")
            await expect(estimate).to_contain_text("600 steps of 32 px crops", timeout=90_000)
            await form.locator("input[name=budget_value]").fill("30")
            await expect(estimate).to_contain_text("at least 60 steps")
            await form.locator("select[name=mode]").select_option("single")
            await expect(estimate).to_contain_text("30 steps of 32 px crops", timeout=90_000)
            await expect(estimate).to_contain_text("a network of its own")
            assert errors == []
        finally:
            await browser.close()
