"""How fast one peer may send control messages: a token bucket, and patience with a flood.

A page sends a handful of messages a second at most (style clicks, a debounced strength
slider). Past `rate` a second (bursts of `burst`), messages are refused with an error event;
a peer whose refused messages outrun the same allowance again keeps flooding on purpose and
is dropped, so it cannot keep the event loop busy for the other viewers.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

WARN_EVERY_S = 1.0  # at most one error event a second to a refused peer (no echo flood)


class Verdict(enum.Enum):
    """What to do with one incoming control message."""

    ACCEPT = "accept"
    REFUSE = "refuse"  # drop it and tell the peer
    REFUSE_QUIETLY = "refuse quietly"  # drop it; the peer was told less than a second ago
    FLOOD = "flood"  # drop it and the peer


class TokenBucket:
    """`capacity` tokens, refilled at `rate` a second; each take() spends one if there is one."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend a token; False when the bucket is empty."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class ControlRate:
    """The control-message allowance of one peer."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        now = clock()
        self.allowed = TokenBucket(rate, burst, now)
        self.patience = TokenBucket(rate, burst, now)  # spent by refused messages
        self.told = now - WARN_EVERY_S
        self.flooded = False

    def admit(self) -> Verdict:
        """The verdict on a message arriving now."""
        now = self.clock()
        if self.flooded:  # already being dropped: FLOOD is said once
            return Verdict.REFUSE_QUIETLY
        if self.allowed.take(now):
            return Verdict.ACCEPT
        if not self.patience.take(now):
            self.flooded = True
            return Verdict.FLOOD
        if now - self.told < WARN_EVERY_S:
            return Verdict.REFUSE_QUIETLY
        self.told = now
        return Verdict.REFUSE
