"""The transformer's architecture (widths, blocks, kernels) and its named variants; no torch.

Kept apart from transformer_net.py so configs, meta.json readers and `stylefusion --help` can
name the variants without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import StyleFormatError


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of a transformer: channel widths, residual blocks, edge kernel size."""

    channels: tuple[int, int, int] = (32, 64, 128)
    residual_blocks: int = 5
    edge_kernel: int = 9  # kernel of the first and last convolution
    styles: int = 0  # 0: one style, affine instance norms; N: conditional norms, a table of N

    @property
    def conditional(self) -> bool:
        """Whether the network takes per-sample norms (a multi-style network)."""
        return self.styles > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in meta.json (single-style entries as they always were)."""
        data = {**asdict(self), "channels": list(self.channels)}
        if not self.styles:
            del data["styles"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformerConfig:
        """Inverse of to_dict; fails clearly on a malformed architecture entry."""
        try:
            channels = tuple(int(c) for c in data["channels"])
            if len(channels) != 3:
                raise ValueError("channels must have 3 entries")
            return cls(
                channels=channels,  # type: ignore[arg-type]
                residual_blocks=int(data["residual_blocks"]),
                edge_kernel=int(data.get("edge_kernel", 9)),
                styles=_non_negative(data.get("styles", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StyleFormatError(f"bad architecture config {data!r}: {exc}") from exc


def _non_negative(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("styles must be 0 or more")
    return number


VARIANTS: dict[str, TransformerConfig] = {
    "full": TransformerConfig(channels=(32, 64, 128), residual_blocks=5, edge_kernel=9),
    # Chosen by `stylefusion bench` on a 2-core CPU at 320x240 (see README): 29 fps, vs 23 for
    # 3 blocks with 9x9 edges and 9 for full; half the widths keep all five residual blocks.
    "lite": TransformerConfig(channels=(16, 32, 64), residual_blocks=5, edge_kernel=5),
}
