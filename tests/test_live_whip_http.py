"""The HTTP side of WHIP/WHEP: trickle PATCHes, ETags, OPTIONS, limits and refusals (JSON)."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from webrtc_helpers import ADMIN_TOKEN, test_config
from whip_helpers import (
    SDPFRAG,
    Publisher,
    ToneTrack,
    Watcher,
    fragment,
    patch_fragment,
    post_sdp,
    wait_for,
    without_candidates,
)

from server.app import create_app
from server.live.keys import PEERS, RESOURCES, STREAMS

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    config = test_config(
        models_dir, tmp_path, max_streams=2, max_watchers=1, max_peers_per_client=4
    )
    return await aiohttp_client(create_app(config))


def remote_candidates(client, location: str) -> list:
    """The remote ICE candidates the server's side of a session has."""
    (resource,) = [r for r in client.app[RESOURCES]._by_url.values() if r.location == location]
    transceiver = resource.session.pc.getTransceivers()[0]
    return transceiver.receiver.transport.transport.getRemoteCandidates()


@pytest.mark.parametrize("kind", ["whip", "whep"])
async def test_trickled_candidates_reach_the_ice_agent(client, kind):
    publisher = Publisher(audio=False)
    watcher = Watcher(audio=False)
    try:
        if kind == "whip":
            answer = await publisher.publish(client, "cam", trickle=True)
            peer = publisher
        else:
            await publisher.publish(client, "cam")
            await watcher.pc.setLocalDescription(await watcher.pc.createOffer())
            sdp = watcher.pc.localDescription.sdp
            posted, candidates = without_candidates(sdp)
            answer = await post_sdp(client, "/whep/cam", posted, None)
            assert answer.status == 201, answer.body
            assert remote_candidates(client, answer.location) == []
            status, body = await patch_fragment(
                client, answer.location, fragment(sdp, candidates), answer.etag
            )
            assert status == 204, body
            await watcher.pc.setRemoteDescription(RTCSessionDescription(answer.body, "answer"))
            peer = watcher
        host = [c for c in remote_candidates(client, answer.location) if c.type == "host"]
        assert host, "the trickled host candidates were not added"
        await wait_for(lambda: peer.pc.connectionState == "connected")
    finally:
        await watcher.close()
        await publisher.close()


async def test_patch_follows_the_rfc_preconditions(client):
    publisher = Publisher(audio=False)
    try:
        sdp = await publisher.offer()
        posted, candidates = without_candidates(sdp)
        answer = await post_sdp(client, "/whip/cam", posted, ADMIN_TOKEN)
        assert answer.status == 201
        frag, where = fragment(sdp, candidates[:1], end=False), answer.location
        cases = [
            (None, SDPFRAG, frag, 428),  # If-Match is required
            ('"stale"', SDPFRAG, frag, 412),  # another ICE session's entity-tag
            (answer.etag, "application/sdp", frag, 415),
            (answer.etag, SDPFRAG, "a=candidate:garbage\r\n", 400),
            (answer.etag, SDPFRAG, "hello\r\n", 400),
            (answer.etag, SDPFRAG, fragment(sdp, [], ufrag="restart1"), 422),  # ICE restart
            (answer.etag, SDPFRAG, fragment(sdp, candidates[:1] * 40), 400),  # over the cap
        ]
        for if_match, content_type, body, status in cases:
            got, text = await patch_fragment(client, where, body, if_match, content_type)
            assert got == status, (if_match, body, text)
            assert "error" in text
        assert (await patch_fragment(client, where, frag, "*"))[0] == 204
        assert (await patch_fragment(client, where, frag, answer.etag))[0] == 204
        unknown = where.rsplit("/", 1)[0] + "/nope"
        assert (await patch_fragment(client, unknown, frag, "*"))[0] == 404
    finally:
        await publisher.close()


async def test_options_say_what_each_url_allows(client):
    for path in ("/whip/cam", "/whep/cam"):
        response = await client.options(path)
        assert response.status == 204
        assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
        assert response.headers["Accept-Post"] == "application/sdp"
    publisher = Publisher(audio=False)
    try:
        answer = await publisher.publish(client, "cam")
        response = await client.options(answer.location)
        assert response.status == 204
        assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "PATCH", "DELETE"}
        assert response.headers["Accept-Patch"] == SDPFRAG
    finally:
        await publisher.close()


