"""STAT (Skill-Targeted Adaptive Training): ``stat-sel`` re-weights the training pool, ``stat-syn`` synthesizes.

STAT's teacher reads the student's **missing-skill profile** (MSP): for every difficult validation question, the
skills the student failed to apply, as named by an attributor (:mod:`skills.attribution`). Then:

* **STAT-Sel** draws ``m`` pool examples of the missing skill for each (difficult question, missing skill) pair, so a
  skill's share of the data follows its MSP frequency: a :class:`~envgym.plans.ReweightPlan` with skill weights.
  On an environment with a fixed pool (``pool_size`` / ``pool_file``) the examples come from it; otherwise from
  the task's generator.
* **STAT-Syn** asks the environment's data engine for new examples of each missing skill in the style of pool
  examples of it (a :class:`~envgym.plans.SynthesisPlan`; an LLM engine keeps a question only when its solutions
  agree, a procedural task's verifier decides).

Where the pairs come from: the ``missing_skills`` of each reported validation error in ``info["errors"]`` (the
environment's attributor; ``programmatic`` by default). With ``llm=`` (the ``--teacher-*`` flags) the teacher
attributes those errors itself with an :class:`~skills.attribution.LLMAttributor`, STAT's LLM judge.

Both spend the whole step budget by default (``fill_budget``), so they compare with other teachers at equal
example budget; ``fill_budget=False`` spends ``m`` examples per pair, at most the budget.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import allocate, check_state
from envgym.plans import ReweightPlan, SynthesisPlan
from skills.attribution import LLMAttributor
from skills.errors import InvalidConfig
from skills.task import Skill


class _STATTeacher:
    """What STAT-Sel and STAT-Syn share: the (difficult question, missing skill) pairs of a step."""

    def __init__(
        self, llm: Any = None, *, seed: int = 0, m: int = 4, replay: float = 0.0, fill_budget: bool = True
    ) -> None:
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise InvalidConfig(f"Expects m (examples per pair) to be an integer >= 1; actual {m!r}.")
        if not 0.0 <= replay < 1.0:
            raise InvalidConfig(f"Expects 0 <= replay < 1; actual {replay!r}.")
        self.m = m
        self.replay = float(replay)
        self.fill_budget = bool(fill_budget)
        self.attributor = None if llm is None else LLMAttributor(llm, seed=seed)
        self.client = None if self.attributor is None else self.attributor.client
        self.last_decision: dict[str, Any] = {}

    def pairs(self, info: Mapping[str, Any]) -> Counter[str]:
        """How many (difficult question, missing skill) pairs name each skill, from the reported errors."""
        errors = list(info.get("errors", []))
        skills = list(info["skills"])
        if self.attributor is not None:
            named = self.attributor.attribute(_SkillList(skills, info), errors)
        else:  # the environment's attributor; an environment without one: the question's label
            named = [tuple(error.get("missing_skills") or (error["skill"],)) for error in errors]
        return Counter(skill for row in named for skill in row if skill in skills)

    def weights_and_size(self, info: Mapping[str, Any]) -> tuple[np.ndarray, int, Counter[str]]:
        """Per-skill weights (in ``info["skills"]`` order) and the examples to spend this step."""
        skills = list(info["skills"])
        budget = int(info["budget_next"])
        pairs = self.pairs(info)
        focus = np.array([pairs[skill] for skill in skills], dtype=np.float64)
        if focus.sum() == 0:  # nothing failed (or nothing reported): spend evenly
            focus = np.ones(len(skills))
        size = budget if self.fill_budget else min(budget, self.m * sum(pairs.values()))
        weights = focus / focus.sum()
        if self.replay:
            weights = (1.0 - self.replay) * weights + self.replay * np.full(len(skills), 1.0 / len(skills))
        return weights, size, pairs

    def _decide(self, pairs: Counter[str], plan: Any) -> None:
        self.last_decision = {"pairs": dict(sorted(pairs.items())), "plan": plan.to_json()}
        if self.attributor is not None:
            self.last_decision["attribution"] = {
                "fallbacks": self.attributor.fallbacks,
                "unknown_skills": dict(self.attributor.unknown_skills),
            }

    def state_dict(self) -> dict[str, Any]:
        return {"client": None if self.client is None else self.client.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        state = check_state(state, ["client"], type(self).__name__)
        if self.client is not None and state["client"] is not None:
            self.client.load_state_dict(state["client"])


class STATSelTeacher(_STATTeacher):
    """STAT-Sel: re-weight the pool by the missing-skill profile (see the module docstring).

    Args:
        llm: an endpoint for LLM attribution (default: the environment's attributions in ``info["errors"]``).
        seed: the LLM attributor's request seeds derive from it.
        m: pool examples per (difficult question, missing skill) pair when ``fill_budget`` is off (paper: 3-5).
        replay: share of the budget spread evenly over all skills (0 in the paper; against forgetting).
        fill_budget: spend the whole step budget in the MSP's proportions.

    Example:
        >>> info = {"skills": ["a", "b"], "budget_next": 8,
        ...         "errors": [{"question": "q", "answer": "x", "gold": "y", "skill": "a", "missing_skills": ["b"]}]}
        >>> STATSelTeacher().act({}, info).skill_weights
        {'a': 0.0, 'b': 1.0}
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> ReweightPlan:
        weights, size, pairs = self.weights_and_size(info)
        plan = ReweightPlan(size, skill_weights=dict(zip(info["skills"], weights.tolist(), strict=True)))
        self._decide(pairs, plan)
        return plan


class STATSynTeacher(_STATTeacher):
    """STAT-Syn: new examples for each missing skill, in the style of the pool's (see the module docstring).

    Args: as :class:`STATSelTeacher`; the step's examples are split over the skills by the same weights.

    Example:
        >>> info = {"skills": ["a", "b"], "budget_next": 8,
        ...         "errors": [{"question": "q", "answer": "x", "gold": "y", "skill": "a", "missing_skills": ["b"]}]}
        >>> STATSynTeacher().act({}, info).requests
        (('b', 8),)
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> SynthesisPlan:
        weights, size, pairs = self.weights_and_size(info)
        counts = allocate(weights, size)
        plan = SynthesisPlan(tuple((skill, int(n)) for skill, n in zip(info["skills"], counts, strict=True) if n))
        self._decide(pairs, plan)
        return plan


class _SkillList:
    """The task as an LLM attributor needs it: skill names and descriptions from ``info``."""

    def __init__(self, skills: Sequence[str], info: Mapping[str, Any]) -> None:
        descriptions = info.get("skill_descriptions", {})
        self.name = str(info.get("task", "task"))
        self.skills = [Skill(name, descriptions.get(name, name)) for name in skills]
