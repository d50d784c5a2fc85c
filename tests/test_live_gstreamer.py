"""A publisher that is not ours: GStreamer's webrtcbin posts its offer per RFC 9725.

tests/gst_whip_client.py runs under Debian's /usr/bin/python3 (python3-gst-1.0 is not in the
venv); .ci/run installs GStreamer, and these tests skip where it is missing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from aiohttp import ClientSession
from webrtc_helpers import ADMIN_TOKEN, ServerThread, difference, free_port, test_config
from whip_helpers import Watcher, wait_for

from server.live.keys import STREAMS

pytestmark = pytest.mark.timeout(240)

SYSTEM_PYTHON = Path("/usr/bin/python3")
CLIENT = Path(__file__).resolve().parent / "gst_whip_client.py"
COLOUR = (0x20, 0x60, 0xC0)  # the client's flat camera, as RGB
NEEDED = ("webrtcbin", "nicesrc", "dtlssrtpenc", "vp8enc", "opusenc", "videotestsrc")
PROBE = (
    "import sys, gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0');"
    "gi.require_version('GstSdp', '1.0'); from gi.repository import Gst; Gst.init(None);"
    f"sys.exit(0 if all(Gst.ElementFactory.find(e) for e in {NEEDED!r}) else 1)"
)


@functools.cache
def gstreamer_missing() -> str | None:
    """Why the GStreamer client cannot run here, or None."""
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} is missing"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, timeout=60)
    if probe.returncode != 0:
        return "GStreamer webrtcbin is not installed (see .ci/run)"
    return None


@pytest.fixture
def gstreamer() -> None:
    reason = gstreamer_missing()
    if reason:
        pytest.skip(reason)


class GstPublisher:
    """The client as a child process; its JSON event lines are read as they come."""

    def __init__(self, url: str, *options: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # Debian's Python only
        command = [SYSTEM_PYTHON, CLIENT, url, "--token", ADMIN_TOKEN, "--seconds", "120"]
        self.process = subprocess.Popen(
            [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.events: list[dict] = []

    def wait_event(self, name: str, **fields: object) -> dict:
        """Read events until one named `name` (with these fields) comes."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == name and all(event.get(k) == v for k, v in fields.items()):
                return event
            assert event["event"] not in ("timeout", "http-error", "offer-failed"), event
        raise AssertionError(f"the client ended before {name}: {self.stderr()}")

    def stderr(self) -> str:
        """What the client printed on stderr (after it ended)."""
        self.process.wait(30)
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        """Kill the client if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


async def remote_candidate_types(server: ServerThread, stream: str) -> list[str]:
    """The types of the remote ICE candidates the server holds for a stream's publisher."""

    async def types() -> list[str]:
        publisher = server.app[STREAMS].live(stream).publisher
        transport = publisher.pc.getTransceivers()[0].receiver.transport.transport
        return [candidate.type for candidate in transport.getRemoteCandidates()]

    return server.call(types())


@pytest.mark.parametrize(
    ("trickle", "ending"), [(False, "delete"), (True, "vanish")], ids=["gathered", "trickled"]
)
async def test_a_gstreamer_publisher_is_watched_stylized(
    gstreamer, models_dir, tmp_path, trickle, ending
):
    config = test_config(models_dir, tmp_path, port=free_port(), publisher_timeout_s=4.0)
    with ServerThread(config) as server:
        options = ["--trickle"] if trickle else []
        options += ["--no-delete"] if ending == "vanish" else []
        publisher = GstPublisher(f"{server.url}/whip/gst?style=alpha", *options)
        watcher = Watcher(audio=True)
        try:
            created = publisher.wait_event("created")
            assert created["status"] == 201 and "/whip/gst/" in created["location"]
            publisher.wait_event("state", state="connected")
            async with ClientSession(base_url=server.url) as http:
                await wait_live(http, "gst")
                assert (await watcher.watch(http, "gst")).status == 201
                image = await watcher.latest_image(timeout=30)
                flat = np.empty_like(image)
                flat[:] = COLOUR
                height, width, _ = image.shape  # 320x240, or less if the send budget says so
                assert width <= 320 and abs(width / height - 4 / 3) < 0.05
                assert difference(image, flat) > 10  # stylized, not the flat camera
                await wait_for(lambda: watcher.audio_frames > 10, timeout=30)  # the sine tone
                if trickle:
                    patched = [e for e in publisher.events if e["event"] == "patched"]
                    assert patched and all(e["status"] == 204 for e in patched)
                    assert "host" in await remote_candidate_types(server, "gst")
                if ending == "delete":
                    publisher.process.send_signal(signal.SIGTERM)  # the client DELETEs
                    assert publisher.wait_event("deleted")["status"] == 200
                else:
                    publisher.process.kill()  # no goodbye: the server notices the silence
                await watcher.wait_closed(timeout=60)
                listed = await (await http.get("/api/streams")).json()
                assert listed == {"streams": []}
        finally:
            publisher.stop()
            await watcher.close()


async def wait_live(http: ClientSession, name: str, timeout: float = 60) -> None:
    """Until GET /api/streams lists the stream with stylized frames going out."""
    async with asyncio.timeout(timeout):
        while True:
            listed = (await (await http.get("/api/streams")).json())["streams"]
            if any(s["name"] == name and s["fps"] > 0 for s in listed):
                return
            await asyncio.sleep(0.2)
