#!/usr/bin/env python3
"""A WHIP publisher on GStreamer's webrtcbin (RFC 9725): a second WebRTC stack for the tests.

Run with Debian's Python (python3-gst-1.0 lives there, not in the venv):

    /usr/bin/python3 tests/gst_whip_client.py http://127.0.0.1:8080/whip/cam --token T \
        [--trickle] [--seconds 10] [--color 0x2060c0] [--no-delete]

A flat-coloured 320x240 camera at 15 fps (VP8) and a sine tone (Opus), sendonly, BUNDLEd.
Without --trickle the offer is posted once ICE gathering completes (candidates inside); with
it the offer goes at once and each candidate follows in a PATCH (If-Match: the 201's ETag),
then `a=end-of-candidates`. Prints one JSON line per event on stdout; after --seconds of
being connected, or on SIGTERM, it DELETEs the session (unless --no-delete) and exits 0;
exits 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

PIPELINE = (
    "webrtcbin name=webrtc bundle-policy=max-bundle "
    "videotestsrc is-live=true pattern=solid-color foreground-color={color} "
    "! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! queue "
    "! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=30 target-bitrate=500000 "
    "! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96 ! webrtc. "
    "audiotestsrc is-live=true wave=sine volume=0.1 ! audioconvert ! audioresample ! opusenc "
    "! rtpopuspay pt=97 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=97 ! webrtc."
)


SAYING = threading.Lock()  # GStreamer's threads and the HTTP worker both report


def say(event: str, **fields: object) -> None:
    """One JSON line for the test to read."""
    with SAYING:
        print(json.dumps({"event": event, **fields}), flush=True)


class WhipClient:
    """Negotiates webrtcbin's offer with a WHIP endpoint; HTTP runs on one worker thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.parse_launch(PIPELINE.format(color=args.color))
        self.webrtc = self.pipeline.get_by_name("webrtc")
        self.location: str | None = None
        self.etag: str | None = None
        self.offer_text = ""
        self.pending: list[str] = []  # candidates gathered before the 201 came back
        self.http: queue.Queue = queue.Queue()
        self.exit_code = 1
        self.finishing = False
        threading.Thread(target=self._http_worker, daemon=True).start()
        for transceiver in self._transceivers():
            transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        self.webrtc.connect("on-negotiation-needed", self._on_negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self._on_ice_candidate)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        self.webrtc.connect("notify::connection-state", self._on_connection)

    def _transceivers(self) -> list:
        found, index = [], 0
        while (transceiver := self.webrtc.emit("get-transceiver", index)) is not None:
            found.append(transceiver)
            index += 1
        return found

    def run(self) -> int:
        """Stream until done; the exit code."""
        self.pipeline.set_state(Gst.State.PLAYING)
        GLib.timeout_add_seconds(self.args.timeout, self._give_up)
        # SIGTERM: hang up politely (DELETE), as a streamer pressing Stop does
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self._finish)
        self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        return self.exit_code

    def _give_up(self) -> bool:
        say("timeout")
        self.loop.quit()
        return False

    # -- signalling ---------------------------------------------------------------------
    def _on_negotiation_needed(self, webrtc: Gst.Element) -> None:
        if self.offer_text:  # one offer per session: WHIP has no renegotiation
            return
        promise = Gst.Promise.new_with_change_func(self._on_offer, None)
        webrtc.emit("create-offer", None, promise)

    def _on_offer(self, promise: Gst.Promise, _data: object) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            say("offer-failed", reply=reply.to_string() if reply is not None else None)
            GLib.idle_add(self.loop.quit)
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        self.offer_text = offer.sdp.as_text()
        if self.args.trickle:
            self.http.put(("post", self.offer_text))

    def _on_gathering(self, webrtc: Gst.Element, _spec: object) -> None:
        state = webrtc.get_property("ice-gathering-state")
        if state != GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            return
        if self.args.trickle:
            self.http.put(("patch", "a=end-of-candidates"))
        else:  # the local description now lists every candidate
            self.http.put(("post", webrtc.get_property("local-description").sdp.as_text()))

    def _on_ice_candidate(self, _webrtc: Gst.Element, _mline: int, candidate: str) -> None:
        if self.args.trickle and candidate:
            self.http.put(("patch", "a=" + candidate))

    def _on_connection(self, webrtc: Gst.Element, _spec: object) -> None:
        state = webrtc.get_property("connection-state")
        say("state", state=state.value_nick)
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            GLib.timeout_add_seconds(self.args.seconds, self._finish)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            self.loop.quit()

    def _finish(self) -> bool:
        if self.finishing:  # the timer and SIGTERM may both come
            return False
        self.finishing = True
        if not self.args.no_delete:
            self.http.put(("delete", ""))
        else:
            self.exit_code = 0
            self.loop.quit()
        return False

    # -- HTTP (RFC 9725) ----------------------------------------------------------------
    def _http_worker(self) -> None:
        while True:
            kind, payload = self.http.get()
            try:
                getattr(self, f"_{kind}")(payload)
            except (urllib.error.URLError, OSError) as exc:
                say("http-error", kind=kind, error=str(exc))
                GLib.idle_add(self.loop.quit)

    def _request(self, method: str, url: str, body: bytes, headers: dict) -> tuple:
        headers = {"Authorization": f"Bearer {self.args.token}", **headers}
        request = urllib.request.Request(url, data=body or None, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers, response.read().decode()

    def _post(self, sdp: str) -> None:
        status, headers, answer = self._request(
            "POST", self.args.url, sdp.encode(), {"Content-Type": "application/sdp"}
        )
        self.location = urllib.parse.urljoin(self.args.url, headers["Location"])
        self.etag = headers["ETag"]
        say("created", status=status, location=self.location, etag=self.etag)
        _, message = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(
            GstWebRTC.WebRTCSDPType.ANSWER, message
        )
        self.webrtc.emit("set-remote-description", description, Gst.Promise.new())
        pending, self.pending = self.pending, []
        for line in pending:
            self._patch(line)

    def _patch(self, line: str) -> None:
        if self.location is None:
            self.pending.append(line)
            return
        fragment = self._fragment(line)
        status, _, _ = self._request(
            "PATCH",
            self.location,
            fragment.encode(),
            {"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": self.etag},
        )
        say("patched", status=status, line=line[:40])

    def _fragment(self, line: str) -> str:
        """An RFC 8840 fragment: this ICE session's ufrag/pwd, the first (bundled) section."""
        lines = self.offer_text.splitlines()

        def first(prefix: str) -> str:
            return next(item for item in lines if item.startswith(prefix))

        body = [first("a=ice-ufrag:"), first("a=ice-pwd:"), first("m="), first("a=mid:"), line]
        return "\r\n".join(body) + "\r\n"

    def _delete(self, _payload: str) -> None:
        status, _, _ = self._request("DELETE", self.location or self.args.url, b"", {})
        say("deleted", status=status)
        self.exit_code = 0
        GLib.idle_add(self.loop.quit)


def main() -> int:
    """Parse the options, publish, report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip/cam")
    p.add_argument("--token", required=True, help="the publish token")
    p.add_argument("--trickle", action="store_true", help="post at once, PATCH the candidates")
    p.add_argument("--seconds", type=int, default=10, help="stream this long once connected")
    p.add_argument("--timeout", type=int, default=60, help="give up after this many seconds")
    p.add_argument("--color", default="0xff2060c0", help="the camera's ARGB colour")
    p.add_argument("--no-delete", action="store_true", help="vanish without a DELETE")
    args = p.parse_args()
    Gst.init(None)
    if Gst.ElementFactory.find("webrtcbin") is None:
        say("missing", element="webrtcbin")
        return 3
    return WhipClient(args).run()


if __name__ == "__main__":
    sys.exit(main())
