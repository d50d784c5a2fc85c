"""Hostile input against the real app: each case gets a clear 4xx, and viewers still get in."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCSessionDescription
from webrtc_helpers import ServerThread, Viewer, difference, free_port, test_config

from server.app import create_app
from server.live.keys import PEERS

pytestmark = pytest.mark.timeout(120)

JSON = {"Content-Type": "application/json"}
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    return await aiohttp_client(create_app(test_config(models_dir, tmp_path, max_peers=2)))


async def assert_viewer_gets_stylized_frames(client) -> None:
    """A normal viewer connects and gets stylized frames back."""
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        image = await viewer.latest_image(skip=2)
        assert difference(image, viewer.camera.image) > 10
    finally:
        await viewer.close()


async def error_of(response, status: int) -> str:
    """The JSON error text of a response with the expected status."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return (await response.json())["error"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_offer_takes_only_json(client, content_type):
    viewer = Viewer()
    try:
        body = json.dumps(await viewer.offer())
        response = await client.post("/offer", data=body, headers={"Content-Type": content_type})
        assert "application/json" in await error_of(response, 415)
        assert len(client.app[PEERS]) == 0
    finally:
        await viewer.close()


async def test_offer_body_cap(client):
    huge = json.dumps({"sdp": "v=0\r\n" + "a=x\r\n" * 20_000, "type": "offer"}).encode()
    assert "bytes" in await error_of(await client.post("/offer", data=huge, headers=JSON), 413)

    async def chunks():  # no Content-Length: the cap holds while reading
        for _ in range(40):
            yield b" " * 4096

    assert await error_of(await client.post("/offer", data=chunks(), headers=JSON), 413)
    await assert_viewer_gets_stylized_frames(client)


async def test_deeply_nested_json_is_a_4xx(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, max_offer_bytes=256 * 2**10)
    client = await aiohttp_client(create_app(config))
    for body in (b"[" * 100_000, b'{"sdp": ' + b"{" * 60_000, b"[" * 60_000):
        assert "JSON" in await error_of(await client.post("/offer", data=body, headers=JSON), 400)
    client = await aiohttp_client(create_app(test_config(models_dir, tmp_path / "b")))
    response = await client.post("/offer", data=b"[" * 100_000, headers=JSON)
    assert await error_of(response, 413)  # over the default 64 KiB cap before any parsing
    response = await client.post("/offer", data=b"[" * 60_000, headers=JSON)
    assert "JSON" in await error_of(response, 400)
    await assert_viewer_gets_stylized_frames(client)


async def test_offers_with_too_many_m_lines_or_candidates_get_400(client):
    viewer = Viewer()
    try:
        sdp = (await viewer.offer())["sdp"]
        media = sdp[sdp.index("m=") :]
        many_media = sdp + media * 4
        response = await client.post("/offer", json={"sdp": many_media, "type": "offer"})
        assert "m-lines" in await error_of(response, 400)
        candidate = "a=candidate:1 1 udp 2130706431 127.0.0.2 40000 typ host\r\n"
        many_candidates = sdp.replace("a=mid:0\r\n", "a=mid:0\r\n" + candidate * 40)
        response = await client.post("/offer", json={"sdp": many_candidates, "type": "offer"})
        assert "candidates" in await error_of(response, 400)
        assert len(client.app[PEERS]) == 0
    finally:
        await viewer.close()


async def test_half_open_offers_are_capped_per_client_and_reaped(
    aiohttp_client, models_dir, tmp_path
):
    config = test_config(
        models_dir, tmp_path, max_peers=5, connect_timeout_s=1.0, trusted_proxies=("127.0.0.1/32",)
    )
    client = await aiohttp_client(create_app(config))
    ghosts = [Viewer() for _ in range(6)]

    async def offer(ghost: Viewer, forwarded_for: str | None = None):
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        return await client.post("/offer", json=await ghost.offer(), headers=headers)

    try:
        for ghost in ghosts[:2]:  # offers whose answers are never applied: they never connect
            assert (await offer(ghost)).status == 200
        response = await offer(ghosts[2])
        assert "connecting" in await error_of(response, 429)
        assert int(response.headers["Retry-After"]) >= 1
        # a client behind a trusted reverse proxy (here the loopback) has its own count; one
        # IPv6 host rotating addresses within its /64 is still one client
        for ghost, address in zip(ghosts[3:5], ("2001:db8:1:2::5", "2001:db8:1:2::6"), strict=True):
            assert (await offer(ghost, address)).status == 200
        assert (await offer(ghosts[5], "2001:db8:1:2:ffff::9")).status == 429
        peers = client.app[PEERS]
        async with asyncio.timeout(15):
            while len(peers):
                await asyncio.sleep(0.05)
        await assert_viewer_gets_stylized_frames(client)
    finally:
        for ghost in ghosts:
            await ghost.close()


