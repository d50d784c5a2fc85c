"""Domain exceptions; the CLI turns them into exit code 2, the server into 4xx JSON."""


class StyleFusionError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidInput(StyleFusionError):
    """The caller gave something unusable (bad value, missing file, unknown name)."""


class BudgetTooSmall(InvalidInput):
    """A training budget below what converges; names the minimum (steps, or seconds here)."""

    def __init__(self, message: str, steps: int, seconds: float | None = None) -> None:
        super().__init__(message)
        self.minimum_steps = steps
        self.minimum_seconds = seconds


class MediaError(InvalidInput):
    """A file is not a decodable image or video."""


class StyleNotFound(InvalidInput):
    """No style of that name or path exists."""


class StyleFormatError(StyleFusionError):
    """A style folder or weights file is wrong, old or damaged."""


class NotConverged(StyleFusionError):
    """A training run ended without converging, so its style was not published."""


class Cancelled(StyleFusionError):
    """A long-running operation was cancelled through its cancel flag."""


class CompileStopped(RuntimeError):
    """A compile cut short on purpose (the model was closed): not a failure to report."""
