"""The oracle: one-step lookahead over candidate allocations, an upper reference for the other teachers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import allocate
from agents.targeted import TargetedTeacher
from skills.errors import InvalidConfig


class OracleTeacher:
    """Each step, try ``candidates`` allocations of the step's budget on snapshots of the environment and keep the
    one with the best validation gain.

    It is not a deployable teacher: it needs the environment itself (``attach(env)``; ``run_episode`` and
    ``envgym bench`` call it) and trains the student ``candidates`` extra times per step. That extra training is
    counted in ``extra_examples`` and ``trial_steps`` (its ``state_dict``, written to ``report.json``), not hidden.
    Its purpose is the denominator of the normalised score ``(gain - uniform's) / (oracle's - uniform's)``
    (AgoraBench's "performance gap recovered"): how much of the headroom a real teacher recovers.

    Candidates: uniform, the targeted teacher's shares, error-proportional shares, and Dirichlet(1) draws seeded
    by ``(seed, step)`` (so a resumed run tries the same ones). Because ``env.step`` is deterministic given the
    restored state, the chosen plan reproduces its trial exactly when the runner then takes it.

    Example:
        >>> import gymnasium as gym, envgym
        >>> env = gym.make("envgym/SkillList-v0", steps=1, budget=16, n_val=5, n_test=5)
        >>> obs, info = env.reset(seed=0)
        >>> oracle = OracleTeacher(candidates=3)
        >>> oracle.attach(env)
        >>> plan = oracle.act(obs, info)
        >>> sum(plan.values()), oracle.trial_steps
        (16, 3)
    """

    def __init__(self, candidates: int = 8, seed: int = 0) -> None:
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise InvalidConfig(f"Expects candidates to be an integer >= 1; actual {candidates!r}.")
        self.candidates = candidates
        self.seed = seed
        self.env: Any = None
        self.extra_examples = 0
        self.trial_steps = 0

    def attach(self, env: Any) -> None:
        """Give the oracle the environment it looks ahead in (it needs ``snapshot``, ``restore`` and ``step``)."""
        base = env.unwrapped
        if not all(callable(getattr(base, name, None)) for name in ("snapshot", "restore", "step")):
            raise InvalidConfig(
                f"Expects an environment with snapshot(), restore() and step() for the oracle; actual "
                f"{type(base).__name__}."
            )
        self.env = base

    def proposals(self, accuracy: np.ndarray, step: int) -> list[np.ndarray]:
        """The candidate budget shares tried at ``step``."""
        n = len(accuracy)
        fixed = [np.full(n, 1.0 / n), TargetedTeacher().shares(accuracy), np.maximum(1.0 - accuracy, 0.05)]
        rng = np.random.default_rng([self.seed, step])
        drawn = [rng.dirichlet(np.ones(n)) for _ in range(max(0, self.candidates - len(fixed)))]
        return (fixed + drawn)[: self.candidates]

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        if self.env is None:
            raise InvalidConfig(
                "Expects the oracle to be attached to its environment: call teacher.attach(env) first "
                "(envgym.run_episode and envgym bench do this)."
            )
        skills, budget = list(info["skills"]), int(info["budget_next"])
        accuracy = np.asarray(observation["accuracy"], dtype=np.float64)
        start = self.env.snapshot()
        tried: list[tuple[float, dict[str, int]]] = []
        try:
            for shares in self.proposals(accuracy, int(observation["step"])):
                plan = dict(zip(skills, allocate(shares, budget).tolist(), strict=True))
                _, reward, _, _, trial = self.env.step(plan)
                self.trial_steps += 1
                self.extra_examples += int(trial["examples_used"])
                self.env.restore(start)
                tried.append((reward, plan))
        finally:
            self.env.restore(start)
        best = max(range(len(tried)), key=lambda i: (tried[i][0], -i))  # ties go to the earlier candidate
        return tried[best][1]

    def state_dict(self) -> dict[str, Any]:
        return {"extra_examples": self.extra_examples, "trial_steps": self.trial_steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.extra_examples = int(state["extra_examples"])
        self.trial_steps = int(state["trial_steps"])
