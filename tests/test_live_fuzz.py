"""Seeded fuzzing of POST /offer and of the control data channel: no 5xx, no dead server."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
from webrtc_helpers import Viewer, test_config

from server.app import create_app
from server.live.keys import PEERS

pytestmark = pytest.mark.timeout(180)

SEED = 8
CONTENT_TYPES = [*["application/json"] * 8, "text/plain", "application/json; charset=utf-8"]
JUNK = ["", "\x00", "é", "\U0001f600", "\r\n", "=", ":", " ", "-1", "99999999999999999999", "nan"]


def mutate_text(rng: random.Random, text: str) -> str:
    """One random edit of a string: flip, insert, delete or truncate."""
    if not text:
        return rng.choice(JUNK)
    i = rng.randrange(len(text))
    edit = rng.randrange(4)
    if edit == 0:
        return text[:i] + chr(rng.randrange(32, 0x250)) + text[i + 1 :]
    if edit == 1:
        return text[:i] + rng.choice(JUNK) + text[i:]
    if edit == 2:
        return text[:i] + text[i + rng.randrange(1, 20) :]
    return text[:i]


def mutate_sdp(rng: random.Random, sdp: str) -> str:
    """A few line-level and character-level edits of an SDP."""
    lines = sdp.split("\r\n")
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(lines))
        edit = rng.randrange(5)
        if edit == 0:
            del lines[i]
        elif edit == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif edit == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = mutate_text(rng, lines[i])
    return rng.choice(["\r\n", "\n"]).join(lines)


def mutate_body(rng: random.Random, offer: dict[str, str]) -> bytes:
    """A mutated offer body: a mutated SDP in a valid body, or a broken body."""
    kind = rng.randrange(6)
    if kind <= 2:
        return json.dumps({**offer, "sdp": mutate_sdp(rng, offer["sdp"])}).encode()
    if kind == 3:
        value: Any = rng.choice([None, 5, [], {}, "", "offer", "x" * 100, ["v=0"], 1e308])
        field = rng.choice(["sdp", "type", "style"])
        return json.dumps({**offer, field: value}).encode()
    if kind == 4:
        text = json.dumps(offer)
        return mutate_text(rng, text).encode("utf-8", "surrogatepass")
    depth = rng.randrange(1, 30_000)
    noise = bytes(rng.randrange(256) for _ in range(99))
    return rng.choice([b"[" * depth, b'{"a":' * depth, noise])


def own_networks(sdp: str) -> tuple[str, ...]:
    """The viewer's own candidate addresses as /32s (mutated addresses are never checked)."""
    addresses = {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")}
    return tuple(f"{a}/32" for a in addresses if ":" not in a) + ("127.0.0.0/8",)


async def test_offer_fuzz(aiohttp_client, models_dir, tmp_path):
    probe = Viewer()
    offer = await probe.offer()
    await probe.close()
    config = test_config(models_dir, tmp_path, ice_allow=own_networks(offer["sdp"]))
    client = await aiohttp_client(create_app(config))
    peers, rng, statuses = client.app[PEERS], random.Random(SEED), Counter()
    for i in range(120):
        body = mutate_body(rng, offer)
        content_type = rng.choice(CONTENT_TYPES)
        response = await client.post("/offer", data=body, headers={"Content-Type": content_type})
        assert response.status < 500, (i, body[:300], await response.text())
        if response.status != 200:
            assert "error" in await response.json()
        statuses[response.status] += 1
        for peer in list(peers):
            await peers.remove(peer)
    assert statuses[200] and statuses[400] and statuses[415]  # every path was taken
    await assert_viewer_connects(client)


async def assert_viewer_connects(client) -> None:
    """A normal viewer still connects and gets frames."""
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.latest_image(skip=1)
    finally:
        await viewer.close()


def mutated_message(rng: random.Random) -> str | bytes:
    """A mutated control message (never a valid switch to "beta")."""
    base = json.dumps(rng.choice([{"style": "alpha", "strength": 0.5}, {"strength": 1}]))
    kind = rng.randrange(6)
    if kind <= 2:
        return mutate_text(rng, base)
    if kind == 3:
        value = rng.choice([None, True, -1, 2, 1e999, "0.5", [0.5], {"a": 1}, "../beta", "x" * 999])
        return json.dumps({rng.choice(["style", "strength"]): value})
    if kind == 4:
        return rng.choice(["[", "{"]) * rng.randrange(1, 5_000)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


async def test_control_channel_fuzz(aiohttp_client, models_dir, tmp_path):
    # 300 messages at once are a flood: this tests the parsing (test_live_flood.py the rate)
    config = test_config(models_dir, tmp_path, control_rate=1000.0, control_burst=1000)
    client = await aiohttp_client(create_app(config))
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        rng = random.Random(SEED)
        for _ in range(300):
            viewer.channel.send(mutated_message(rng))
        viewer.send({"style": "beta"})
        await viewer.wait_message(lambda m: m == {"event": "style", "style": "beta"}, timeout=30)
        assert any(m.get("event") == "error" for m in viewer.messages)
        await viewer.next_image()
        assert len(client.app[PEERS]) == 1
    finally:
        await viewer.close()
