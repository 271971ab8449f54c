"""The actions and tree helpers of ``envgym/SkillTree-v0``, importable without the environment (teachers use them).

The tree is a networkx ``DiGraph`` ``root -> skill -> subskill``; :func:`tree_to_json` / :func:`tree_from_json`
carry it through ``info["skill_tree"]`` and checkpoints as node-link JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx

ROOT = "root"


@dataclass(frozen=True)
class Explore:
    """Grow ``skill`` by ``n_new_subskills`` subskills from the env's proposer, each allocated ``allocation``
    training examples per step (DataEnvGym's ``Explore(num_new_skills, data_allocation_for_new_skills)``)."""

    skill: str
    n_new_subskills: int = 1
    allocation: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"type": "explore", **asdict(self)}


@dataclass(frozen=True)
class Exploit:
    """Change existing subskills' allocations (examples per step) by ``allocation_delta[subskill]``
    (DataEnvGym's ``Exploit(data_allocation_delta)``); the result must stay >= 0."""

    allocation_delta: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": "exploit", "allocation_delta": dict(self.allocation_delta)}


def tree_to_json(tree: nx.DiGraph) -> dict[str, Any]:
    """The tree as networkx node-link data (plain JSON types); :func:`tree_from_json` reads it back."""
    return nx.node_link_data(tree, edges="edges")


def tree_from_json(data: Mapping[str, Any]) -> nx.DiGraph:
    return nx.node_link_graph(copy.deepcopy(dict(data)), directed=True, multigraph=False, edges="edges")


def subskills_of(tree: nx.DiGraph, skill: str) -> list[str]:
    """The subskill nodes of ``skill``, in the order they were added (their observation slots)."""
    return list(tree.successors(skill))
