"""SPaR's tree-search refinement (Cheng et al. 2024): refine a failing response step by step until a judge accepts it.

The root is the actor's response. Expanding a node asks the :class:`~skills.judges.Refiner` for ``branch``
candidate refinements of it (guided by the node's critique), and the :class:`~skills.judges.Judge` judges each one;
the first whose value is above ``end_gate`` ends the search, and (refined, original) becomes a DPO preference pair
(:meth:`Tree.refined_pair`).

* **BFS** (SPaR's default): level by level; every node of the frontier is expanded, then the ``select_branch`` best
  children of the whole level form the next frontier.
* **DFS**: a node's children are judged, then its ``select_branch`` best children are searched in turn, each as
  deep as ``max_depth`` allows before its next sibling.

"Best" is :attr:`TreeSearchConfig.selection`: ``"greedy"`` (highest value, then score, then creation order) or
``"value_weighted"`` (sampled without replacement in proportion to value + 1e-3, seeded). Children whose response
repeats an earlier candidate's are not selected twice.

Every judgement is cached per tree by response text: a repeated response is judged once, and a cache hit costs no
budget. ``budget`` caps the judge calls of one tree (the root's included).

Example:
    >>> from skills.judges import Judgement
    >>> class EndsWithBang:
    ...     def judge(self, prompt, response):
    ...         ok = response.endswith("!")
    ...         return Judgement(float(ok), "" if ok else "End with '!'.", {"yes" if ok else "no": 1})
    >>> class AddBang:
    ...     def refine(self, prompt, response, critique, n, *, seed):
    ...         return [response + "!"] * n
    >>> tree = search("Shout hi.", "hi", EndsWithBang(), AddBang(), TreeSearchConfig(branch=2, select_branch=1))
    >>> tree.status, tree.refined_pair(), tree.judge_calls, len(tree.nodes)
    ('solved', ('hi!', 'hi'), 2, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import networkx as nx
import numpy as np

from skills.errors import InvalidConfig, config_from_dict, unknown_name_error
from skills.judges import Judge, Judgement, Refiner

__all__ = ["SEARCHES", "SELECTIONS", "STATUSES", "Node", "Tree", "TreeSearchConfig", "search"]

SEARCHES = ("bfs", "dfs")
SELECTIONS = ("greedy", "value_weighted")
# Why a search ended: the root already passed; a refinement passed; the judge budget ran out; every branch reached
# max_depth without a pass; or nothing was left to expand before max_depth (the refiner returned no candidates).
STATUSES = ("root_passed", "solved", "budget", "max_depth", "exhausted")
# Added to every value before value-weighted sampling, so that all-zero candidates can still be drawn.
VALUE_WEIGHT_FLOOR = 1e-3
# Tags that keep the seeds derived for refining and for selecting apart.
_REFINE, _SELECT = 1, 2


@dataclass
class TreeSearchConfig:
    """How SPaR's tree search expands, selects and stops."""

    search: str = field(
        default="bfs",
        metadata={"help": "'bfs' (level by level, SPaR's default) or 'dfs' (each selected child searched deep first)."},
    )
    branch: int = field(default=3, metadata={"help": "Candidate refinements generated per expanded node."})
    select_branch: int = field(
        default=2,
        metadata={"help": "Children kept for expansion: per level (BFS) or per node (DFS); at most branch."},
    )
    max_depth: int = field(default=3, metadata={"help": "Most refinement steps from the root."})
    end_gate: float = field(
        default=0.5,
        metadata={"help": "A node whose judgement value is above this (in [0, 1)) is accepted and ends the search."},
    )
    budget: int = field(
        default=30,
        metadata={"help": "Most judge calls per tree, the root's included; a repeated response is free (cached)."},
    )
    selection: str = field(
        default="greedy",
        metadata={
            "help": "'greedy' (highest value, then score, then creation order) or 'value_weighted' (sampled without "
            "replacement in proportion to value + 1e-3, seeded)."
        },
    )

    def __post_init__(self) -> None:
        if self.search not in SEARCHES:
            raise unknown_name_error("tree search", str(self.search), SEARCHES)
        if self.selection not in SELECTIONS:
            raise unknown_name_error("tree-search selection", str(self.selection), SELECTIONS)
        for name in ("branch", "select_branch", "max_depth", "budget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidConfig(f"Expects {name} to be an integer >= 1; actual {value!r}.")
            setattr(self, name, int(value))
        gate = self.end_gate
        if isinstance(gate, bool) or not isinstance(gate, (int, float)) or not 0.0 <= gate < 1.0:
            raise InvalidConfig(
                f"Expects end_gate to be a number in [0, 1) (a value above it is accepted; 1.0 would accept "
                f"nothing); actual {gate!r}."
            )
        self.end_gate = float(gate)
        if self.select_branch > self.branch:
            raise InvalidConfig(
                f"Expects select_branch <= branch (the children kept are among those generated); actual "
                f"select_branch={self.select_branch}, branch={self.branch}."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TreeSearchConfig:
        """Like ``TreeSearchConfig(**values)``, but an unknown field gets a did-you-mean error."""
        return config_from_dict(cls, dict(values), "TreeSearchConfig field")


@dataclass
class Node:
    """One response in the tree: ``id`` is its creation order (the root is 0), ``depth`` its refinement steps from
    the root, ``children`` the ids of the refinements generated from it."""

    id: int
    parent: int | None
    depth: int
    response: str
    judgement: Judgement
    children: list[int] = field(default_factory=list)

    @property
    def value(self) -> float:
        return self.judgement.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent,
            "depth": self.depth,
            "response": self.response,
            "judgement": self.judgement.to_dict(),
            "children": list(self.children),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Node:
        missing = {"id", "parent", "depth", "response", "judgement"} - set(data)
        if missing:
            raise InvalidConfig(f"Expects a tree node with id, parent, depth, response, judgement; missing {missing}.")
        parent = data["parent"]
        return cls(
            id=int(data["id"]),
            parent=None if parent is None else int(parent),
            depth=int(data["depth"]),
            response=str(data["response"]),
            judgement=Judgement.from_dict(data["judgement"]),
            children=[int(child) for child in data.get("children", [])],
        )


@dataclass
class Tree:
    """A finished search: every node, why it ended (``status``, one of :data:`STATUSES`), the accepted node's id
    (``solution``; None unless ``status`` is ``"solved"`` or ``"root_passed"``) and what it cost."""

    prompt: str
    nodes: list[Node]
    solution: int | None
    status: str
    judge_calls: int
    cache_hits: int
    refine_calls: int = 0
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Node:
        return self.nodes[0]

    @property
    def solution_node(self) -> Node | None:
        return None if self.solution is None else self.nodes[self.solution]

    @property
    def depth(self) -> int:
        """The deepest node's depth."""
        return max(node.depth for node in self.nodes)

    def node(self, node_id: int) -> Node:
        if (
            isinstance(node_id, bool)
            or not isinstance(node_id, (int, np.integer))
            or not 0 <= node_id < len(self.nodes)
        ):
            raise InvalidConfig(f"Expects a node id in 0..{len(self.nodes) - 1}; actual {node_id!r}.")
        return self.nodes[int(node_id)]

    def path(self, node_id: int) -> list[Node]:
        """The nodes from the root down to ``node_id``, both included."""
        out = [self.node(node_id)]
        while out[-1].parent is not None:
            out.append(self.nodes[out[-1].parent])
        return out[::-1]

    def refined_pair(self) -> tuple[str, str] | None:
        """``(refined, original)``: the accepted refinement's response and the root's, for DPO; None unless a
        refinement (depth >= 1) was accepted."""
        node = self.solution_node
        if node is None or node.depth < 1:
            return None
        return node.response, self.root.response

    def to_networkx(self) -> nx.DiGraph:
        """The tree as a DiGraph (edges parent -> child; node attributes response, value, score, depth, critique;
        graph attributes prompt, status, solution), e.g. for ``nx.draw``."""
        graph = nx.DiGraph(prompt=self.prompt, status=self.status, solution=self.solution)
        for node in self.nodes:
            graph.add_node(
                node.id,
                response=node.response,
                value=node.value,
                score=node.judgement.score,
                depth=node.depth,
                critique=node.judgement.critique,
            )
            if node.parent is not None:
                graph.add_edge(node.parent, node.id)
        return graph

    def to_dict(self) -> dict[str, Any]:
        """JSON types only; :meth:`from_dict` reads it back."""
        return {
            "prompt": self.prompt,
            "nodes": [node.to_dict() for node in self.nodes],
            "solution": self.solution,
            "status": self.status,
            "judge_calls": self.judge_calls,
            "cache_hits": self.cache_hits,
            "refine_calls": self.refine_calls,
            "seed": self.seed,
            "config": dict(self.config),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tree:
        known = [f.name for f in fields(cls)]
        missing = {"prompt", "nodes", "solution", "status", "judge_calls", "cache_hits"} - set(data)
        if missing or not data.get("nodes"):
            raise InvalidConfig(
                f"Expects a tree dict with keys {known} and at least one node; actual keys {sorted(data)}."
            )
        if data["status"] not in STATUSES:
            raise unknown_name_error("tree status", str(data["status"]), STATUSES)
        solution = data["solution"]
        return cls(
            prompt=str(data["prompt"]),
            nodes=[Node.from_dict(node) for node in data["nodes"]],
            solution=None if solution is None else int(solution),
            status=str(data["status"]),
            judge_calls=int(data["judge_calls"]),
            cache_hits=int(data["cache_hits"]),
            refine_calls=int(data.get("refine_calls", 0)),
            seed=int(data.get("seed", 0)),
            config=dict(data.get("config") or {}),
        )


class _Stop(Exception):
    """Ends a search early (solved or out of budget); the status is already set."""


class _Search:
    def __init__(self, prompt: str, judge: Judge, refiner: Refiner, config: TreeSearchConfig, seed: int) -> None:
        self.prompt, self.judge, self.refiner, self.config, self.seed = prompt, judge, refiner, config, seed
        self.nodes: list[Node] = []
        self.cache: dict[str, Judgement] = {}
        self.judge_calls = self.cache_hits = self.refine_calls = 0
        self.solution: int | None = None
        self.status = ""

    # -- building blocks -----------------------------------------------------------------------------------
    def _judged(self, response: str) -> Judgement:
        if response in self.cache:
            self.cache_hits += 1
            return self.cache[response]
        if self.judge_calls >= self.config.budget:
            self.status = "budget"
            raise _Stop
        judgement = self.judge.judge(self.prompt, response)
        if not isinstance(judgement, Judgement):
            raise InvalidConfig(
                f"Expects judge.judge(prompt, response) to return a Judgement; {type(self.judge).__name__} returned "
                f"{type(judgement).__name__}."
            )
        self.judge_calls += 1
        self.cache[response] = judgement
        return judgement

    def _add(self, parent: Node | None, response: str) -> Node:
        """Judge ``response``, add it as a child of ``parent`` and stop the search if it is accepted."""
        judgement = self._judged(response)
        node = Node(len(self.nodes), None if parent is None else parent.id, 0, response, judgement)
        if parent is not None:
            node.depth = parent.depth + 1
            parent.children.append(node.id)
        self.nodes.append(node)
        if judgement.value > self.config.end_gate:
            self.solution = node.id
            self.status = "root_passed" if parent is None else "solved"
            raise _Stop
        return node

    def _expand(self, node: Node) -> list[Node]:
        """Generate ``branch`` refinements of ``node`` and judge them in order."""
        if self.judge_calls >= self.config.budget:
            self.status = "budget"
            raise _Stop
        seed = _derived_seed(self.seed, _REFINE, node.id)
        candidates = self.refiner.refine(
            self.prompt, node.response, node.judgement.critique, self.config.branch, seed=seed
        )
        self.refine_calls += 1
        if not isinstance(candidates, Sequence) or isinstance(candidates, str):
            raise InvalidConfig(
                f"Expects refiner.refine(...) to return a list of strings; {type(self.refiner).__name__} returned "
                f"{type(candidates).__name__}."
            )
        children = []
        for text in list(candidates)[: self.config.branch]:
            if not isinstance(text, str):
                raise InvalidConfig(f"Expects each refinement to be a string; actual {type(text).__name__}.")
            children.append(self._add(node, text))
        return children

    def _select(self, candidates: list[Node], key: int) -> list[Node]:
        """The ``select_branch`` children to expand next, in expansion order; a response repeating an earlier
        candidate's is not considered twice."""
        unique: dict[str, Node] = {}
        for node in candidates:
            unique.setdefault(node.response, node)
        pool = list(unique.values())
        k = min(self.config.select_branch, len(pool))
        if self.config.selection == "greedy":

            def rank(node: Node) -> tuple[float, float, int]:
                score = node.judgement.score
                return (-node.value, -(node.value if score is None else score), node.id)

            return sorted(pool, key=rank)[:k]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _SELECT, key]))
        weights = np.array([node.value + VALUE_WEIGHT_FLOOR for node in pool], dtype=np.float64)
        chosen = rng.choice(len(pool), size=k, replace=False, p=weights / weights.sum()) if k else []
        return [pool[int(index)] for index in chosen]

    # -- the searches ----------------------------------------------------------------------------------------
    def run(self, response: str) -> Tree:
        try:
            root = self._add(None, response)
            if self.config.search == "bfs":
                self._bfs(root)
            else:
                self._dfs(root)
            reached = max(node.depth for node in self.nodes) >= self.config.max_depth
            self.status = "max_depth" if reached else "exhausted"
        except _Stop:
            pass
        return Tree(
            prompt=self.prompt,
            nodes=self.nodes,
            solution=self.solution,
            status=self.status,
            judge_calls=self.judge_calls,
            cache_hits=self.cache_hits,
            refine_calls=self.refine_calls,
            seed=self.seed,
            config=self.config.to_dict(),
        )

    def _bfs(self, root: Node) -> None:
        frontier = [root]
        for depth in range(1, self.config.max_depth + 1):
            level = [child for node in frontier for child in self._expand(node)]
            if not level:
                return
            if depth < self.config.max_depth:
                frontier = self._select(level, depth)

    def _dfs(self, node: Node) -> None:
        children = self._expand(node)
        if node.depth + 1 >= self.config.max_depth:
            return
        for child in self._select(children, node.id):
            self._dfs(child)


