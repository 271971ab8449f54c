"""The library's best programmatic skill-targeted teacher."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import counts_plan, skill_accuracy
from skills.errors import InvalidConfig


class TargetedTeacher:
    """Targets skills the student can learn *now*, and rehearses the skills it could forget.

    Two effects make naive error-proportional targeting weak:

    * **Learnability**: a skill at ~0% is often not learnable with one step's budget, while a partly learned
      one is. The focus weight is ``error * (accuracy + epsilon)``, highest for half-learned skills.
    * **Forgetting**: training on new skills degrades mastered ones. A ``replay`` share of the budget goes to
      the skills in proportion to their accuracy: what the student knows is rehearsed, nothing is spent
      replaying skills it cannot do.

    Example:
        >>> t = TargetedTeacher()
        >>> plan = t.act({"accuracy": [0.95, 0.4, 0.0]}, {"skills": ["known", "half", "new"], "budget_next": 100})
        >>> plan["half"] > plan["known"] > plan["new"]
        True
    """

    def __init__(self, replay: float = 0.4, epsilon: float = 0.05) -> None:
        if not 0.0 <= replay <= 1.0:
            raise InvalidConfig(f"Expects 0 <= replay <= 1; actual {replay}.")
        if epsilon < 0:
            raise InvalidConfig(f"Expects epsilon >= 0; actual {epsilon}.")
        self.replay = replay
        self.epsilon = epsilon

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        return counts_plan(self.shares(skill_accuracy(observation, info)), info)

    def shares(self, accuracy: np.ndarray) -> np.ndarray:
        """The share of the budget for each skill (sums to 1)."""
        uniform = np.full(len(accuracy), 1.0 / len(accuracy))
        focus = (1.0 - accuracy) * (accuracy + self.epsilon)
        focus = focus / focus.sum() if focus.sum() > 0 else uniform
        rehearse = accuracy / accuracy.sum() if accuracy.sum() > 0 else uniform
        return self.replay * rehearse + (1.0 - self.replay) * focus
