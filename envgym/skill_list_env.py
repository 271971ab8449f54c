"""``envgym/SkillList-v0``: a teacher allocates a per-step data budget over a list of skills."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from envgym.core import EnvSnapshot, TeachingEnv
from envgym.skill_list_config import SkillListConfig

__all__ = ["EnvSnapshot", "SkillListEnv"]


class SkillListEnv(TeachingEnv):
    """DataEnvGym's skill-list structure: each step the teacher spends a data budget over named skills.

    * Observation (``spaces.Dict``): ``accuracy`` (per-skill validation accuracy), ``missing_skill_profile``
      (STAT's MSP: each skill's share of the skills the ``attributor`` names behind the validation failures; zeros
      when there are none),
      ``budget_left`` and ``step``.
    * Action: a float ``Box`` of per-skill budget shares (normalised, then allocated over the step's budget by
      largest remainder; all zeros spends nothing), a ``{skill: count}`` dict, a
      :class:`~envgym.plans.CountPlan`, or examples: an :class:`~envgym.plans.ExamplesPlan` or a list of
      ``{"question", "answer", "skill"}`` dicts (verified by the referee).
    * Reward: ``mean_k acc_val_k(after) - mean_k acc_val_k(before)``, the gain in macro-averaged validation
      accuracy over the skills caused by this step.
    * ``terminated`` is True once the step count or the total budget is used up (both are part of the
      observed state); ``truncated`` is always False (wrap with ``TimeLimit`` for an external cut-off).
    * ``info``: ``skills``, ``prerequisites`` (``[prerequisite, skill]`` pairs of the task's taxonomy), ``errors``
      (validation failures: question, answer, gold, skill), ``budget_next`` (what the next step may spend) and,
      after a step, data statistics. It is deterministic given the seed;
      wall-clock seconds per phase are in ``env.unwrapped.timings``. Test questions never
      appear in observations or info; the episode runner calls :meth:`evaluate` with ``"test"`` itself.

    Example:
        >>> import gymnasium as gym, envgym
        >>> env = gym.make("envgym/SkillList-v0", steps=1, budget=64)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step({"sub_borrow": 64})
        >>> terminated
        True
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention
    env_id = "envgym/SkillList-v0"
    config_class = SkillListConfig

    def _make_spaces(self) -> tuple[spaces.Dict, spaces.Box]:
        k = len(self.skills)
        observation_space = spaces.Dict(
            {
                "accuracy": spaces.Box(0.0, 1.0, shape=(k,), dtype=np.float32),
                "missing_skill_profile": spaces.Box(0.0, 1.0, shape=(k,), dtype=np.float32),
                "budget_left": spaces.Box(0, int(self.config.total_budget), shape=(1,), dtype=np.int64),
                "step": spaces.Discrete(self.config.steps + 1),
            }
        )
        # Budget shares, as RL libraries emit them (float32 Box): normalised and allocated over the step's budget
        # by largest remainder. Exact integer counts are a {skill: count} dict or a CountPlan.
        return observation_space, spaces.Box(0.0, 1.0, shape=(k,), dtype=np.float32)

    def _observation(self, errors: Sequence[dict[str, str]]) -> dict[str, Any]:
        return {
            "accuracy": np.array([self.accuracy[s] for s in self.skills], dtype=np.float32),
            "missing_skill_profile": self.missing_skill_profile(),
            "budget_left": np.array([self.budget_left], dtype=np.int64),
            "step": self.step_index,
        }
