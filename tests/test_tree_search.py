"""SPaR's tree search against a scripted judge and refiner (pure Python): exact node and judge-call counts."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from agents.tree_search import Tree, TreeSearchConfig, search
from skills.errors import InvalidConfig, UnknownName
from skills.judges import Judge, Judgement, Refiner


class TargetJudge:
    """Accepts ``target`` (value 1.0); any other response gets its value from ``values`` (default 0.0) and its
    score from ``scores`` (default: the value). Records every response it judged."""

    def __init__(self, target: str | None, values=None, scores=None) -> None:
        self.target = target
        self.values = dict(values or {})
        self.scores = dict(scores or {})
        self.calls: list[str] = []

    def judge(self, prompt: str, response: str) -> Judgement:
        self.calls.append(response)
        if response == self.target:
            return Judgement(1.0, "fine", {"yes": 1}, score=1.0)
        value = self.values.get(response, 0.0)
        return Judgement(value, f"fix {response}", {"no": 1}, score=self.scores.get(response, value))


class AppendRefiner:
    """Child ``i`` of ``r`` is ``r`` + the i-th letter (``ra``, ``rb``, ``rc``...); records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, int]] = []

    def refine(self, prompt: str, response: str, critique: str, n: int, *, seed: int) -> list[str]:
        self.calls.append((response, critique, n, seed))
        return [response + letter for letter in "abcdefgh"[:n]]


class ConstantRefiner:
    """Every candidate is ``response + suffix``: duplicates, to exercise the judge cache."""

    def __init__(self, suffix: str = "x") -> None:
        self.suffix = suffix

    def refine(self, prompt: str, response: str, critique: str, n: int, *, seed: int) -> list[str]:
        return [response + self.suffix] * n


