"""Teachers (DataEnvGym's "policies") for ``envgym/SkillTree-v0``: when to explore new subskills, when to exploit
the existing ones, and how to allocate the step's data over them.

DataEnvGym's handwritten policies (``dataenvgym/gym/data_generation_agents/math/handwritten_policies.py`` and the
skill-tree agent of Khan et al. 2024) allocate absolute numbers of examples and accumulate data over iterations.
envgym's steps train on each step's own data with a use-it-or-lose-it step budget, so every policy here states
its rule in examples and then, with ``fill=True`` (the default), scales the result to spend exactly the step's
budget (largest-remainder rounding): the policies are compared at equal budget. ``increment`` defaults to the
step's budget over ``skills x max_subskills`` slots (32 examples on the default env), DataEnvGym's "+10" at our
scale.

* ``tree-threshold``: DataEnvGym's threshold rule, per skill: exploit (+``increment`` examples for each of its
  subskills) when the skill's last validation gain was above ``threshold`` (0.01), otherwise explore (one new
  subskill with ``increment`` examples); a skill that cannot grow exploits. The first step explores.
* ``tree-alternating``: explore on even steps (one new subskill per skill that can grow), exploit on odd ones.
* ``tree-fill-balanced``: grow every skill to its full set of subskills, one per step, and allocate so that every
  subskill's total data becomes equal (the largest deficits first).
* ``tree-random``: explore one random growable skill with probability 1/2, then a random (Dirichlet) allocation.
* ``tree-lp`` (ours): a learning-progress bandit over subskills, reusing TSCL's window signal (the |slope| of a
  subskill's last ``window`` validation accuracies; 1 for a subskill with fewer than 2 of them, so new ones are
  tried) and DataEnvGym's threshold rule to decide where to grow. Allocation ``∝ (1 − ε)·v_i/Σv + ε/N``.

All are stateless (everything is read from ``info["skill_tree"]``), so a resumed episode plans the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np

from agents.base import allocate
from agents.tscl import window_slope
from envgym.skill_tree_actions import Exploit, Explore, subskills_of, tree_from_json
from skills.errors import InvalidConfig


class _TreeTeacher:
    """Shared by the skill-tree teachers: read the tree, turn per-subskill weights into a legal plan."""

    def __init__(self, increment: int | None = None, fill: bool = True, seed: int = 0) -> None:
        if increment is not None and (isinstance(increment, bool) or not isinstance(increment, int) or increment < 1):
            raise InvalidConfig(f"Expects increment to be a whole number >= 1 or None; actual {increment!r}.")
        self.increment, self.fill, self.seed = increment, bool(fill), seed

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> list[Explore | Exploit]:
        tree = tree_from_json(info["skill_tree"])
        skills = list(info["skills"])
        budget = int(info["budget_next"])
        can_explore = dict(zip(skills, np.asarray(observation["can_explore"]).tolist(), strict=True))
        slots = np.asarray(observation["mask"]).shape[1]
        increment = self.increment or max(1, budget // (len(skills) * slots))
        weights = {
            name: float(tree.nodes[name]["allocation"]) for skill in skills for name in subskills_of(tree, skill)
        }
        explore = self.decide(tree, skills, can_explore, weights, increment, int(info["step"]))
        return self._plan(tree, weights, explore, budget)

    def decide(
        self,
        tree: nx.DiGraph,
        skills: list[str],
        can_explore: dict[str, int],
        weights: dict[str, float],
        increment: int,
        step: int,
    ) -> list[tuple[str, float]]:
        """Update ``weights`` (examples per existing subskill) in place; return ``(skill, weight)`` for each new
        subskill to explore."""
        raise NotImplementedError

    def _plan(
        self, tree: nx.DiGraph, weights: dict[str, float], explore: list[tuple[str, float]], budget: int
    ) -> list[Explore | Exploit]:
        names = list(weights)
        wanted = np.array([*weights.values(), *(weight for _, weight in explore)], dtype=np.float64)
        # fill: spend the whole step budget in proportion; otherwise only scale down a rule that asks too much.
        if (self.fill and wanted.sum() > 0) or wanted.sum() > budget:
            counts = allocate(wanted / wanted.sum(), budget).tolist()
        else:
            counts = [round(w) for w in wanted]
        actions: list[Explore | Exploit] = [
            Explore(skill, 1, int(count)) for (skill, _), count in zip(explore, counts[len(names) :], strict=True)
        ]
        delta = {
            name: int(count) - int(tree.nodes[name]["allocation"])
            for name, count in zip(names, counts[: len(names)], strict=True)
            if int(count) != int(tree.nodes[name]["allocation"])
        }
        return [*actions, Exploit(delta)]


def _last_gain(tree: nx.DiGraph, node: str) -> float | None:
    history = tree.nodes[node]["history"]
    return None if len(history) < 2 else history[-1] - history[-2]


class ThresholdTreeTeacher(_TreeTeacher):
    """DataEnvGym's threshold rule, per skill (see the module docstring).

    Example:
        >>> import gymnasium as gym, envgym
        >>> env = gym.make("envgym/SkillTree-v0", steps=1, budget=16, n_val=5, n_test=5)
        >>> obs, info = env.reset(seed=0)
        >>> plan = ThresholdTreeTeacher().act(obs, info)  # the first step explores every skill
        >>> sorted({action.skill for action in plan if isinstance(action, envgym.Explore)}) == sorted(info["skills"])
        True
    """

    def __init__(self, threshold: float = 0.01, increment: int | None = None, fill: bool = True) -> None:
        super().__init__(increment, fill)
        self.threshold = float(threshold)

    def decide(
        self,
        tree: nx.DiGraph,
        skills: list[str],
        can_explore: dict[str, int],
        weights: dict[str, float],
        increment: int,
        step: int,
    ) -> list[tuple[str, float]]:
        explore = []
        for skill in skills:
            gain = _last_gain(tree, skill)
            children = subskills_of(tree, skill)
            if can_explore[skill] and (gain is None or gain <= self.threshold or not children):
                explore.append((skill, float(increment)))
            else:
                for name in children:
                    weights[name] += increment
        return explore


class AlternatingTreeTeacher(_TreeTeacher):
    """Explore on even steps (one new subskill with ``increment`` examples for each skill that can grow),
    exploit (+``increment`` for every subskill) on odd steps."""

    def decide(
        self,
        tree: nx.DiGraph,
        skills: list[str],
        can_explore: dict[str, int],
        weights: dict[str, float],
        increment: int,
        step: int,
    ) -> list[tuple[str, float]]:
        if step % 2 == 0 and any(can_explore.values()):
            return [(skill, float(increment)) for skill in skills if can_explore[skill]]
        for name in weights:
            weights[name] += increment
        return []


class FillBalancedTreeTeacher(_TreeTeacher):
    """Grow every skill by one subskill a step until none can grow, and allocate so every subskill's total data
    (what it got so far plus this step) is as equal as the budget allows."""

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> list[Explore | Exploit]:
        self._budget = int(info["budget_next"])
        return super().act(observation, info)

    def decide(
        self,
        tree: nx.DiGraph,
        skills: list[str],
        can_explore: dict[str, int],
        weights: dict[str, float],
        increment: int,
        step: int,
    ) -> list[tuple[str, float]]:
        new = [skill for skill in skills if can_explore[skill]]
        data = [float(tree.nodes[name]["data"]) for name in weights] + [0.0] * len(new)
        target = (sum(data) + self._budget) / max(1, len(data))
        deficits = [max(0.0, target - value) for value in data]
        for name, deficit in zip(list(weights), deficits, strict=False):
            weights[name] = deficit
        return [(skill, deficit) for skill, deficit in zip(new, deficits[len(weights) :], strict=True)]


class RandomTreeTeacher(_TreeTeacher):
    """The random baseline: with probability 1/2 explore one random skill that can grow, then allocate the budget
    by Dirichlet(1) weights over all subskills. Seeded by ``(seed, step)``."""

    def __init__(self, seed: int = 0, fill: bool = True) -> None:
        super().__init__(None, fill, seed)

    def decide(
        self,
        tree: nx.DiGraph,
        skills: list[str],
        can_explore: dict[str, int],
        weights: dict[str, float],
        increment: int,
        step: int,
    ) -> list[tuple[str, float]]:
        rng = np.random.default_rng([self.seed, step])
        growable = [skill for skill in skills if can_explore[skill]]
        explore = rng.random() < 0.5 or not weights
        new = [growable[int(rng.integers(len(growable)))]] if explore and growable else []
        draws = rng.dirichlet(np.ones(len(weights) + len(new))) * increment * (len(weights) + len(new))
        for name, draw in zip(list(weights), draws, strict=False):
            weights[name] = float(draw)
        return [(skill, float(draw)) for skill, draw in zip(new, draws[len(weights) :], strict=True)]


class LPTreeTeacher(_TreeTeacher):
    """A learning-progress bandit over subskills (ours; see the module docstring). Explores a skill, one subskill a
    step, while the skill's last gain is at most ``threshold`` or it has none; allocates by |slope| over the last
    ``window`` accuracies with an ``epsilon`` uniform floor.

    Example (one subskill improving fast, one flat: the fast one gets most of the budget):
        >>> import networkx as nx
        >>> tree = nx.DiGraph([("root", "a"), ("a", "a/1"), ("a", "a/2")])
        >>> nx.set_node_attributes(tree, {"a": [0.3, 0.5], "a/1": [0.1, 0.5], "a/2": [0.5, 0.5]}, "history")
        >>> nx.set_node_attributes(tree, {"a/1": 10, "a/2": 10}, "allocation")
        >>> weights = {"a/1": 10.0, "a/2": 10.0}
        >>> LPTreeTeacher().decide(tree, ["a"], {"a": 0}, weights, 8, 1), weights["a/1"] > 10 * weights["a/2"]
        ([], True)
    """

    def __init__(self, window: int = 3, epsilon: float = 0.1, threshold: float = 0.01, seed: int = 0) -> None:
        super().__init__(None, True, seed)
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise InvalidConfig(f"Expects a whole-number window >= 2; actual {window!r}.")
        if not 0.0 <= epsilon <= 1.0:
            raise InvalidConfig(f"Expects 0 <= epsilon <= 1; actual {epsilon!r}.")
        self.window, self.epsilon, self.threshold = window, float(epsilon), float(threshold)

    def decide(
        self,
        tree: nx.DiGraph,
        skills: list[str],
        can_explore: dict[str, int],
        weights: dict[str, float],
        increment: int,
        step: int,
    ) -> list[tuple[str, float]]:
        new = []
        for skill in skills:
            gain = _last_gain(tree, skill)
            if can_explore[skill] and (gain is None or gain <= self.threshold or not subskills_of(tree, skill)):
                new.append(skill)
        values = [self._progress(tree.nodes[name]["history"]) for name in weights] + [1.0] * len(new)
        total = sum(values)
        shares = [
            (1 - self.epsilon) * (value / total if total > 0 else 1 / len(values)) + self.epsilon / len(values)
            for value in values
        ]
        for name, share in zip(list(weights), shares, strict=False):
            weights[name] = share
        return [(skill, share) for skill, share in zip(new, shares[len(weights) :], strict=True)]

    def _progress(self, history: list[float]) -> float:
        points = np.asarray(history[-self.window :], dtype=np.float64)
        return float(abs(window_slope(np.arange(len(points), dtype=np.float64), points[:, None])[0]))