async def test_at_capacity_is_one_warning_line_without_traceback(
    aiohttp_client, models_dir, tmp_path, caplog
):
    client = await aiohttp_client(create_app(test_config(models_dir, tmp_path, max_peers=1)))
    viewer, extra = Viewer(), Viewer()
    try:
        await viewer.connect(client)
        caplog.clear()
        caplog.set_level(logging.INFO)
        body = await extra.offer()
        for _ in range(5):
            assert "capacity" in await error_of(await client.post("/offer", json=body), 503)
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(loud) == 5 and all(r.levelno == logging.WARNING for r in loud)
        assert not any(r.exc_info for r in caplog.records)
    finally:
        await viewer.close()
        await extra.close()


async def test_candidates_outside_ice_allow_are_dropped(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, ice_allow=("203.0.113.7/32",))
    client = await aiohttp_client(create_app(config))
    viewer = Viewer()
    try:
        offer = await viewer.offer()
        assert "a=candidate:" in offer["sdp"] and " 203.0.113.7 " not in offer["sdp"]
        assert (await client.post("/offer", json=offer)).status == 200
        (peer,) = list(client.app[PEERS])
        assert "a=candidate:" not in peer.pc.remoteDescription.sdp
        for transceiver in peer.pc.getTransceivers():  # nothing for ICE to send checks to
            assert transceiver.receiver.transport.transport.getRemoteCandidates() == []
    finally:
        await viewer.close()


async def test_ice_allow_covering_the_viewer_lets_it_in(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, ice_allow=("0.0.0.0/0", "::/0"))
    await assert_viewer_gets_stylized_frames(await aiohttp_client(create_app(config)))


