"""Plans: what a teacher hands the environment each step.

The environment dispatches on a plan's ``kind``. Two kinds ship: ``counts`` (how many examples of each skill
the procedural data engine should generate) and ``examples`` (explicit question/answer pairs, verified before
use). New kinds (pool re-weighting, preference pairs) register a handler with
:meth:`envgym.SkillListEnv.register_plan_kind` without touching the core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from skills.errors import did_you_mean
from skills.task import Example


@dataclass(frozen=True)
class CountPlan:
    """Generate ``counts[skill]`` fresh training examples of each skill."""

    counts: dict[str, int]
    kind: ClassVar[str] = "counts"

    @property
    def size(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "counts": dict(self.counts)}


@dataclass(frozen=True)
class ExamplesPlan:
    """Train on these explicit examples; each is checked by the task's verifier and the held-out filter."""

    examples: list[Example] = field(default_factory=list)
    kind: ClassVar[str] = "examples"

    @property
    def size(self) -> int:
        return len(self.examples)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "examples": [ex.to_dict() for ex in self.examples]}


def _check_count(skill: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(
                f"Expects a whole number of examples for skill {skill!r}; actual {value!r} ({type(value).__name__})."
            )
    if value < 0:
        raise ValueError(f"Expects a non-negative count for skill {skill!r}; actual {int(value)}.")
    return int(value)


def coerce_plan(action: Any, skills: Sequence[str]) -> Any:
    """Turn an action into a plan object: an array of per-skill counts (in ``skills`` order), a
    ``{skill: count}`` mapping, or a plan object with a ``kind`` (returned as is)."""
    if hasattr(action, "kind") and not isinstance(action, (Mapping, np.ndarray)):
        return action
    if isinstance(action, Mapping):
        unknown = [name for name in action if name not in skills]
        if unknown:
            raise ValueError(
                f"Plan names unknown skill {unknown[0]!r}.{did_you_mean(str(unknown[0]), skills)} "
                f"Expects skills from: {', '.join(skills)}."
            )
        return CountPlan({skill: _check_count(skill, action.get(skill, 0)) for skill in skills})
    if isinstance(action, (np.ndarray, list, tuple)):
        array = np.asarray(action)
        if array.shape != (len(skills),):
            raise ValueError(
                f"Expects an action of shape ({len(skills)},), one count per skill "
                f"({', '.join(skills)}); actual shape {array.shape}."
            )
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"Expects numeric per-skill counts; actual dtype {array.dtype}.")
        return CountPlan({skill: _check_count(skill, value.item()) for skill, value in zip(skills, array, strict=True)})
    raise ValueError(
        "Expects a plan: an array of per-skill counts, a {skill: count} dict, a CountPlan or an ExamplesPlan; "
        f"actual {type(action).__name__}."
    )
