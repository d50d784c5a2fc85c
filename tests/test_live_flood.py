"""Control-channel floods: past the rate the peer gets error events, a peer that keeps flooding
is dropped, style switches do not fill the log, and the other viewers keep their frames."""

from __future__ import annotations

import asyncio
import logging

import pytest
from webrtc_helpers import Viewer, test_config

from server.app import create_app
from server.live.keys import PEERS

pytestmark = pytest.mark.timeout(120)

# a slow allowance, so that how fast aiortc delivers the messages on a loaded box cannot matter
RATE, BURST = 1.0, 10


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, control_rate=RATE, control_burst=BURST)
    return await aiohttp_client(create_app(config))


async def connected(client, style: str = "alpha") -> Viewer:
    """A viewer with its control channel open."""
    viewer = Viewer()
    await viewer.connect(client, style=style)
    await viewer.wait_open()
    return viewer


def errors(viewer: Viewer) -> list[str]:
    """The error texts the viewer was sent so far."""
    return [m["error"] for m in viewer.messages if m.get("event") == "error"]


async def test_a_burst_past_the_rate_gets_an_error_event_and_the_peer_stays(client):
    viewer = await connected(client)
    try:
        for i in range(BURST + 5):  # 5 over the burst: refused, far from dropping the peer
            viewer.send({"strength": round(0.5 + i / 100, 2)})
        error = await viewer.wait_message(lambda m: m.get("event") == "error")
        assert "too many control messages" in error["error"]
        assert len(client.app[PEERS]) == 1
        await viewer.next_image()
    finally:
        await viewer.close()


async def test_a_peer_that_keeps_flooding_is_dropped_quietly(client, caplog):
    caplog.set_level(logging.DEBUG, logger="server.live.control")
    caplog.set_level(logging.INFO)
    calm, flooder = await connected(client), await connected(client)
    try:
        peers = client.app[PEERS]
        for i in range(3000):
            flooder.send({"style": ("beta", "alpha")[i % 2]})
        async with asyncio.timeout(60):
            while len(peers) > 1:
                await asyncio.sleep(0.05)
        assert [p.id for p in peers] and errors(calm) == []
        assert len(errors(flooder)) <= 3  # one error event a second at most, not an echo
        await calm.next_image()
        assert await calm.switch_style("beta") == {"event": "style", "style": "beta"}
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
        assert len([line for line in lines if "style" in line]) < 10, lines[:10]
        assert sum("flooding" in r.getMessage() for r in caplog.records) == 1
        assert peers.dropped["control_flood"] == 1
    finally:
        await calm.close()
        await flooder.close()


def test_the_control_rate_flags_reach_the_config_and_the_help():
    from server.__main__ import build_parser, config_from_args

    parser = build_parser()
    config = config_from_args(parser.parse_args(["--control-rate", "5", "--control-burst", "7"]))
    assert (config.control_rate, config.control_burst) == (5.0, 7)
    assert "--control-rate" in parser.format_help() and "--control-burst" in parser.format_help()
