"""Trickle ICE over HTTP: the `application/trickle-ice-sdpfrag` bodies of WHIP and WHEP PATCHes.

A fragment (RFC 8840) carries `a=ice-ufrag`/`a=ice-pwd` (which ICE session it belongs to),
media sections (`m=` ... `a=mid:`) with `a=candidate:` lines, and `a=end-of-candidates`.
aiortc gathers its own candidates before answering, so nothing trickles out; remote ones go
in through addIceCandidate(). With BUNDLE every media section shares the first one's
transport, and aiortc listens for candidates only under that section's mid, so candidates
are handed to it there whatever section the client filed them under. A fragment whose
ufrag/pwd differ from the offer's asks for an ICE restart, which aiortc cannot do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection
from aiortc.sdp import candidate_from_sdp

from .offers import Network, in_networks

log = logging.getLogger(__name__)


@dataclass
class RemoteIce:
    """What the server knows of a session's remote ICE agent, from its offer on."""

    ufrag: str | None
    pwd: str | None
    mids: tuple[str, ...]  # the offer's media sections, in order
    bundle: tuple[str, ...]  # the mids of its BUNDLE group (empty: no bundling)
    candidates: int = 0  # remote candidates so far: the offer's, then the trickled ones

    @classmethod
    def of_offer(cls, sdp: str) -> RemoteIce:
        """Credentials, mids, BUNDLE group and candidate count of an SDP offer."""
        lines = [line.strip() for line in sdp.splitlines()]
        bundle: tuple[str, ...] = ()
        for line in lines:
            if line.startswith("a=group:BUNDLE"):
                bundle = tuple(line.split()[1:])
                break
        return cls(
            ufrag=_first(lines, "a=ice-ufrag:"),
            pwd=_first(lines, "a=ice-pwd:"),
            mids=tuple(line[len("a=mid:") :] for line in lines if line.startswith("a=mid:")),
            bundle=bundle,
            candidates=sum(line.startswith("a=candidate:") for line in lines),
        )

    def transport_mid(self, mid: str | None) -> str | None:
        """The mid aiortc files a candidate of section `mid` under (BUNDLE: the first one)."""
        if self.bundle and (mid is None or mid in self.bundle):
            return self.bundle[0]
        if mid in self.mids:
            return mid
        return self.mids[0] if self.mids else None


@dataclass
class Fragment:
    """A parsed trickle-ice-sdpfrag body."""

    ufrag: str | None = None
    pwd: str | None = None
    candidates: list[tuple[str | None, str]] = field(default_factory=list)  # (mid, a= value)
    end: bool = False  # a=end-of-candidates

    def restarts(self, ice: RemoteIce) -> bool:
        """Whether the fragment names other ICE credentials than the session's: a restart."""
        return (self.ufrag is not None and self.ufrag != ice.ufrag) or (
            self.pwd is not None and self.pwd != ice.pwd
        )


class FragmentError(ValueError):
    """A body that is not a usable trickle-ice-sdpfrag."""


def parse_fragment(text: str) -> Fragment:
    """Parse an sdpfrag; raises FragmentError on a malformed candidate or unknown line."""
    fragment, mid = Fragment(), None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("m="):
            mid = None  # until this section's a=mid
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=ice-ufrag:"):
            fragment.ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=ice-pwd:"):
            fragment.pwd = line[len("a=ice-pwd:") :]
        elif line.startswith("a=candidate:"):
            _check_candidate(line)
            fragment.candidates.append((mid, line[len("a=") :]))
        elif line == "a=end-of-candidates":
            fragment.end = True
        elif not line.startswith(("a=", "c=", "b=")):
            raise FragmentError(f"unexpected line in the fragment: {line[:80]!r}")
    return fragment


def _check_candidate(line: str) -> None:
    try:
        candidate_from_sdp(line[len("a=candidate:") :])
    except (AssertionError, ValueError, IndexError):
        raise FragmentError(f"malformed candidate: {line[:120]!r}") from None


async def apply_fragment(
    pc: RTCPeerConnection, fragment: Fragment, ice: RemoteIce, networks: list[Network] | None
) -> int:
    """Hand the fragment's candidates (those inside `networks`, if given) to aiortc.

    Returns how many were added; end-of-candidates is passed on too. Every candidate sent
    counts towards the session's total (the cap is on what a client asks us to check).
    """
    ice.candidates += len(fragment.candidates)
    added = 0
    for mid, value in fragment.candidates:
        if networks is not None and not in_networks("a=" + value, networks):
            continue
        candidate = candidate_from_sdp(value[len("candidate:") :])
        candidate.sdpMid = ice.transport_mid(mid)
        await pc.addIceCandidate(candidate)
        added += 1
    if fragment.end:
        await pc.addIceCandidate(None)
    return added


def _first(lines: list[str], prefix: str) -> str | None:
    return next((line[len(prefix) :] for line in lines if line.startswith(prefix)), None)
