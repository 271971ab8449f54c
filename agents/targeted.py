"""The library's best programmatic skill-targeted teacher."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import allocate


class TargetedTeacher:
    """Targets skills the student can learn *now*, and keeps mastered skills from being forgotten.

    Two effects make naive error-proportional targeting weak:

    * **Learnability**: a skill at ~0% is often not learnable with one step's budget, while a partly learned
      one is. The focus weight is ``error * (accuracy + epsilon)``, highest for half-learned skills.
    * **Forgetting**: starved mastered skills decay. A ``replay`` share of the budget is spread over all
      skills so every skill keeps being rehearsed.

    Example:
        >>> t = TargetedTeacher()
        >>> plan = t.act({"accuracy": [0.95, 0.4, 0.0]}, {"budget_next": 100})
        >>> int(plan[1]) > int(plan[2]) and int(plan[1]) > int(plan[0])
        True
    """

    def __init__(self, replay: float = 0.25, epsilon: float = 0.05) -> None:
        if not 0.0 <= replay <= 1.0:
            raise ValueError(f"Expects 0 <= replay <= 1; actual {replay}.")
        if epsilon < 0:
            raise ValueError(f"Expects epsilon >= 0; actual {epsilon}.")
        self.replay = replay
        self.epsilon = epsilon

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> np.ndarray:
        accuracy = np.asarray(observation["accuracy"], dtype=np.float64)
        focus = (1.0 - accuracy) * (accuracy + self.epsilon)
        focus = focus / focus.sum() if focus.sum() > 0 else np.full(len(accuracy), 1.0 / len(accuracy))
        shares = self.replay / len(accuracy) + (1.0 - self.replay) * focus
        return allocate(shares, int(info["budget_next"]))
