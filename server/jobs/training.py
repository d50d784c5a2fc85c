"""What a training job runs unless its form says otherwise, and how long it will take.

By default a new style is a few KB of norms fitted to the shared backbone most styles of the
models dir use (the library's new-style job: 128 px, batch 4, and the 60..120 steps that leave
it live within 5 minutes at the step rate timed on this device); `backbone` names
another (its id, or a style on it), `fine_tune` trains its convolutions too, `backbone=none`
trains a network of its own. Where the models dir has no shared backbone, a network of its
own it is, with a budget sized to the device (not 2000 steps of 256 px crops on a CPU).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from stylefusion.errors import BudgetTooSmall, InvalidInput
from stylefusion.style_fit import check_budget, default_backbone, find_backbone
from stylefusion.train_config import FIT_BATCH, FIT_SIZE, FIT_STEPS
from stylefusion.train_plan import (
    TrainEstimate,
    estimate_run,
    fitting_steps,
    single_style_defaults,
)

from ..errors import Unprocessable
from .estimate import StepTimer
from .params import TrainParams, WorkerSettings

NO_BACKBONE = "none"  # the `backbone` value that asks for a network of its own


def budget_refusal(exc: BudgetTooSmall) -> Unprocessable:
    """The 422 of a budget too small to converge, naming the minimum in its JSON too."""
    details: dict[str, Any] = {"minimum_steps": exc.minimum_steps}
    if exc.minimum_seconds is not None:
        details["minimum_seconds"] = exc.minimum_seconds
    return Unprocessable(str(exc), details=details)


class TrainDefaults:
    """Resolves a training form's backbone and fills in the defaults of the run it asks for."""

    def __init__(self, models_dir: Path, device: torch.device, variant: str) -> None:
        """variant: what a network of its own is unless the form asks (the device's)."""
        self.models_dir = models_dir
        self.device = device
        self.variant = variant

    def defaults(self, fields: Mapping[str, str], final: bool = True) -> dict[str, Any]:
        """The defaults of the run these fields ask for, the backbone resolved to its id.

        Not `final` (a `backbone` field may still come) and no backbone sent: the defaults of
        a network of its own, whose checks a later field cannot make fail.
        """
        ref = fields.get("backbone", "")
        wanted = fields.get("variant") or None
        if ref.lower() == NO_BACKBONE or (ref == "" and not final):
            return self._single(fields, wanted)
        if ref:
            backbone = find_backbone(self.models_dir, ref, wanted)
        else:
            backbone = default_backbone(self.models_dir, wanted)
            if backbone is None:
                return self._single(fields, wanted)
        values = {"size": FIT_SIZE, "batch_size": FIT_BATCH, "steps": FIT_STEPS}
        return self._budget(fields, values) | {"backbone": backbone.id, "variant": backbone.variant}

    def _single(self, fields: Mapping[str, str], wanted: str | None) -> dict[str, Any]:
        values: dict[str, Any] = dict(single_style_defaults(self.device))
        return self._budget(fields, values) | {"backbone": None, "variant": wanted or self.variant}

    @staticmethod
    def _budget(fields: Mapping[str, str], values: dict[str, Any]) -> dict[str, Any]:
        """A seconds budget sent replaces the default step budget."""
        if fields.get("seconds"):
            values.pop("steps", None)
        return values


def form_without_backbone(fields: Mapping[str, str]) -> dict[str, str]:
    """The fields with `backbone` left out: TrainDefaults gives its resolved value."""
    return {k: v for k, v in fields.items() if k != "backbone"}


def budget_sent(fields: Mapping[str, str]) -> bool:
    """Whether a form gives its own step or seconds budget."""
    return bool(fields.get("steps") or fields.get("seconds"))


class TrainPlanner:
    """Budgets that fit the device, expected durations and the seconds-budget check, from
    step rates the timer measures."""

    def __init__(self, settings: WorkerSettings, timer: StepTimer) -> None:
        self.settings = settings
        self.timer = timer

    async def estimate(
        self, params: TrainParams, budget_sent: bool = True
    ) -> tuple[TrainParams, TrainEstimate]:
        """The params to run (a new style sent without a budget: the steps that leave it live
        within minutes on this device) and their steps and expected seconds, timed once per
        kind of run and never on the event loop; 422 naming the minimum for a budget too small
        to converge."""
        config = params.config(Path(), self.settings)
        try:
            if config.backbone is not None:
                check_budget(config)  # a step budget's minimum needs no timing
            rate = await self.timer.step_seconds(config)
            if config.backbone is not None and not budget_sent:
                params = dataclasses.replace(params, steps=fitting_steps(config, rate))
                config = params.config(Path(), self.settings)
            return params, estimate_run(config, rate)
        except BudgetTooSmall as exc:
            raise budget_refusal(exc) from None
        except InvalidInput as exc:
            raise Unprocessable(str(exc)) from None
