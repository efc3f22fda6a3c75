"""Errors of the journeys domain (each with its own ``code``)."""

from __future__ import annotations

from collections.abc import Sequence

from service.core.errors import Invalid


class UnknownStage(Invalid):
    """A touchpoint names a stage its journey does not have."""

    code = "unknown_stage"

    def __init__(self, journey: str, stage: str, stages: Sequence[str]) -> None:
        listed = ", ".join(repr(s) for s in stages) or "none"
        super().__init__(
            f"stage {stage!r} is not a stage of journey {journey!r} (its stages: {listed})",
            loc=("body", "stage"),
            stage=stage,
        )


class StageInUse(Invalid):
    """A journey change would remove stages that touchpoints are placed in."""

    code = "stage_in_use"

    def __init__(self, journey: str, in_use: dict[str, int]) -> None:
        errors = [
            {
                "loc": ["body", "stages"],
                "msg": f"stage {stage!r} is used by {count} touchpoint(s); move them first",
            }
            for stage, count in in_use.items()
        ]
        super().__init__(
            f"journey {journey!r}: stage(s) {', '.join(repr(s) for s in in_use)} cannot be "
            "removed while touchpoints use them",
            errors=errors,
            stages=list(in_use),
        )