def search(
    prompt: str,
    response: str,
    judge: Judge,
    refiner: Refiner,
    config: TreeSearchConfig | Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
) -> Tree:
    """Refine ``response`` to ``prompt`` until ``judge`` accepts it (see the module docstring).

    Args:
        prompt: the instruction.
        response: the actor's response (the root).
        judge: a :class:`~skills.judges.Judge`.
        refiner: a :class:`~skills.judges.Refiner`.
        config: a :class:`TreeSearchConfig`, a dict of its fields, or None (the defaults).
        seed: every refiner call and every value-weighted selection derives its seed from it; the same inputs and
            seed give the same tree.
    """
    if config is None:
        config = TreeSearchConfig()
    elif isinstance(config, Mapping):
        config = TreeSearchConfig.from_dict(config)
    elif not isinstance(config, TreeSearchConfig):
        raise InvalidConfig(f"Expects a TreeSearchConfig or a dict of its fields; actual {type(config).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidConfig(f"Expects seed to be an integer >= 0; actual {seed!r}.")
    for what, obj, method in (("judge", judge, "judge"), ("refiner", refiner, "refine")):
        if not callable(getattr(obj, method, None)):
            raise InvalidConfig(f"Expects the {what} to have a {method}(...) method; {type(obj).__name__} has none.")
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise InvalidConfig(
            f"Expects prompt and response to be strings; actual {type(prompt).__name__}, {type(response).__name__}."
        )
    return _Search(prompt, judge, refiner, config, int(seed)).run(response)


def _derived_seed(seed: int, tag: int, key: int) -> int:
    """A seed for one refiner call: distinct per node, stable across runs, below 2**31."""
    return int(np.random.SeedSequence([seed, tag, key]).generate_state(1)[0]) % 2**31
