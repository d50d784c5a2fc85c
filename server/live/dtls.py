"""The DTLS role of WHIP/WHEP answers: the server waits for the client's handshake.

aiortc's DTLS offers only ECDHE-ECDSA cipher suites. Answering an `a=setup:actpass` offer,
aiortc takes the client role (`a=setup:active`) by default, and a DTLS server whose own
certificate is RSA then finds no shared cipher: GStreamer's webrtcbin (libgstdtls) fails every
handshake that way (aiortc PRs #1392, #1421). As the DTLS server (`a=setup:passive`, which
RFC 5763 lets an answerer choose) aiortc picks a suite for its own ECDSA certificate, whatever
certificate the client has, so every client stack connects. /offer keeps aiortc's default: the
pages' browsers speak ECDSA either way.
"""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)


def answer_as_dtls_server(pc: RTCPeerConnection) -> None:
    """Make the coming answer say `a=setup:passive` where the offer left the choice to us.

    Call it after setRemoteDescription() and before createAnswer().
    """
    transports = {t.receiver.transport for t in pc.getTransceivers()}
    if pc.sctp is not None:
        transports.add(pc.sctp.transport)
    for transport in transports:
        if not hasattr(transport, "_set_role"):  # an aiortc that renamed it: keep its default
            log.warning("this aiortc has no RTCDtlsTransport._set_role; answering setup:active")
            return
        if transport._role == "auto":  # the offer said actpass (active offers made us server)
            transport._set_role("server")
