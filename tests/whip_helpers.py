"""WHIP publishers and WHEP watchers on aiortc, speaking RFC 9725 to the real app."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from av import AudioFrame, VideoFrame
from webrtc_helpers import ADMIN_TOKEN, FrameReceiver, PatternTrack

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"

Client = TestClient | ClientSession  # in-process app, or a real server over TCP


class ToneTrack(AudioStreamTrack):
    """A microphone playing a quiet 440 Hz tone (aiortc's 20 ms mono s16 frames at 8 kHz)."""

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # silence with proper pts, paced in real time
        rate = frame.sample_rate
        t = (np.arange(frame.samples) + frame.pts) / rate
        tone = (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        out = AudioFrame.from_ndarray(tone[None, :], format="s16", layout="mono")
        out.sample_rate, out.pts, out.time_base = rate, frame.pts, fractions.Fraction(1, rate)
        return out


def without_candidates(sdp: str) -> tuple[str, list[str]]:
    """An offer as a trickling client posts it (no candidates yet) and the candidate lines."""
    lines = sdp.splitlines()
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    kept = [line for line in lines if line not in candidates and line != "a=end-of-candidates"]
    return "\r\n".join(kept) + "\r\n", candidates


def fragment(sdp: str, candidates: list[str], end: bool = True, ufrag: str | None = None) -> str:
    """A trickle-ice-sdpfrag for the first media section of `sdp` (RFC 8840)."""
    lines = sdp.splitlines()
    first = lambda prefix: next(line for line in lines if line.startswith(prefix))  # noqa: E731
    mline = first("m=")
    head = [f"a=ice-ufrag:{ufrag}" if ufrag else first("a=ice-ufrag:"), first("a=ice-pwd:")]
    body = [*head, mline, first("a=mid:"), *candidates]
    return "\r\n".join(body + (["a=end-of-candidates"] if end else [])) + "\r\n"


class Reply:
    """What a WHIP/WHEP POST answered: status, Location, ETag and the JSON error if any."""

    def __init__(self, status: int, headers: Any, body: str) -> None:
        self.status = status
        self.headers = headers
        self.location = headers.get("Location")
        self.etag = headers.get("ETag")
        self.body = body

    def error(self) -> str:
        """The JSON error text of a refusal."""
        return json.loads(self.body)["error"]


async def post_sdp(
    client: Client, path: str, sdp: str, token: str | None, content_type: str = SDP
) -> Reply:
    """POST an SDP offer (RFC 9725 4.2)."""
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with client.post(path, data=sdp.encode(), headers=headers) as response:
        return Reply(response.status, response.headers, await response.text())


async def patch_fragment(
    client: Client, location: str, body: str, if_match: str | None, content_type: str = SDPFRAG
) -> tuple[int, str]:
    """PATCH a session URL with a fragment; returns (status, body)."""
    headers = {"Content-Type": content_type}
    if if_match is not None:
        headers["If-Match"] = if_match
    async with client.patch(location, data=body.encode(), headers=headers) as response:
        return response.status, await response.text()


class Publisher:
    """A WHIP client: a fake camera and a tone, optionally a `control` channel (as Share)."""

    def __init__(
        self,
        width: int = 160,
        height: int = 120,
        seed: int = 0,
        audio: bool = True,
        control: bool = False,
        camera: MediaStreamTrack | None = None,
    ) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.camera = camera or PatternTrack(width, height, seed)
        self.pc.addTrack(self.camera)
        if audio:
            self.pc.addTrack(ToneTrack())
        self.messages: list[dict[str, Any]] = []
        self.channel = self.pc.createDataChannel("control") if control else None
        if self.channel is not None:
            self.channel.on("message", lambda raw: self.messages.append(json.loads(raw)))
        self.session: Reply | None = None

    async def offer(self) -> str:
        """The local offer, every candidate included (aiortc gathers before it answers)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def publish(
        self,
        client: Client,
        stream: str,
        token: str | None = ADMIN_TOKEN,
        style: str | None = None,
        trickle: bool = False,
    ) -> Reply:
        """POST /whip/STREAM; apply a 201's answer (trickle: candidates follow in a PATCH)."""
        sdp = await self.offer()
        path = f"/whip/{stream}" + (f"?style={style}" if style else "")
        posted, candidates = without_candidates(sdp) if trickle else (sdp, [])
        self.session = session = await post_sdp(client, path, posted, token)
        if session.status == 201:
            await self.pc.setRemoteDescription(RTCSessionDescription(session.body, "answer"))
            if trickle:
                status, text = await patch_fragment(
                    client, session.location, fragment(sdp, candidates), session.etag
                )
                assert status == 204, text
        return session

    async def wait_connected(self, timeout: float = 20) -> None:
        """Until ICE and DTLS are up."""
        await wait_for(lambda: self.pc.connectionState == "connected", timeout)

    async def close(self) -> None:
        """Hang up without a DELETE (as a client that crashes politely)."""
        await self.pc.close()


class Watcher(FrameReceiver):
    """A WHEP client: receives video (frames kept) and audio (frames counted)."""

    def __init__(self, audio: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.frames: asyncio.Queue[VideoFrame] = asyncio.Queue()
        self.audio_frames = 0
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", lambda t: self._readers.append(asyncio.ensure_future(self._read(t))))
        self.session: Reply | None = None

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    await self.frames.put(frame)
                else:
                    self.audio_frames += 1
        except MediaStreamError:
            pass

    async def watch(self, client: Client, stream: str, token: str | None = None) -> Reply:
        """POST /whep/STREAM and apply a 201's answer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.session = session = await post_sdp(
            client, f"/whep/{stream}", self.pc.localDescription.sdp, token
        )
        if session.status == 201:
            await self.pc.setRemoteDescription(RTCSessionDescription(session.body, "answer"))
        return session

    async def wait_closed(self, timeout: float = 30) -> None:
        """Until the server has hung up on this watcher."""
        await wait_for(lambda: self.pc.connectionState in ("closed", "failed"), timeout)

    async def close(self) -> None:
        """Hang up and stop reading."""
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


async def wait_for(condition: Callable[[], bool], timeout: float = 20, step: float = 0.05) -> None:
    """Poll until condition() holds (a state with no event to await), or fail after timeout."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(step)


@contextlib.asynccontextmanager
async def on_air(
    client: Client, stream: str = "cam", watchers: int = 1, audio: bool = False, **publishing: Any
) -> AsyncIterator[tuple[Publisher, list[Watcher]]]:
    """A published stream and its watchers, each with a first frame in; all closed after."""
    publisher = Publisher(audio=audio)
    watching = [Watcher(audio=audio) for _ in range(watchers)]
    try:
        answer = await publisher.publish(client, stream, **publishing)
        assert answer.status == 201, answer.body
        for watcher in watching:
            reply = await watcher.watch(client, stream)
            assert reply.status == 201, reply.body
            await watcher.next_image()
        yield publisher, watching
    finally:
        for watcher in watching:
            await watcher.close()
        await publisher.close()
