"""Telling scoring's receiver apart from scoring's own side effects."""

from contextlib import contextmanager
from contextvars import ContextVar

# Set while scoring's own side effects (handoffs, demo tasks) record activities, so the
# receiver does not score the `handed_off` or stage-change activities it just caused.
_side_effects_running: ContextVar[bool] = ContextVar("scoring_side_effects", default=False)


@contextmanager
def scoring_side_effects():
    """Mark the block as scoring's own work: activities it records are not scored again."""
    token = _side_effects_running.set(True)
    try:
        yield
    finally:
        _side_effects_running.reset(token)


def scoring_side_effects_running() -> bool:
    return _side_effects_running.get()