async def test_refusals_are_json(client):
    sdp = await Publisher(audio=False).offer()
    cases = [
        ("/whip/bad%20name", sdp, ADMIN_TOKEN, "application/sdp", 400),
        ("/whip/cam", sdp, ADMIN_TOKEN, "application/json", 415),
        ("/whip/cam", "not sdp", ADMIN_TOKEN, "application/sdp", 400),
        ("/whip/cam", sdp + "a=x" * 30000, ADMIN_TOKEN, "application/sdp", 413),
        ("/whip/cam?style=nope", sdp, ADMIN_TOKEN, "application/sdp", 400),
        ("/whep/nobody", sdp, None, "application/sdp", 404),
        ("/whep/cam", "\xff", None, "application/sdp", 400),
    ]
    for path, body, token, content_type, status in cases:
        reply = await post_sdp(client, path, body, token, content_type)
        assert reply.status == status, (path, reply.body)
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.error()
    assert len(client.app[PEERS]) == 0 and len(client.app[STREAMS]) == 0


async def test_audio_only_offer_is_refused(client):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(ToneTrack())  # a microphone and no camera: nothing to stylize
    try:
        await pc.setLocalDescription(await pc.createOffer())
        reply = await post_sdp(client, "/whip/cam", pc.localDescription.sdp, ADMIN_TOKEN)
        assert reply.status == 400 and "video" in reply.error()
        assert len(client.app[STREAMS]) == 0 and len(client.app[PEERS]) == 0
    finally:
        await pc.close()


async def test_streams_and_watchers_are_capped(client):
    publishers = [Publisher(audio=False) for _ in range(3)]
    watchers = [Watcher(audio=False), Watcher(audio=False)]
    try:
        assert (await publishers[0].publish(client, "one")).status == 201
        taken = await publishers[1].publish(client, "one")
        assert taken.status == 409 and "already" in taken.error()
        assert (await publishers[1].publish(client, "two")).status == 201
        full = await publishers[2].publish(client, "three")
        assert full.status == 503 and "2 streams" in full.error()
        assert (await watchers[0].watch(client, "one")).status == 201
        crowded = await watchers[1].watch(client, "two")
        assert crowded.status == 503 and "1 watchers" in crowded.error()
    finally:
        for peer in publishers + watchers:
            await peer.close()


async def test_half_open_watchers_of_one_client_are_capped(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, max_pending_per_client=2)
    client = await aiohttp_client(create_app(config))
    publisher = Publisher(audio=False)
    stuck = [Watcher(audio=False) for _ in range(3)]
    try:
        await publisher.publish(client, "cam")
        for i, watcher in enumerate(stuck):  # answers never applied: they never connect
            await watcher.pc.setLocalDescription(await watcher.pc.createOffer())
            reply = await post_sdp(client, "/whep/cam", watcher.pc.localDescription.sdp, None)
            assert reply.status == (201 if i < 2 else 429), reply.body
        assert "Retry-After" in reply.headers and "still connecting" in reply.error()
        assert len(list(client.app[STREAMS].watchers())) == 2
    finally:
        for watcher in stuck:
            await watcher.close()
        await publisher.close()


async def test_a_watcher_that_never_connects_is_dropped(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, connect_timeout_s=4.0)
    client = await aiohttp_client(create_app(config))
    publisher, ghost = Publisher(audio=False), Watcher(audio=False)
    try:
        await publisher.publish(client, "cam")
        await publisher.wait_connected()
        await ghost.pc.setLocalDescription(await ghost.pc.createOffer())
        reply = await post_sdp(client, "/whep/cam", ghost.pc.localDescription.sdp, None)
        assert reply.status == 201
        streams, urls = client.app[STREAMS], client.app[RESOURCES]._by_url.values()
        await wait_for(lambda: not list(streams.watchers()), timeout=30)
        await wait_for(lambda: all(r.location != reply.location for r in urls))  # once closed
        assert (await client.delete(reply.location)).status == 404
    finally:
        await ghost.close()
        await publisher.close()
