"""The `Teacher` plug-in point and a shared budget-allocation helper."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Teacher(Protocol):
    """Anything with ``act(observation, info) -> plan`` is a teacher.

    A plan is what ``env.step`` accepts: an array of per-skill counts, a ``{skill: count}`` dict, or a plan
    object (``CountPlan``, ``ExamplesPlan``). ``info["skills"]`` names the skills in observation order and
    ``info["budget_next"]`` is how many examples this step may spend.
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Any: ...


def allocate(weights: Sequence[float] | np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` into whole counts proportional to ``weights`` (largest-remainder rounding).

    >>> allocate([1, 1, 2], 10).tolist()
    [3, 2, 5]
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if budget <= 0:
        return np.zeros(len(w), dtype=np.int64)
    if w.sum() <= 0:
        w = np.ones(len(w))
    exact = w / w.sum() * budget
    counts = np.floor(exact).astype(np.int64)
    remainder = budget - int(counts.sum())
    # Stable order: ties go to the earlier skill, so the same weights always give the same plan.
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts
