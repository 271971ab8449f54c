"""Programmatic baseline teachers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import counts_plan, skill_accuracy
from skills.errors import InvalidConfig


class UniformTeacher:
    """Spends the step's budget equally over all skills.

    Example:
        >>> UniformTeacher().act({"accuracy": [0.1, 0.9]}, {"skills": ["a", "b"], "budget_next": 10})
        {'a': 5, 'b': 5}
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        return counts_plan(np.ones(len(info["skills"])), info)


class RandomTeacher:
    """Random allocation (Dirichlet(1) shares), seeded by ``seed`` and the step index, so it is stateless
    and a resumed episode makes the same choices."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        rng = np.random.default_rng([self.seed, int(observation["step"])])
        return counts_plan(rng.dirichlet(np.ones(len(info["skills"]))), info)


class ErrorProportionalTeacher:
    """Budget proportional to each skill's validation error rate, with a floor: the naive reading of
    "target the weak skills". It ignores learnability and forgetting (see ``TargetedTeacher``).

    Example:
        >>> ErrorProportionalTeacher().act({"accuracy": [1.0, 0.5]}, {"skills": ["a", "b"], "budget_next": 11})
        {'a': 1, 'b': 10}
    """

    def __init__(self, floor: float = 0.05) -> None:
        if not 0.0 <= floor <= 1.0:
            raise InvalidConfig(f"Expects 0 <= floor <= 1; actual {floor}.")
        self.floor = floor

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        error = 1.0 - skill_accuracy(observation, info)
        return counts_plan(np.maximum(error, self.floor), info)
