"""The access log: a line per request at INFO, but the pages' routine polls at DEBUG."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from webrtc_helpers import ADMIN_TOKEN, test_config

from server.app import create_app, runner_options

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def levels(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """The access log's level per request line (the quoted 'GET /path HTTP/1.1')."""
    lines = {}
    for record in caplog.records:
        if record.name == "aiohttp.access":
            line = record.getMessage().split('"')[1]
            lines[line.split()[0] + " " + line.split()[1]] = record.levelname
    return lines


async def test_routine_polls_log_at_debug_and_the_rest_at_info(
    aiohttp_server, models_dir, tmp_path, caplog
) -> None:
    config = test_config(models_dir, tmp_path)
    server = await aiohttp_server(create_app(config), **runner_options(config))
    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    async with aiohttp.ClientSession(server.make_url("")) as http:
        for path, headers in [
            ("/healthz", {}),
            ("/api/styles", {}),
            ("/api/jobs", AUTH),  # the admin page asks every second while a job runs
            ("/metrics", {}),
            ("/", {}),
            ("/admin", {}),
            ("/api/jobs?wrong", {"Authorization": "Bearer wrong-token-0123456789"}),
        ]:
            async with http.get(path, headers=headers) as resp:
                await resp.read()
        async with http.delete("/api/jobs/nope", headers=AUTH) as resp:
            assert resp.status == 404
    seen = levels(caplog)
    assert {seen[f"GET {p}"] for p in ("/healthz", "/api/styles", "/api/jobs", "/metrics")} == {
        "DEBUG"
    }
    assert seen["GET /"] == seen["GET /admin"] == "INFO"
    assert seen["GET /api/jobs?wrong"] == "INFO"  # a refused poll is worth seeing
    assert seen["DELETE /api/jobs/nope"] == "INFO"
