"""Client identity: X-Forwarded-For counts only from --trusted-proxy networks, so no local
process picks its own identity to dodge the per-client limits."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from webrtc_helpers import Viewer, test_config

from server.app import create_app
from server.clients import client_address
from server.keys import CONFIG
from server.live.keys import PEERS

LOCAL = ("127.0.0.1/32",)  # what the nginx recipe names: nginx on this machine


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "client"),
    [
        ("127.0.0.1", "6.6.6.6", (), "127.0.0.1"),  # the loopback is no longer implied
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", LOCAL, "198.51.100.7"),  # the hop it appended
        (
            "127.0.0.1",
            ["6.6.6.6", "203.0.113.5, 198.51.100.8"],  # several headers: the last hop of all
            LOCAL,
            "198.51.100.8",
        ),
        ("127.0.0.1", "not-an-ip", LOCAL, "127.0.0.1"),  # junk counts as the proxy itself
        ("127.0.0.1", "198.51.100.7, 1.2.3.4:80", LOCAL, "127.0.0.1"),
        ("198.51.100.1", "203.0.113.9", (), "198.51.100.1"),  # anyone else cannot claim one
        ("198.51.100.1", "203.0.113.9", LOCAL, "198.51.100.1"),
        ("10.0.0.2", "203.0.113.9", ("10.0.0.0/24",), "203.0.113.9"),
        ("10.0.0.2", "2001:db8:7:8::1", ("10.0.0.0/24",), "2001:db8:7:8::/64"),
        ("2001:db8:5:6::1", None, (), "2001:db8:5:6::/64"),
    ],
)
def test_client_address_believes_only_trusted_proxies(peer, forwarded, proxies, client):
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    values = [forwarded] if isinstance(forwarded, str) else forwarded or []
    headers = [("X-Forwarded-For", value) for value in values]
    request = make_mocked_request("GET", "/", headers=headers, transport=transport)
    assert client_address(request, proxies) == client


async def test_rotating_forwarded_for_does_not_dodge_the_admin_throttle(
    aiohttp_client, models_dir, tmp_path
):
    client = await aiohttp_client(create_app(test_config(models_dir, tmp_path)))
    statuses = []
    for i in range(30):
        headers = {"Authorization": "Bearer wrong-token-012345678", "X-Forwarded-For": f"6.6.{i}.1"}
        statuses.append((await client.get("/api/jobs", headers=headers)).status)
    limit = client.app[CONFIG].admin_failures
    assert statuses[:limit] == [401] * limit
    assert set(statuses[limit:]) == {429}


async def test_rotating_forwarded_for_does_not_fill_the_slots(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, max_peers=8)
    client = await aiohttp_client(create_app(config))
    ghosts = [Viewer() for _ in range(8)]
    try:
        statuses = []
        for i, ghost in enumerate(ghosts):  # half-open: the answers are never applied
            headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
            response = await client.post("/offer", json=await ghost.offer(), headers=headers)
            statuses.append(response.status)
        assert statuses == [200] * config.max_pending_per_client + [429] * (
            8 - config.max_pending_per_client
        )
        assert len(client.app[PEERS]) == config.max_pending_per_client
        health = await (await client.get("/healthz")).json()
        assert health["at_capacity"] is False
    finally:
        for ghost in ghosts:
            await ghost.close()
