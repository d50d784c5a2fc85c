"""What one room of the server sees of another: small Protocols, so rooms never import rooms.

The styles room owns the registry, the live room the viewers, the jobs room the job store;
app.py hangs each on a frame key (keys.py) typed with the Protocol below, and a room that needs
another's object reads it from there.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any, Protocol

import torch

from stylefusion.style_folder import StyleInfo
from stylefusion.stylizer import Stylizer


class StyleRun(Protocol):
    """What runs a style (the styles room's StyleModel): styles of one network share a
    Stylizer, each with its own norms, and can be blended."""

    @property
    def stylizer(self) -> Stylizer:
        """The Stylizer of the style's network."""
        ...

    @property
    def norms(self) -> torch.Tensor | None:
        """(P,) norms of a multi-style network's style; None for a single-style network."""
        ...

    @property
    def network(self) -> str:
        """The network's name: styles of one network can share a model call and be blended."""
        ...


class StyleCatalog(Protocol):
    """The live styles, as the live path uses them (the styles room's StyleRegistry)."""

    @property
    def default(self) -> str | None:
        """The style of a viewer that names none."""
        ...

    def __contains__(self, name: object) -> bool: ...

    def styles(self) -> list[StyleInfo]:
        """The ready styles, sorted by name."""
        ...

    def stylizer(self, name: str) -> Stylizer:
        """The Stylizer of a style (called from the inference thread)."""
        ...

    def model(self, name: str) -> StyleRun:
        """What runs a style: its Stylizer, norms and network."""
        ...

    def lower_priority(self) -> None:
        """From now on builds run as background work: the viewers' frames come first."""
        ...


class Audience(Protocol):
    """The live viewers, as other rooms reach them (the live room's PeerSet)."""

    def __len__(self) -> int: ...

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send a control message to every viewer."""
        ...

    def fall_back(self, available: Container[str], default: str | None) -> None:
        """Move the viewers of a style that is gone to `default`."""
        ...


class JobLedger(Protocol):
    """The job store, as the styles room asks it about running trainings."""

    def active_with(self, kind: str, key: str, value: str) -> Sequence[Any]:
        """Queued or running jobs of `kind` whose params[key] == value."""
        ...
