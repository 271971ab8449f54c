"""``envgym/SkillTree-v0``: DataEnvGym's most structured environment. The state is a skill tree, the actions are
explore (grow a skill into new subskills) and exploit (shift data between existing subskills)."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx
import numpy as np
from gymnasium import spaces

from agents.base import allocate
from envgym.core import TeachingEnv
from envgym.plans import _describe, real_array, whole_count
from envgym.skill_tree_actions import ROOT, Exploit, Explore, subskills_of, tree_from_json, tree_to_json
from envgym.skill_tree_config import SkillTreeConfig
from skills.errors import InvalidPlan, did_you_mean
from skills.subskills import Subskill, make_proposer
from skills.task import Example


@dataclass(frozen=True)
class TreePlan:
    """A validated skill-tree action: the tree it leads to and the allocation the step trains on."""

    actions: list[dict[str, Any]]
    tree: nx.DiGraph
    allocation: dict[str, int]
    explore_ignored: list[str]
    kind: ClassVar[str] = "tree"

    @property
    def size(self) -> int:
        return sum(self.allocation.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "actions": self.actions,
            "allocation": {name: count for name, count in self.allocation.items() if count},
            "explore_ignored": self.explore_ignored,
        }


class SkillTreeEnv(TeachingEnv):
    """DataEnvGym's skill-tree structure: skills grow into subskills, and data is allocated per subskill.

    * State: a networkx tree ``root -> skill -> subskill`` (``info["skill_tree"]``, node-link JSON; rebuild it
      with :func:`tree_from_json`). Every skill and subskill node holds ``accuracy`` (validation) and
      ``history`` (its accuracy after reset and every step since it exists); a subskill also its ``description``,
      ``allocation`` (training examples generated for it each step), ``data`` (examples generated so far),
      ``data_ids`` (their ids, the ``metadata["id"]`` of the examples in ``data/step_<k>.jsonl``) and
      ``val_questions`` (validation questions in it; with none, its accuracy is its skill's).
    * Subskills come from ``config.proposer`` (:class:`skills.subskills.BandProposer`: difficulty bands of the
      task's generator, easiest first). Each skill starts with ``initial_subskills`` of them (default 0, as
      DataEnvGym's empty trees: the first step explores), allocation 0.
    * Observation (``spaces.Dict``, slots in the order subskills were added, ``max_subskills`` per skill):
      ``skill_accuracy`` (K,), ``subskill_accuracy``, ``allocation``, ``data`` and ``mask`` (K, S; zeros in
      unused slots), ``can_explore`` (K,), ``budget_left``, ``step``.
    * Action: an :class:`Explore` or :class:`Exploit` (or their dicts ``{"type": "explore", "skill", ...}``), or a
      list of them applied in order. Allocations persist: each step trains on every subskill's allocation, and
      their sum, charged to the budget, must fit the step's budget. The numeric form RL libraries drive is
      ``{"explore": MultiBinary(K), "allocation": Box(K, S)}``: one new subskill for each flagged skill that can
      grow (other flags are listed in ``info["plan"]["explore_ignored"]``), then the allocation set to the shares
      of the used slots, normalised over the step's budget (all zeros: nothing).
    * Unknown skills or subskills, more subskills than free slots or proposals, negative allocations and plans
      over budget raise :class:`~envgym.error.InvalidPlan` / ``BudgetExceeded`` and change nothing.
    * Reward: the gain in validation accuracy, macro-averaged over skills.

    Example:
        >>> import gymnasium as gym, envgym
        >>> env = gym.make("envgym/SkillTree-v0", steps=1, budget=32, n_val=5, n_test=5)
        >>> obs, info = env.reset(seed=0)
        >>> plan = [envgym.Explore("add_carry", 2, allocation=8), {"type": "exploit",
        ...         "allocation_delta": {"add_carry/carries=2": 16}}]
        >>> obs, reward, terminated, truncated, info = env.step(plan)
        >>> info["plan"]["allocation"]
        {'add_carry/carries=1': 8, 'add_carry/carries=2': 24}
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention
    env_id = "envgym/SkillTree-v0"
    config_class = SkillTreeConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proposer = make_proposer(self.config.proposer)
        self._plan_handlers[TreePlan.kind] = self._data_for_tree
        self._task_generated_kinds.add(TreePlan.kind)
        self._val_in: dict[str, list[str]] = {}  # subskill -> its validation questions (computed once)
        self.tree = self._initial_tree()

    # -- spaces and observation ---------------------------------------------------------------------------
    def _make_spaces(self) -> tuple[spaces.Dict, spaces.Dict]:
        k, s = len(self.skills), self.config.max_subskills
        observation_space = spaces.Dict(
            {
                "skill_accuracy": spaces.Box(0.0, 1.0, shape=(k,), dtype=np.float32),
                "subskill_accuracy": spaces.Box(0.0, 1.0, shape=(k, s), dtype=np.float32),
                "allocation": spaces.Box(0, int(self.config.budget), shape=(k, s), dtype=np.int64),
                "data": spaces.Box(0, int(self.config.total_budget), shape=(k, s), dtype=np.int64),
                "mask": spaces.MultiBinary((k, s)),
                "can_explore": spaces.MultiBinary(k),
                "budget_left": spaces.Box(0, int(self.config.total_budget), shape=(1,), dtype=np.int64),
                "step": spaces.Discrete(self.config.steps + 1),
            }
        )
        action_space = spaces.Dict(
            {
                "explore": spaces.MultiBinary(k),
                "allocation": spaces.Box(0.0, 1.0, shape=(k, s), dtype=np.float32),
            }
        )
        return observation_space, action_space

    def _observation(self, errors: Sequence[dict[str, str]]) -> dict[str, Any]:
        k, s = len(self.skills), self.config.max_subskills
        accuracy = np.zeros((k, s), dtype=np.float32)
        allocation = np.zeros((k, s), dtype=np.int64)
        data = np.zeros((k, s), dtype=np.int64)
        mask = np.zeros((k, s), dtype=np.int8)
        for i, skill in enumerate(self.skills):
            for j, name in enumerate(subskills_of(self.tree, skill)):
                node = self.tree.nodes[name]
                accuracy[i, j], allocation[i, j], data[i, j], mask[i, j] = (
                    node["accuracy"],
                    node["allocation"],
                    node["data"],
                    1,
                )
        return {
            "skill_accuracy": np.array([self.accuracy[skill] for skill in self.skills], dtype=np.float32),
            "subskill_accuracy": accuracy,
            "allocation": allocation,
            "data": data,
            "mask": mask,
            "can_explore": np.array([self.can_explore(skill) for skill in self.skills], dtype=np.int8),
            "budget_left": np.array([self.budget_left], dtype=np.int64),
            "step": self.step_index,
        }

    def _info(self) -> dict[str, Any]:
        return {**super()._info(), "skill_tree": tree_to_json(self.tree)}

    # -- the tree ------------------------------------------------------------------------------------------
    def _initial_tree(self) -> nx.DiGraph:
        tree = nx.DiGraph()
        tree.add_node(ROOT, kind="root", task=self.task.name)
        for skill in self.skills:
            tree.add_node(skill, kind="skill", accuracy=0.0, history=[])
            tree.add_edge(ROOT, skill)
            for subskill in self.proposer.propose(self.task, skill, [], self.config.initial_subskills):
                self._add_subskill(tree, subskill, 0)
        return tree

    def _start_episode(self) -> None:
        self.tree = self._initial_tree()

    @staticmethod
    def _add_subskill(tree: nx.DiGraph, subskill: Subskill, allocation: int) -> None:
        tree.add_node(
            subskill.name,
            kind="subskill",
            **{key: value for key, value in subskill.to_dict().items() if key != "name"},
            accuracy=0.0,
            history=[],
            allocation=allocation,
            data=0,
            data_ids=[],
            val_questions=0,
        )
        tree.add_edge(subskill.skill, subskill.name)

    def subskill(self, name: str, tree: nx.DiGraph | None = None) -> Subskill:
        node = (self.tree if tree is None else tree).nodes[name]
        return Subskill(name, node["skill"], node["description"], node["low"], node["high"])

    def can_explore(self, skill: str, tree: nx.DiGraph | None = None) -> bool:
        """Whether ``skill`` has a free subskill slot and the proposer has a new subskill for it."""
        tree = self.tree if tree is None else tree
        existing = [self.subskill(name, tree) for name in subskills_of(tree, skill)]
        return len(existing) < self.config.max_subskills and bool(self.proposer.propose(self.task, skill, existing, 1))

    def _evaluated(self, errors: Sequence[dict[str, str]]) -> None:
        wrong = {error["question"] for error in errors}
        for skill in self.skills:
            node = self.tree.nodes[skill]
            node["accuracy"] = float(self.accuracy[skill])
            node["history"].append(node["accuracy"])
            for name in subskills_of(self.tree, skill):
                questions = self._val_questions(name)
                sub = self.tree.nodes[name]
                sub["val_questions"] = len(questions)
                sub["accuracy"] = (
                    1.0 - sum(q in wrong for q in questions) / len(questions) if questions else node["accuracy"]
                )
                sub["history"].append(sub["accuracy"])

    def _val_questions(self, name: str) -> list[str]:
        if name not in self._val_in:
            subskill = self.subskill(name)
            self._val_in[name] = [
                ex.question for ex in self.splits.val[subskill.skill] if subskill.contains(self.task, ex)
            ]
        return self._val_in[name]

    # -- actions -------------------------------------------------------------------------------------------
    def _plan(self, action: Any) -> Any:
        tree = copy.deepcopy(self.tree)
        ignored: list[str] = []
        if isinstance(action, Mapping) and set(action) == {"explore", "allocation"}:
            applied = self._apply_numeric(tree, action, ignored)
        else:
            items = list(action) if isinstance(action, (list, tuple)) else [action]
            applied = [self._apply(tree, self._action(item, index)) for index, item in enumerate(items)]
        allocation = {
            name: int(tree.nodes[name]["allocation"]) for skill in self.skills for name in subskills_of(tree, skill)
        }
        return super()._plan(TreePlan(applied, tree, allocation, ignored))

    def _action(self, item: Any, index: int) -> Explore | Exploit:
        if isinstance(item, (Explore, Exploit)):
            return item
        if isinstance(item, Mapping) and item.get("type") in ("explore", "exploit"):
            keys = {
                "explore": {"type", "skill", "n_new_subskills", "allocation"},
                "exploit": {"type", "allocation_delta"},
            }
            extra = sorted(map(str, set(item) - keys[item["type"]]))
            if extra:
                raise InvalidPlan(
                    f"Expects {item['type']} action {index} to have keys among {sorted(keys[item['type']])}; "
                    f"actual extra keys {extra}."
                )
            if item["type"] == "explore":
                if "skill" not in item:
                    raise InvalidPlan(f"Expects explore action {index} to name a skill; actual keys {sorted(item)}.")
                return Explore(item["skill"], item.get("n_new_subskills", 1), item.get("allocation", 0))
            return Exploit(item.get("allocation_delta", {}))
        raise InvalidPlan(
            "Expects a skill-tree action: Explore(skill, n_new_subskills, allocation), Exploit(allocation_delta), "
            '{"type": "explore" | "exploit", ...}, a list of them, or {"explore": flags, "allocation": shares}; '
            f"actual {_describe(item)}."
        )

    def _apply(self, tree: nx.DiGraph, action: Explore | Exploit) -> dict[str, Any]:
        if isinstance(action, Explore):
            skill = action.skill
            if skill not in self.skills:
                raise InvalidPlan(
                    f"Explore names unknown skill {skill!r}.{did_you_mean(str(skill), self.skills)} "
                    f"Expects skills from: {', '.join(self.skills)}."
                )
            n = whole_count(action.n_new_subskills, f"new subskills of {skill!r}")
            allocation = whole_count(action.allocation, f"each new subskill of {skill!r}")
            existing = [self.subskill(name, tree) for name in subskills_of(tree, skill)]
            free = self.config.max_subskills - len(existing)
            if n < 1 or n > free:
                raise InvalidPlan(
                    f"Expects 1 to {free} new subskills for skill {skill!r} ({len(existing)} of its "
                    f"max_subskills={self.config.max_subskills} slots are used); actual {n}."
                )
            proposed = self._proposals(skill, existing, n)
            for subskill in proposed:
                self._add_subskill(tree, subskill, allocation)
            return {**Explore(skill, n, allocation).to_json(), "new_subskills": [s.name for s in proposed]}
        if not isinstance(action.allocation_delta, Mapping):
            raise InvalidPlan(
                "Expects Exploit.allocation_delta to be a {subskill: change} dict; "
                f"actual {_describe(action.allocation_delta)}."
            )
        names = [name for skill in self.skills for name in subskills_of(tree, skill)]
        delta: dict[str, int] = {}
        for name, change in action.allocation_delta.items():
            if name not in names:
                raise InvalidPlan(
                    f"Exploit names unknown subskill {name!r}.{did_you_mean(str(name), names)} Explore a skill "
                    f"to add subskills; existing: {', '.join(names) or 'none'}."
                )
            delta[name] = _whole_change(change, name)
            new = tree.nodes[name]["allocation"] + delta[name]
            if new < 0:
                raise InvalidPlan(
                    f"Expects a non-negative allocation for subskill {name!r}; actual "
                    f"{tree.nodes[name]['allocation']} + ({delta[name]}) = {new}."
                )
            tree.nodes[name]["allocation"] = new
        return Exploit(delta).to_json()

    def _proposals(self, skill: str, existing: list[Subskill], n: int) -> list[Subskill]:
        proposed = list(self.proposer.propose(self.task, skill, existing, n))
        taken = {subskill.name for subskill in existing}
        for subskill in proposed:  # the proposer may be user code or an LLM: check what it gave
            if not isinstance(subskill, Subskill) or subskill.skill != skill or subskill.name in taken:
                raise InvalidPlan(
                    f"Expects the subskill proposer to return new Subskill objects of skill {skill!r}; "
                    f"actual {_describe(subskill)}."
                )
            taken.add(subskill.name)
        if len(proposed) < n:
            raise InvalidPlan(
                f"Expects at most {len(proposed)} new subskills for skill {skill!r}: the proposer has no more "
                f"({len(existing)} exist); actual {n}."
            )
        return proposed[:n]

    def _apply_numeric(self, tree: nx.DiGraph, action: Mapping[str, Any], ignored: list[str]) -> list[dict[str, Any]]:
        k, s = len(self.skills), self.config.max_subskills
        flags = _numeric_array(action["explore"], (k,), "explore flags, one per skill")
        shares = _numeric_array(action["allocation"], (k, s), "allocation shares, one per subskill slot")
        if not np.isin(flags, (0, 1)).all():
            raise InvalidPlan(f"Expects explore flags of 0 or 1; actual {flags.tolist()}.")
        if (shares < 0).any():
            raise InvalidPlan(f"Expects non-negative allocation shares; actual {np.array2string(shares, precision=3)}.")
        applied: list[dict[str, Any]] = []
        for skill, flag in zip(self.skills, flags, strict=True):
            if flag and self.can_explore(skill, tree):
                applied.append(self._apply(tree, Explore(skill, 1, 0)))
            elif flag:
                ignored.append(skill)
        slots = [
            (i, j, name) for i, skill in enumerate(self.skills) for j, name in enumerate(subskills_of(tree, skill))
        ]
        used = np.array([shares[i, j] for i, j, _ in slots], dtype=np.float64)
        counts = allocate(used / used.sum(), self.budget_next) if used.sum() > 0 else np.zeros(len(slots), int)
        delta = {}
        for (_, _, name), count in zip(slots, counts.tolist(), strict=True):
            delta[name] = int(count) - tree.nodes[name]["allocation"]
            tree.nodes[name]["allocation"] = int(count)
        applied.append(Exploit({name: change for name, change in delta.items() if change}).to_json())
        return applied

    # -- data engine ---------------------------------------------------------------------------------------
    def _data_for_tree(self, plan: TreePlan) -> tuple[list[Example], dict[str, Any]]:
        self.tree = plan.tree
        step = self.step_index + 1
        dropped_before = sum(self.pool.dropped.values())
        examples: list[Example] = []
        for name, count in plan.allocation.items():
            if not count:
                continue
            subskill = self.subskill(name)
            drawn = self.pool.sample(subskill.skill, count, self._data_rng, keep=partial(subskill.contains, self.task))
            ids = [f"s{step}-{len(examples) + i}" for i in range(len(drawn))]
            examples += [
                Example(ex.question, ex.answer, ex.skill, {"id": id_, "subskill": name})
                for ex, id_ in zip(drawn, ids, strict=True)
            ]
            node = self.tree.nodes[name]
            node["data"] += len(drawn)
            node["data_ids"] += ids
        examples = [examples[i] for i in self._data_rng.permutation(len(examples))]
        return examples, {"dropped_heldout": sum(self.pool.dropped.values()) - dropped_before}

    # -- persistence and report ----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "skill_tree": tree_to_json(self.tree)}

    def _set_state(self, state: dict[str, Any], accumulated: list[Example]) -> None:
        super()._set_state(state, accumulated)
        self.tree = tree_from_json(state["skill_tree"])

    def write_report_files(self, out_dir: str | Path) -> list[Path]:
        from envgym.report import plot_skill_tree

        return [plot_skill_tree(Path(out_dir) / "skill_tree.png", self.tree, title=f"{self.env_id} · {self.task.name}")]


def _whole_change(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidPlan(f"Expects a whole-number allocation change for subskill {name!r}; actual {_describe(value)}.")
    magnitude = whole_count(abs(value) if np.isfinite(float(value)) else value, f"subskill {name!r}")
    return magnitude if value >= 0 else -magnitude


def _numeric_array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = real_array(value, allow_bool=True)
    except (TypeError, ValueError) as err:
        raise InvalidPlan(f"Expects {what} as numbers; actual {_describe(value)} ({err}).") from None
    if array.shape != shape or not np.isfinite(array).all():
        raise InvalidPlan(f"Expects finite {what}, shape {shape}; actual shape {array.shape}.")
    return array
