"""Online Data Mixing (ODM): an EXP3 bandit over skills with a smoothed-mean reward estimate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import check_state, counts_plan, episode_progress, skill_accuracy
from skills.errors import InvalidConfig


def exploration_rate(t: int, k: int) -> float:
    """``ε_t = min(1/K, sqrt(ln K / (K t)))`` for ``t >= 1``, and ``ε_0 = 1/K``.

    >>> exploration_rate(0, 2), round(exploration_rate(1, 2), 4), round(exploration_rate(2, 2), 4)
    (0.5, 0.5, 0.4163)
    """
    if t <= 0:
        return 1.0 / k
    return min(1.0 / k, math.sqrt(math.log(k) / (k * t)))


class ODMTeacher:
    """Online Data Mixing (Albalak, Pan, Raffel, Wang 2023, "Efficient Online Data Mixing For Language Model
    Pre-Training", arXiv:2312.02406, Algorithm 1; reference code alon-albalak/online-data-mixing
    ``megatron/data/data_sampling_utils.py``, ``SmoothedMeanWeightUpdater``).

    The K skills are the arms of an EXP3 bandit. The plan for training step ``t = step + 1`` uses

        ``ε_t = min(1/K, sqrt(ln K / (K t)))`` (``ε_0 = 1/K``)
        ``π_i = (1 − K ε_t) · exp(ε_{t−1} R̂_i) / Σ_j exp(ε_{t−1} R̂_j) + ε_t``

    and after the step every skill ``i`` that was *played* is updated with the smoothed mean

        ``R̂_i ← α R̂_i + (1 − α) · r_i / π_i``,  ``R̂ = 0`` at the start, α = 0.9 (the paper's),

    where ``π_i`` is the share the step was planned with and ``r_i`` is skill ``i``'s validation-accuracy gain over
    the step, ``a_i(t) − a_i(t − 1)`` (the paper's reward is the group's training loss; accuracy gain is the
    learning signal envgym measures per skill).

    Choices where a budget allocation differs from the paper's one-group-per-batch sampling:

    * **Which arms are updated.** The paper updates only the sampled group. Here a step spends its budget over all
      skills, so every skill the plan gave at least one example counts as played and is updated; a skill that
      rounding left at 0 examples keeps its ``R̂`` (EXP3 observes nothing for it).
    * **Importance weighting.** Kept as in the paper (``r_i / π_i``). With an allocation it reads as the gain per
      unit of budget share, so a skill that improved a lot on a small share is credited more. The reference code
      instead smooths ``exp(reward)`` without ``1/π``; we follow the paper.

    The schedule is the paper's and is slow on purpose: ``1 − K ε_t = 0`` (a uniform plan) until
    ``t > K ln K``, e.g. for 8 skills the first 16 plans are uniform; ODM was designed for ~10^5 updates.

    Example (2 skills: ε_1 = 1/2 gives a uniform plan; at t = 2, ε_2 = 0.416 and ``a``'s gain shifts the plan):
        >>> t = ODMTeacher()
        >>> info = {"skills": ["a", "b"], "budget_next": 1000}
        >>> t.act({"accuracy": [0.5, 0.5], "step": 0}, info)
        {'a': 500, 'b': 500}
        >>> t.act({"accuracy": [0.75, 0.5], "step": 1}, info)  # R̂ = [0.1 * 0.25 / 0.5, 0] = [0.05, 0]
        {'a': 501, 'b': 499}
    """

    def __init__(self, alpha: float = 0.9) -> None:
        if not 0.0 <= alpha < 1.0:
            raise InvalidConfig(f"Expects 0 <= alpha < 1; actual {alpha!r}.")
        self.alpha = float(alpha)
        self._skills: list[str] | None = None
        self._last_step: int | None = None
        self._reward: list[float] = []  # R̂
        self._accuracy: list[float] = []  # accuracy at the last step seen
        self._policy: list[float] = []  # π the last plan was made with
        self._played: list[bool] = []  # skills the last plan gave at least one example

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        step, accuracy = int(observation["step"]), skill_accuracy(observation, info)
        progress = episode_progress(step, info["skills"], self._last_step, self._skills)
        if progress == "start":
            self._skills, self._reward = list(info["skills"]), [0.0] * len(accuracy)
        elif progress == "next":
            gain = accuracy - np.asarray(self._accuracy)
            reward, played = np.asarray(self._reward), np.asarray(self._played)
            update = self.alpha * reward + (1.0 - self.alpha) * gain / np.asarray(self._policy)
            self._reward = np.where(played, update, reward).tolist()
        self._accuracy, self._last_step = accuracy.tolist(), step
        policy = self.policy(step + 1)
        plan = counts_plan(policy, info)
        self._policy, self._played = policy.tolist(), [plan[s] > 0 for s in info["skills"]]
        return plan

    def policy(self, t: int) -> np.ndarray:
        """``π`` for training step ``t`` from the current ``R̂`` (sums to 1)."""
        k = len(self._reward)
        eps, eps_before = exploration_rate(t, k), exploration_rate(t - 1, k)
        logits = eps_before * np.asarray(self._reward)
        gibbs = np.exp(logits - logits.max())
        return max(0.0, 1.0 - k * eps) * gibbs / gibbs.sum() + eps

    def state_dict(self) -> dict[str, Any]:
        return {
            "skills": self._skills,
            "last_step": self._last_step,
            "reward": list(self._reward),
            "accuracy": list(self._accuracy),
            "policy": list(self._policy),
            "played": list(self._played),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        state = check_state(state, ("skills", "last_step", "reward", "accuracy", "policy", "played"), "ODM")
        self._skills = None if state["skills"] is None else [str(s) for s in state["skills"]]
        self._last_step = None if state["last_step"] is None else int(state["last_step"])
        self._reward = [float(x) for x in state["reward"]]
        self._accuracy = [float(x) for x in state["accuracy"]]
        self._policy = [float(x) for x in state["policy"]]
        self._played = [bool(x) for x in state["played"]]
