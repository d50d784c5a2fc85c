"""The networks the styles run on: one Stylizer per single-style folder, one per shared backbone.

Styles of a multi-style network share its backbone: loaded once (BackboneCache), run by one
Stylizer, so one model call serves viewers in different styles (each frame with its style's
norms) and one compiled package per frame size serves them all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from stylefusion.backbone import BackboneCache
from stylefusion.compiled import CompileWorker
from stylefusion.style_folder import StyleInfo, load_shared_style, load_transformer
from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import TransformerNet
from stylefusion.tuning import Tuning

log = logging.getLogger(__name__)

# how a CPU runs each precision: AOTInductor packages with frozen weights, built in a child
# process (bench/cpu_model.py; an in-process torch.compile broke the eager model serving beside it)
CPU_TUNINGS = {
    "fp32": Tuning(mode="package"),
    "bf16": Tuning("bfloat16", "package"),
    "int8": Tuning(mode="int8"),
}


@dataclass(frozen=True)
class StyleModel:
    """What runs a style: its Stylizer, its norms (a multi-style network's; None for a
    single-style one) and the network's name (styles of one network can be blended)."""

    stylizer: Stylizer
    norms: torch.Tensor | None  # (P,) float32
    network: str


class ModelPool:
    """Makes the Stylizers of the loaded styles, sharing one per backbone (and variant)."""

    def __init__(
        self, device: torch.device, precision: str, compiler: CompileWorker | None
    ) -> None:
        self.device = device
        self.precision = precision
        self.compiler = compiler
        self.backbones = BackboneCache()
        self._shared: dict[str, Stylizer] = {}  # network name -> its Stylizer

    def load(self, info: StyleInfo, variant: str) -> StyleModel:
        """The model of a style folder's variant (blocking: it reads weights)."""
        backbone_id = info.backbone_id(variant)
        if backbone_id is None:
            stylizer = self._stylizer(load_transformer(info.path, variant), info.name, variant)
            model = StyleModel(stylizer, None, f"style:{info.name}")
        else:
            shared = load_shared_style(info.path, variant, self.backbones)
            network = f"backbone:{backbone_id}:{variant}"
            stylizer = self._shared.get(network)
            if stylizer is None:
                stylizer = self._stylizer(shared.model, f"backbone {backbone_id[:8]}", variant)
                self._shared[network] = stylizer
            model = StyleModel(stylizer, shared.norms, network)
        _check(model)
        return model

    def refresh(self, models: Iterable[StyleModel]) -> None:
        """After a rescan: each shared Stylizer learns the norms of the styles it serves now
        (examples for its builds); one no style uses any more is closed."""
        tables: dict[str, list[torch.Tensor]] = {}
        for model in models:
            if model.norms is not None:
                tables.setdefault(model.network, []).append(model.norms)
        for network, stylizer in list(self._shared.items()):
            if network in tables:
                stylizer.set_reference_norms(torch.stack(tables[network]))
            else:
                log.info("no style uses %s any more", stylizer.name)
                self._shared.pop(network).close()

    def release(self, model: StyleModel) -> None:
        """A style's model is no longer used by it: close it unless it is shared."""
        if model.norms is None:
            model.stylizer.close()  # its builds under way stop

    def close(self) -> None:
        """Stop the shared Stylizers' builds."""
        for stylizer in self._shared.values():
            stylizer.close()

    def _stylizer(self, model: TransformerNet, name: str, variant: str) -> Stylizer:
        # each new batch size or camera size compiles in the background while eager serves it
        return Stylizer(
            model,
            self.device,
            compile="background" if self.compiler is not None else "off",
            compiler=self.compiler,
            half=True if self.precision == "bf16" else None,
            tuning=CPU_TUNINGS[self.precision] if self.device.type == "cpu" else None,
            name=name,
            variant=variant,
        )


def _check(model: StyleModel) -> None:
    """Fail at load time on bad weights (live shapes compile later, in the background)."""
    frames = torch.zeros(1, 3, 64, 64, device=model.stylizer.device, dtype=model.stylizer.dtype)
    with torch.inference_mode():
        if model.norms is None:
            model.stylizer.eager(frames)
        else:
            model.stylizer.eager(frames, model.norms[None].to(frames.device))