async def test_data_channel_nesting_bomb_gets_an_error_event_and_the_peer_stays(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        viewer.channel.send("[" * 20_000)
        error = await viewer.wait_message(lambda m: m.get("event") == "error")
        assert "JSON" in error["error"]
        assert await viewer.switch_style("beta") == {"event": "style", "style": "beta"}
        await viewer.next_image()
    finally:
        await viewer.close()


async def test_oversized_data_channel_messages_are_refused_and_the_peer_stays(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        (peer,) = list(client.app[PEERS])
        assert "a=max-message-size:65536" in peer.pc.localDescription.sdp
        viewer.pc.sctp._remote_max_message_size = 0  # a hostile sender ignores the advertised cap
        for size in (300_000, 70_000):
            viewer.channel.send(json.dumps({"style": "beta", "pad": "x" * size}))
        async with asyncio.timeout(30):
            while len([m for m in viewer.messages if "limited to" in m.get("error", "")]) < 2:
                await asyncio.sleep(0.05)
        assert peer.style == "alpha"  # neither message was applied
        assert await viewer.switch_style("beta") == {"event": "style", "style": "beta"}
        await viewer.next_image()
        assert len(client.app[PEERS]) == 1
    finally:
        await viewer.close()


async def test_a_peer_ignoring_the_receive_window_is_disconnected(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        viewer.pc.sctp._remote_max_message_size = 0
        junk = viewer.pc.createDataChannel("junk", ordered=False)  # unordered: no exact drop
        async with asyncio.timeout(10):
            while junk.readyState != "open":
                await asyncio.sleep(0.02)
        junk.send(b"x" * 3_000_000)
        peers = client.app[PEERS]
        async with asyncio.timeout(60):
            while len(peers):
                await asyncio.sleep(0.05)
    finally:
        await viewer.close()
    await assert_viewer_gets_stylized_frames(client)


async def test_foreign_host_header_gets_421(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, allowed_hosts=("styles.example.org",))
    client = await aiohttp_client(create_app(config))
    for path in ("/api/styles", "/healthz", "/"):
        response = await client.get(path, headers={"Host": "rebind.attacker.example"})
        assert "rebind.attacker.example" in await error_of(response, 421)
    response = await client.post("/offer", data=b"{}", headers={**JSON, "Host": "evil.example"})
    assert response.status == 421
    for host in ("localhost:8080", "127.0.0.1", "[::1]:8080", "styles.example.org:443"):
        assert (await client.get("/healthz", headers={"Host": host})).status == 200


async def test_unknown_routes_and_methods_answer_json(client):
    assert await error_of(await client.get("/nope"), 404)
    response = await client.delete("/offer")
    assert await error_of(response, 405)
    assert "POST" in response.headers["Allow"]


async def test_aiohttp_body_limit_answers_json(aiohttp_client, models_dir, tmp_path):
    app = create_app(test_config(models_dir, tmp_path))

    async def echo(request: web.Request) -> web.Response:  # a handler reading a whole body
        return web.json_response(await request.json())

    app.router.add_post("/echo", echo)
    client = await aiohttp_client(app)
    response = await client.post("/echo", data=b"[" + b" " * 2**21 + b"]", headers=JSON)
    assert "body size" in await error_of(response, 413)


async def test_admin_token_guesses_are_throttled(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, admin_failures=3, admin_failure_window_s=1.0)
    client = await aiohttp_client(create_app(config))
    wrong = {"Authorization": "Bearer not-the-token-at-all"}
    right = {"Authorization": f"Bearer {config.admin_token}"}
    for _ in range(3):
        assert await error_of(await client.get("/api/jobs", headers=wrong), 401)
    response = await client.get("/api/jobs", headers=right)  # even the right one must wait
    assert "too many" in await error_of(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    await asyncio.sleep(1.1)  # the window passes
    assert (await client.get("/api/jobs", headers=right)).status == 200


async def test_turn_secret_gives_short_lived_credentials(aiohttp_client, models_dir, tmp_path):
    urls = ("stun:s.example:3478", "turn:t.example:3478", "turn:ann:static-pass@u.example:3478")
    config = test_config(
        models_dir, tmp_path, ice_servers=urls, turn_secret="shared-secret", turn_ttl_s=600
    )
    client = await aiohttp_client(create_app(config))
    body = await (await client.get("/api/config")).json()
    stun, turn = body["iceServers"]
    assert stun == {"urls": "stun:s.example:3478"} and turn["urls"] == "turn:t.example:3478"
    expiry, user = turn["username"].split(":")
    assert user == "stylefusion" and 0 < int(expiry) - time.time() <= 600
    digest = hmac.new(b"shared-secret", turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
    assert "static-pass" not in json.dumps(body)


async def test_thumbnail_sizes_snap_to_a_few(client):
    from PIL import Image

    from server.styles.api import thumbnail_bytes

    thumbnail_bytes.cache_clear()
    sizes = set()
    for size in (1, 63, 64, 65, 100, 200, 300, 511, 700, 1024, 5000):
        response = await client.get(f"/api/styles/alpha/thumbnail?size={size}")
        assert response.status == 200
        image = Image.open(__import__("io").BytesIO(await response.read()))
        sizes.add(image.size[0])
    assert sizes == {64, 128, 256, 512}
    assert thumbnail_bytes.cache_info().currsize == 4


async def test_answer_still_works_after_the_hostile_cases(client):
    await client.post("/offer", data=b"[" * 100_000, headers=JSON)
    await client.post("/offer", data=b"x" * 200_000, headers=JSON)
    await client.post("/offer", data=b"{}", headers={"Content-Type": "text/plain"})
    viewer = Viewer()
    try:
        response = await client.post("/offer", json=await viewer.offer())
        await viewer.pc.setRemoteDescription(RTCSessionDescription(**await response.json()))
        await viewer.latest_image(skip=1)
    finally:
        await viewer.close()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket timeout: fail)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_clients_are_cut_off(models_dir, tmp_path):
    config = test_config(
        models_dir, tmp_path, port=free_port(), header_timeout_s=1.0, body_timeout_s=1.0
    )
    head = b"POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    with ServerThread(config) as server:
        half_headers = [socket.create_connection(("127.0.0.1", config.port), 30) for _ in range(40)]
        half_bodies = [socket.create_connection(("127.0.0.1", config.port), 30) for _ in range(10)]
        for sock in half_headers:
            sock.sendall(head + b"X-Slow: ")
        for sock in half_bodies:
            sock.sendall(head + b"Content-Length: 5000\r\n\r\n" + b'{"sdp": "v=0')
        for sock in half_headers:
            with sock:
                assert read_until_closed(sock) == b""  # hung up on, nothing kept open
        for sock in half_bodies:
            with sock:
                reply = read_until_closed(sock)
                assert reply.startswith(b"HTTP/1.1 408") and b'"error"' in reply
        with socket.create_connection(("127.0.0.1", config.port), 30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert read_until_closed(sock).startswith(b"HTTP/1.1 200")
        assert server.call(viewer_gets_frames(server.url)) > 10


async def viewer_gets_frames(url: str) -> float:
    """Connect a viewer over real HTTP; the difference of its stylized frame from the camera."""
    viewer = Viewer()
    try:
        body = await viewer.offer()
        async with aiohttp.ClientSession() as session, session.post(f"{url}/offer", json=body) as r:
            answer = await r.json()
        await viewer.pc.setRemoteDescription(RTCSessionDescription(**answer))
        return difference(await viewer.latest_image(skip=2), viewer.camera.image)
    finally:
        await viewer.close()


def test_a_short_admin_token_stops_the_server_with_one_line(models_dir, tmp_path):
    command = [sys.executable, "-m", "server", "--models-dir", str(models_dir), "--device", "cpu"]
    command += ["--data-dir", str(tmp_path / "var"), "--port", str(free_port())]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STYLEFUSION_ADMIN_TOKEN": "hunter2"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "16 characters" in lines[0], result.stderr
    assert "hunter2" not in result.stderr


def test_limit_and_security_flags_reach_the_config():
    from server.__main__ import build_parser, config_from_args

    args = ["--max-offer-kb", "32", "--max-pending", "5", "--connect-timeout", "4"]
    args += ["--max-message-kb", "16", "--header-timeout", "7", "--admin-failures", "3"]
    args += ["--turn-secret", "s", "--allowed-host", "a.example", "--allowed-host", "b.example"]
    args += ["--ice-allow", "10.1.2.3/8", "--ice-allow", "2001:db8::/32"]
    args += ["--trusted-proxy", "192.0.2.10/32"]
    config = config_from_args(build_parser().parse_args(args))
    assert (config.max_offer_bytes, config.max_message_bytes) == (32 * 1024, 16 * 1024)
    assert (config.max_pending_per_client, config.connect_timeout_s) == (5, 4.0)
    assert (config.header_timeout_s, config.admin_failures, config.turn_secret) == (7.0, 3, "s")
    assert config.allowed_hosts == ("a.example", "b.example")
    assert config.ice_allow == ("10.0.0.0/8", "2001:db8::/32")
    assert config.trusted_proxies == ("192.0.2.10/32",)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--ice-allow", "not-a-network"])


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")
async def test_admin_page_says_when_token_guesses_are_throttled(
    aiohttp_server, models_dir, tmp_path
):
    from playwright.async_api import async_playwright, expect

    config = test_config(models_dir, tmp_path, admin_failures=1, admin_failure_window_s=60.0)
    server = await aiohttp_server(create_app(config))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(str(server.make_url("/admin")))
            await page.fill("#token", "wrong-token-0123456789")
            await page.click("#token-save")
            await expect(page.locator("#token-error")).to_contain_text("not right")
            await page.fill("#token", config.admin_token)
            await page.click("#token-save")
            await expect(page.locator("#token-error")).to_contain_text("Too many wrong tokens")
            await expect(page.locator("#token-dialog")).to_be_visible()
        finally:
            await browser.close()