class SeededRefiner:
    """Letters drawn from ``seed``: the tree depends on the seeds the search derives."""

    def refine(self, prompt: str, response: str, critique: str, n: int, *, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [response + str(rng.choice(list("abcdef"))) for _ in range(n)]


class EmptyRefiner:
    def refine(self, prompt: str, response: str, critique: str, n: int, *, seed: int) -> list[str]:
        return []


def _run(target, search_kind="bfs", *, values=None, scores=None, refiner=None, seed=0, **config):
    judge = TargetJudge(target, values, scores)
    refiner = refiner or AppendRefiner()
    tree = search("Do it.", "r", judge, refiner, TreeSearchConfig(search=search_kind, **config), seed=seed)
    return tree, judge, refiner


def _responses(tree: Tree) -> list[str]:
    return [node.response for node in tree.nodes]


def test_the_scripted_plugins_satisfy_the_protocols():
    assert isinstance(TargetJudge("r"), Judge)
    assert isinstance(AppendRefiner(), Refiner)


@pytest.mark.parametrize("kind", ["bfs", "dfs"])
def test_the_root_passing_ends_the_search_at_once(kind):
    tree, judge, refiner = _run("r", kind)
    assert (tree.status, tree.solution, len(tree.nodes), tree.judge_calls, tree.refine_calls) == (
        "root_passed",
        0,
        1,
        1,
        0,
    )
    assert judge.calls == ["r"] and refiner.calls == []
    assert tree.refined_pair() is None  # nothing was refined


@pytest.mark.parametrize("kind", ["bfs", "dfs"])
def test_solved_at_depth_one_stops_at_the_first_accepted_child(kind):
    tree, judge, refiner = _run("rb", kind)
    assert tree.status == "solved"
    assert _responses(tree) == ["r", "ra", "rb"]  # rc is never judged
    assert tree.judge_calls == 3 and judge.calls == ["r", "ra", "rb"]
    assert tree.solution == 2 and tree.solution_node.depth == 1
    assert tree.refined_pair() == ("rb", "r")
    # The refiner read the root's critique and was asked for `branch` candidates.
    assert [call[:3] for call in refiner.calls] == [("r", "fix r", 3)]
    assert tree.root.children == [1, 2]


def test_solved_at_depth_two_bfs_expands_the_selected_level_while_dfs_goes_deep_first():
    # Level 1: rb (0.4) and rc (0.3) are the two best; the target rcb is a child of the second.
    values = {"rb": 0.4, "rc": 0.3}
    bfs, _, bfs_refiner = _run("rcb", "bfs", values=values)
    # Root + 3 children, then rb's 3 children, then rc's first two (rcb accepted).
    assert bfs.status == "solved" and len(bfs.nodes) == 9 and bfs.judge_calls == 9
    assert [call[0] for call in bfs_refiner.calls] == ["r", "rb", "rc"]
    assert bfs.solution_node.depth == 2
    assert [node.response for node in bfs.path(bfs.solution)] == ["r", "rc", "rcb"]

    dfs, _, dfs_refiner = _run("rcb", "dfs", values=values)
    # DFS searches rb's subtree to max_depth first: rb's children, then rba's and rbb's (greedy by creation order).
    assert dfs.status == "solved" and len(dfs.nodes) == 15 and dfs.judge_calls == 15
    assert [call[0] for call in dfs_refiner.calls] == ["r", "rb", "rba", "rbb", "rc"]
    assert dfs.depth == 3 and dfs.solution_node.depth == 2
    assert dfs.refined_pair() == ("rcb", "r")


def test_a_deep_target_is_found_sooner_by_dfs():
    values = {"rb": 0.4, "rc": 0.3}
    bfs, _, _ = _run("rbaa", "bfs", values=values)
    # All of level 1 and level 2 (rb's and rc's children), then the first child of rba.
    assert (bfs.status, len(bfs.nodes), bfs.judge_calls, bfs.solution_node.depth) == ("solved", 11, 11, 3)
    dfs, _, _ = _run("rbaa", "dfs", values=values)
    assert (dfs.status, len(dfs.nodes), dfs.judge_calls, dfs.solution_node.depth) == ("solved", 8, 8, 3)


@pytest.mark.parametrize(
    ("kind", "select_branch", "nodes"), [("bfs", 1, 5), ("dfs", 1, 5), ("bfs", 2, 7), ("dfs", 2, 7)]
)
def test_never_solved_ends_at_max_depth(kind, select_branch, nodes):
    tree, _, _ = _run(None, kind, branch=2, select_branch=select_branch, max_depth=2)
    assert (tree.status, tree.solution, len(tree.nodes), tree.judge_calls) == ("max_depth", None, nodes, nodes)
    assert tree.depth == 2 and tree.refined_pair() is None


def test_dfs_and_bfs_differ_in_order_when_never_solved():
    bfs, _, _ = _run(None, "bfs", branch=2, select_branch=2, max_depth=2)
    dfs, _, _ = _run(None, "dfs", branch=2, select_branch=2, max_depth=2)
    assert sorted(_responses(bfs)) == sorted(_responses(dfs))
    assert _responses(bfs) == ["r", "ra", "rb", "raa", "rab", "rba", "rbb"]
    assert _responses(dfs) == ["r", "ra", "rb", "raa", "rab", "rba", "rbb"]  # the same at depth 2
    bfs3, _, _ = _run(None, "bfs", branch=2, select_branch=2, max_depth=3)
    dfs3, _, _ = _run(None, "dfs", branch=2, select_branch=2, max_depth=3)
    # BFS keeps 2 nodes per level (1 + 2 + 4 + 4); DFS keeps 2 per node (1 + 2 + 4 + 8).
    assert (len(bfs3.nodes), len(dfs3.nodes)) == (11, 15)
    assert _responses(dfs3)[3:6] == ["raa", "rab", "raaa"]  # DFS descends into raa before expanding rb


@pytest.mark.parametrize("kind", ["bfs", "dfs"])
def test_the_budget_stops_the_search_mid_level(kind):
    tree, judge, _ = _run(None, kind, budget=5)
    # Root, ra rb rc, then ra's first child: the fifth call; its sibling would be the sixth.
    assert (tree.status, tree.judge_calls, len(tree.nodes), tree.refine_calls) == ("budget", 5, 5, 2)
    assert judge.calls == ["r", "ra", "rb", "rc", "raa"]
    assert tree.solution is None


def test_a_budget_spent_exactly_at_max_depth_is_max_depth_not_budget():
    tree, _, _ = _run(None, "bfs", branch=2, select_branch=1, max_depth=2, budget=5)
    assert (tree.status, tree.judge_calls) == ("max_depth", 5)
    tree, _, refiner = _run(None, "bfs", branch=2, select_branch=1, max_depth=3, budget=5)
    # The budget is spent when the third level would start: the refiner is not even asked.
    assert (tree.status, tree.judge_calls, len(refiner.calls)) == ("budget", 5, 2)


def test_repeated_responses_are_judged_once_and_cost_no_budget():
    judge = TargetJudge(None)
    config = TreeSearchConfig(branch=3, select_branch=2, max_depth=2, budget=3)
    tree = search("Do it.", "r", judge, ConstantRefiner(), config, seed=0)
    # r, then rx three times (one call, two hits), then -- rx selected once -- rxx three times.
    assert _responses(tree) == ["r", "rx", "rx", "rx", "rxx", "rxx", "rxx"]
    assert judge.calls == ["r", "rx", "rxx"]
    assert (tree.judge_calls, tree.cache_hits, tree.refine_calls) == (3, 4, 2)
    assert tree.status == "max_depth"  # a budget of 3 sufficed
    assert tree.nodes[2].judgement is tree.nodes[1].judgement
    # A refinement equal to the root is a cache hit too.
    tree = search("Do it.", "r", TargetJudge(None), ConstantRefiner(""), config, seed=0)
    assert (tree.judge_calls, tree.cache_hits) == (1, 6)


def test_a_refiner_with_nothing_to_offer_exhausts_the_tree():
    tree, _, _ = _run(None, "bfs", refiner=EmptyRefiner())
    assert (tree.status, len(tree.nodes), tree.judge_calls, tree.refine_calls) == ("exhausted", 1, 1, 1)
    tree, _, _ = _run(None, "dfs", refiner=EmptyRefiner())
    assert tree.status == "exhausted"


def test_greedy_selection_ranks_by_value_then_score_then_creation_order():
    _, _, refiner = _run(None, "bfs", values={"ra": 0.1, "rb": 0.4, "rc": 0.2}, branch=3, select_branch=1, max_depth=2)
    assert [call[0] for call in refiner.calls] == ["r", "rb"]
    # Equal values: the higher score wins.
    values = {"ra": 0.2, "rb": 0.2, "rc": 0.2}
    _, _, refiner = _run(None, "bfs", values=values, scores={"rc": 0.9}, select_branch=1, max_depth=2)
    assert [call[0] for call in refiner.calls] == ["r", "rc"]
    # Equal values and scores: creation order.
    _, _, refiner = _run(None, "bfs", values=values, select_branch=2, max_depth=2)
    assert [call[0] for call in refiner.calls] == ["r", "ra", "rb"]


def test_value_weighted_selection_samples_in_proportion_to_value():
    values = {"ra": 0.0, "rb": 0.45, "rc": 0.15}
    picked = []
    for seed in range(300):
        _, _, refiner = _run(
            None, "bfs", values=values, select_branch=1, max_depth=2, selection="value_weighted", seed=seed
        )
        picked.append(refiner.calls[1][0])
    counts = {name: picked.count(name) for name in ("ra", "rb", "rc")}
    # Expected shares 0.2%, 74.6%, 24.9%.
    assert counts["rb"] > 180 and 40 < counts["rc"] < 120 and counts["ra"] <= 5
    # Greedy never explores rc; value-weighted selection does.
    _, _, greedy = _run(None, "bfs", values=values, select_branch=1, max_depth=2, seed=7)
    assert greedy.calls[1][0] == "rb"
    # All-zero values can still be sampled (the 1e-3 floor), without replacement.
    _, _, refiner = _run(None, "bfs", select_branch=3, max_depth=2, selection="value_weighted", seed=3)
    assert sorted(call[0] for call in refiner.calls[1:]) == ["ra", "rb", "rc"]


@pytest.mark.parametrize("kind", ["bfs", "dfs"])
@pytest.mark.parametrize("selection", ["greedy", "value_weighted"])
def test_the_same_inputs_and_seed_give_the_same_tree(kind, selection):
    def tree(seed):
        judge = TargetJudge(None, values={"rab": 0.3, "rcd": 0.2})
        config = TreeSearchConfig(search=kind, selection=selection, branch=3, select_branch=2, max_depth=3)
        return search("Do it.", "r", judge, SeededRefiner(), config, seed=seed).to_dict()

    assert tree(5) == tree(5)
    assert tree(5) != tree(6)


def test_each_node_gets_its_own_refiner_seed():
    _, _, refiner = _run(None, "bfs", max_depth=2)
    seeds = [call[3] for call in refiner.calls]
    assert len(set(seeds)) == len(seeds) == 3
    assert all(isinstance(seed, int) and 0 <= seed < 2**31 for seed in seeds)
    _, _, again = _run(None, "bfs", max_depth=2)
    assert [call[3] for call in again.calls] == seeds


def test_the_tree_round_trips_through_json_and_converts_to_networkx():
    tree, _, _ = _run("rcb", "bfs", values={"rb": 0.4, "rc": 0.3})
    data = json.loads(json.dumps(tree.to_dict()))
    back = Tree.from_dict(data)
    assert back == tree and back.to_dict() == tree.to_dict()
    assert back.config == TreeSearchConfig().to_dict() and back.seed == 0
    graph = tree.to_networkx()
    assert isinstance(graph, nx.DiGraph)
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (9, 8)
    assert nx.is_tree(graph) and graph.graph["status"] == "solved"
    assert graph.nodes[tree.solution]["response"] == "rcb" and graph.nodes[tree.solution]["value"] == 1.0
    assert graph.nodes[2]["value"] == 0.4 and sorted(graph.successors(3)) == [7, 8]
    assert [node.id for node in tree.path(0)] == [0]
    with pytest.raises(InvalidConfig, match="node id"):
        tree.path(99)
    with pytest.raises(InvalidConfig, match="at least one node"):
        Tree.from_dict({"prompt": "p"})


def test_search_accepts_a_dict_config():
    judge = TargetJudge("ra")
    tree = search("Do it.", "r", judge, AppendRefiner(), {"branch": 2, "select_branch": 1}, seed=1)
    assert tree.status == "solved" and tree.config["branch"] == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"search": "bsf"}, UnknownName, "Did you mean 'bfs'"),
        ({"selection": "value-weighted"}, UnknownName, "Did you mean 'value_weighted'"),
        ({"branch": 0}, InvalidConfig, "branch to be an integer >= 1"),
        ({"branch": True}, InvalidConfig, "branch to be an integer >= 1"),
        ({"max_depth": 1.5}, InvalidConfig, "max_depth to be an integer >= 1"),
        ({"budget": -3}, InvalidConfig, "budget to be an integer >= 1"),
        ({"end_gate": 1.0}, InvalidConfig, r"end_gate to be a number in \[0, 1\)"),
        ({"end_gate": -0.1}, InvalidConfig, r"end_gate to be a number in \[0, 1\)"),
        ({"select_branch": 4}, InvalidConfig, "select_branch <= branch"),
    ],
)
def test_config_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        TreeSearchConfig(**kwargs)


def test_unknown_config_fields_and_bad_arguments_are_refused():
    with pytest.raises(UnknownName, match="Did you mean 'branch'"):
        TreeSearchConfig.from_dict({"brnch": 2})
    with pytest.raises(InvalidConfig, match="seed"):
        search("p", "r", TargetJudge(None), AppendRefiner(), seed=-1)
    with pytest.raises(InvalidConfig, match="refine"):
        search("p", "r", TargetJudge(None), object())

    class BadJudge:
        def judge(self, prompt, response):
            return 1.0

    with pytest.raises(InvalidConfig, match="return a Judgement"):
        search("p", "r", BadJudge(), AppendRefiner())


def test_the_docstring_examples_run():
    import doctest

    import agents.tree_search

    result = doctest.testmod(agents.tree_search)
    assert result.attempted > 0 and result.failed == 0
