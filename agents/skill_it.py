"""Skill-It! online data mixing: weight each skill by the recent validation loss of the skills it helps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import check_state, counts_plan, episode_progress, skill_accuracy
from skills.errors import InvalidConfig, unknown_name_error

GRAPHS = ("prerequisites", "identity")


class SkillItTeacher:
    """Skill-It! online data selection (Chen, Roberts, Bhatia, Wang, Zhang, Sala, Ré 2023, "Skill-it! A Data-Driven
    Skills Framework for Understanding and Training Language Models", arXiv:2307.14430, Algorithm 1; reference
    code HazyResearch/skill-it ``trainer/mw_trainer.py``).

    A multiplicative-weights mixture over the skills, recomputed every step ``t`` from the validation losses of the
    last ``w`` steps:

        ``p_t^i ∝ exp(η · Σ_{τ=t−w+1..t} Σ_j A_ij · L_j(τ))``

    with ``L_j(τ) = 1 − accuracy_j(τ)`` (validation error; the paper uses validation loss) and fewer than ``w``
    terms at the start of an episode (at step 0 just ``L(0)``). The plan spends the budget in proportion to ``p_t``.

    ``A`` is the skills graph: ``A_ii = 1`` and ``A_ij = edge_weight`` (0.5, the reference's value for off-diagonal
    edges) when skill ``i`` is a prerequisite of skill ``j``, i.e. for each ``[i, j]`` pair in
    ``info["prerequisites"]`` (absent means none). In the paper ``A_ij > 0`` means training on skill ``i`` helps
    skill ``j``, so a prerequisite's weight grows with the loss of the skills built on it: a skill whose
    dependants are still failing gets more data. ``graph="identity"`` ignores the prerequisites (``A = I``): each
    skill is weighted by its own recent loss. Defaults are the paper's: η = 0.5, w = 3.

    Example (``a`` is a prerequisite of ``b``, which fails: ``a`` gets 44, against 38 with ``graph="identity"``):
        >>> t = SkillItTeacher()
        >>> info = {"skills": ["a", "b"], "budget_next": 100, "prerequisites": [["a", "b"]]}
        >>> t.act({"accuracy": [1.0, 0.0], "step": 0}, info)  # p ∝ exp(0.5·[0.5, 1]) = [e^0.25, e^0.5]
        {'a': 44, 'b': 56}
    """

    def __init__(
        self, eta: float = 0.5, window: int = 3, graph: str = "prerequisites", edge_weight: float = 0.5
    ) -> None:
        if not (eta >= 0 and math.isfinite(eta)):
            raise InvalidConfig(f"Expects a finite eta >= 0; actual {eta!r}.")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InvalidConfig(f"Expects a whole-number window >= 1; actual {window!r}.")
        if graph not in GRAPHS:
            raise unknown_name_error("Skill-It graph", str(graph), GRAPHS)
        if not (edge_weight >= 0 and math.isfinite(edge_weight)):
            raise InvalidConfig(f"Expects a finite edge_weight >= 0; actual {edge_weight!r}.")
        self.eta, self.window, self.graph, self.edge_weight = float(eta), window, graph, float(edge_weight)
        self._skills: list[str] | None = None
        self._last_step: int | None = None
        self._losses: list[list[float]] = []  # validation error of the last `window` steps

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        step, accuracy = int(observation["step"]), skill_accuracy(observation, info)
        progress = episode_progress(step, info["skills"], self._last_step, self._skills)
        if progress == "start":
            self._skills, self._losses = list(info["skills"]), []
        if progress != "same":
            self._losses = [*self._losses, (1.0 - accuracy).tolist()][-self.window :]
        self._last_step = step
        return counts_plan(self.shares(self.skills_graph(info)), info)

    def skills_graph(self, info: Mapping[str, Any]) -> np.ndarray:
        """``A``: 1 on the diagonal, ``edge_weight`` at ``[prerequisite, skill]`` (unless ``graph="identity"``)."""
        skills = list(info["skills"])
        graph = np.eye(len(skills))
        if self.graph == "identity":
            return graph
        index = {skill: i for i, skill in enumerate(skills)}
        for pair in info.get("prerequisites") or []:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise InvalidConfig(
                    f"Expects info['prerequisites'] to hold [prerequisite, skill] pairs; actual {pair!r}."
                )
            unknown = [str(name) for name in pair if name not in index]
            if unknown:
                raise InvalidConfig(
                    f"Expects prerequisite pairs of skills in info['skills']; actual {list(pair)!r} names "
                    f"{', '.join(map(repr, unknown))}, not among {', '.join(skills)}."
                )
            if pair[0] != pair[1]:
                graph[index[pair[0]], index[pair[1]]] = self.edge_weight
        return graph

    def shares(self, graph: np.ndarray) -> np.ndarray:
        """``p ∝ exp(η · A · Σ_window L)`` from the losses seen so far (sums to 1)."""
        logits = self.eta * graph @ np.sum(self._losses, axis=0)
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def state_dict(self) -> dict[str, Any]:
        return {"skills": self._skills, "last_step": self._last_step, "losses": [list(x) for x in self._losses]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        state = check_state(state, ("skills", "last_step", "losses"), "Skill-It")
        self._skills = None if state["skills"] is None else [str(s) for s in state["skills"]]
        self._last_step = None if state["last_step"] is None else int(state["last_step"])
        self._losses = [[float(x) for x in loss] for loss in state["losses"]]
