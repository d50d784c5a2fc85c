"""The plain HTTP side of the live server: page, health, metrics, styles, thumbnails, config."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from webrtc_helpers import test_config

from server.__main__ import build_parser, config_from_args
from server.app import create_app


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    config = test_config(
        models_dir,
        tmp_path,
        ice_servers=("stun:stun.example.org:3478", "turn:ann:s3cret@t.io:3478"),
    )
    return await aiohttp_client(create_app(config))


async def test_live_page_has_the_contract_elements(client):
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    for element in ('id="start"', 'id="stop"', '<select id="style"', '<video id="local"'):
        assert element in html
    assert 'id="remote" playsinline autoplay muted' in html
    for asset in ("/static/app.js", "/static/style.css"):
        assert (await client.get(asset)).status == 200


async def test_healthz(client):
    body = await (await client.get("/healthz")).json()
    inference = body.pop("inference")
    assert inference["compiled"] is False and inference["builds_pending"] == 0
    assert inference["sizes"] == {"alpha": {}, "beta": {}}  # eager serves every size
    assert body == {
        "status": "ok",
        "device": "cpu",
        "variant": "lite",
        "styles": ["alpha", "beta"],
        "peers": 0,
        "max_peers": 8,
        "load": 0.0,
        "at_capacity": False,
        "peers_dropped": {"never_connected": 0, "no_video": 0, "control_flood": 0, "sctp_flood": 0},
        "peers_refused": {"capacity": 0, "pending": 0, "per_client": 0},
        "role": "all",
        "jobs": True,
    }


async def test_metrics_lists_the_live_series(client):
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    for series in (
        "stylefusion_batch_size_bucket",
        "stylefusion_queue_wait_seconds_bucket",
        "stylefusion_inference_seconds_bucket",
        "stylefusion_server_latency_seconds_bucket",
        "stylefusion_frames_in_total",
        "stylefusion_frames_out_total",
        "stylefusion_frames_dropped_total",
        "stylefusion_active_peers",
    ):
        assert series in text


async def test_metrics_are_per_app(client, aiohttp_client, models_dir, tmp_path):
    # two apps in one process must not clash over global Prometheus collectors
    other = await aiohttp_client(create_app(test_config(models_dir, tmp_path / "b")))
    assert (await other.get("/metrics")).status == 200
    assert (await client.get("/metrics")).status == 200


async def test_styles_api_and_thumbnails(client):
    body = await (await client.get("/api/styles")).json()
    assert body["default"] == "alpha"
    assert [s["name"] for s in body["styles"]] == ["alpha", "beta"]
    style = body["styles"][0]
    assert style["variant"] == "lite" and set(style["variants"]) == {"full", "lite"}
    response = await client.get(style["thumbnail"])
    assert response.status == 200 and response.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(await response.read()))
    assert image.size == (256, 256)
    small = await client.get("/api/styles/alpha/thumbnail?size=64")
    assert Image.open(io.BytesIO(await small.read())).size == (64, 64)
    assert (await client.get("/api/styles/nope/thumbnail")).status == 404
    assert (await client.get("/api/styles/alpha/thumbnail?size=big")).status == 400


async def test_page_config_carries_ice_servers_but_no_static_turn_password(client):
    body = await (await client.get("/api/config")).json()
    assert body["iceServers"] == [{"urls": "stun:stun.example.org:3478"}]
    assert "s3cret" not in json.dumps(body)


def test_cli_options_reach_the_config(monkeypatch):
    monkeypatch.setenv("STYLEFUSION_ADMIN_TOKEN", "from-env")
    args = build_parser().parse_args(
        ["--port", "9000", "--max-peers", "3", "--max-batch", "4", "--max-wait-ms", "2.5"]
        + ["--ice-server", "stun:a:1", "--ice-server", "stun:b:2", "--variant", "full"]
        + ["--max-clip-mb", "10", "--no-marker-bit", "--content-dir", "photos"]
    )
    config = config_from_args(args)
    assert (config.port, config.max_peers, config.max_batch, config.max_wait_ms) == (
        9000,
        3,
        4,
        2.5,
    )
    assert config.ice_servers == ("stun:a:1", "stun:b:2")
    assert config.admin_token == "from-env" and config.variant == "full"
    assert config.max_clip_bytes == 10 * 2**20 and config.marker_bit is False
    assert config.content_dir == Path("photos")
