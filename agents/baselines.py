"""Programmatic baseline teachers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import allocate
from skills.errors import InvalidConfig


class UniformTeacher:
    """Spends the step's budget equally over all skills.

    Example:
        >>> UniformTeacher().act({"accuracy": [0.1, 0.9]}, {"budget_next": 10}).tolist()
        [5, 5]
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> np.ndarray:
        return allocate(np.ones(len(observation["accuracy"])), int(info["budget_next"]))


class RandomTeacher:
    """Random allocation (Dirichlet(1) shares), seeded by ``seed`` and the step index, so it is stateless
    and a resumed episode makes the same choices."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> np.ndarray:
        rng = np.random.default_rng([self.seed, int(observation["step"])])
        shares = rng.dirichlet(np.ones(len(observation["accuracy"])))
        return allocate(shares, int(info["budget_next"]))


class ErrorProportionalTeacher:
    """Budget proportional to each skill's validation error rate, with a floor: the naive reading of
    "target the weak skills". It ignores learnability and forgetting (see ``TargetedTeacher``)."""

    def __init__(self, floor: float = 0.05) -> None:
        if not 0.0 <= floor <= 1.0:
            raise InvalidConfig(f"Expects 0 <= floor <= 1; actual {floor}.")
        self.floor = floor

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> np.ndarray:
        error = 1.0 - np.asarray(observation["accuracy"], dtype=np.float64)
        return allocate(np.maximum(error, self.floor), int(info["budget_next"]))
