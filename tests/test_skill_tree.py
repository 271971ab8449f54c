"""envgym/SkillTree-v0: a skill tree grown by explore, data allocated per subskill by exploit; its policies."""

from __future__ import annotations

import json
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

import envgym
from agents import make_teacher
from agents.registry import TEACHER_ENVS
from agents.skill_tree import LPTreeTeacher, ThresholdTreeTeacher
from envgym import Exploit, Explore
from envgym.cli import main
from envgym.error import BudgetExceeded, InvalidPlan
from envgym.files import dumps
from envgym.runner import run_episode
from envgym.skill_tree_actions import subskills_of, tree_from_json
from skills import ArithmeticTask
from skills.subskills import BandProposer, Subskill
from skills.task import Example

SMALL = {"steps": 3, "budget": 32, "n_val": 20, "n_test": 20}
TASK = ArithmeticTask()
TREE_TEACHERS = sorted(name for name, envs in TEACHER_ENVS.items() if "envgym/SkillTree-v0" in envs)


def _env(**kwargs):
    env = gym.make("envgym/SkillTree-v0", **{**SMALL, **kwargs})
    obs, info = env.reset(seed=0)
    return env, obs, info


# -- subskills: difficulty bands of the generator --------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "skill", "expected"),
    [
        ("47+38=", "add_carry", 1),
        ("58+67=", "add_carry", 2),
        ("999+101=", "add_3d_carry", 3),
        ("95+9+8=", "sum3", 2),
        ("532-187=", "sub_borrow", 2),
        ("532-128=", "sub_borrow", 1),
        ("305-102=", "sub_no_borrow", 1),
        ("347?382=", "compare", 1),
        ("347?347=", "compare", 3),
        ("123*7=", "mul_1d", 7),
    ],
)
def test_arithmetic_difficulty_is_the_generator_parameter_named(question, skill, expected):
    assert TASK.difficulty(Example(question, "", skill)) == expected


def test_bands_partition_every_skill_are_seeded_and_each_holds_a_real_share():
    for skill in [s.name for s in TASK.skills]:
        bands = BandProposer().bands(TASK, skill)
        assert bands == BandProposer().bands(TASK, skill)  # the same cut every time
        assert 2 <= len(bands) <= 4
        sample = TASK.generate(skill, 1000, np.random.default_rng(99))
        owners = Counter(sum(band.contains(TASK, ex) for band in bands) for ex in sample)
        assert owners == {1: 1000}, skill  # every question in exactly one band
        for band in bands:
            assert sum(band.contains(TASK, ex) for ex in sample) >= 30, band.name  # >= ~5% (3% with noise)
    assert [b.name for b in BandProposer().propose(TASK, "sub_borrow", [], 5)] == [
        "sub_borrow/borrows=1",
        "sub_borrow/borrows=2",
    ]


# -- tree growth and allocation bookkeeping --------------------------------------------------------------------
@pytest.mark.slow
def test_explore_grows_the_tree_and_the_allocation_persists_and_is_charged_each_step():
    env, obs, info = _env()
    assert obs["mask"].sum() == 0 and obs["can_explore"].all()  # DataEnvGym's empty trees
    base = env.unwrapped
    obs, _, _, _, info = env.step([Explore("sub_borrow", 2, allocation=10), Explore("mul_1d", 1, allocation=4)])
    assert subskills_of(base.tree, "sub_borrow") == ["sub_borrow/borrows=1", "sub_borrow/borrows=2"]
    row = base.skills.index("sub_borrow")
    assert obs["mask"][row].tolist() == [1, 1, 0, 0] and obs["allocation"][row].tolist() == [10, 10, 0, 0]
    assert obs["can_explore"][row] == 0  # its proposer has no third band
    assert info["budget_spent"] == 24 and info["examples_used"] == 24
    # Every trained example lies in the band it was generated for, carries that band's id, and is never held out.
    by_subskill = Counter(ex.metadata["subskill"] for ex in base.last_training_data)
    assert by_subskill == {"sub_borrow/borrows=1": 10, "sub_borrow/borrows=2": 10, "mul_1d/one-digit_factor=2-3": 4}
    for ex in base.last_training_data:
        assert base.subskill(ex.metadata["subskill"]).contains(TASK, ex) and not base.splits.is_heldout(ex.question)
    node = base.tree.nodes["sub_borrow/borrows=2"]
    assert node["data"] == 10 and len(node["history"]) == 1 and node["val_questions"] > 0
    ids = {ex.metadata["id"] for ex in base.last_training_data if ex.metadata["subskill"] == "sub_borrow/borrows=2"}
    assert set(node["data_ids"]) == ids

    # An empty action keeps the allocation: the same 24 examples are generated and charged again.
    obs, _, _, _, info = env.step([])
    assert info["budget_spent"] == 24 and base.tree.nodes["sub_borrow/borrows=2"]["data"] == 20
    assert len(base.tree.nodes["sub_borrow/borrows=2"]["history"]) == 2
    graph = tree_from_json(info["skill_tree"])
    assert graph.nodes["sub_borrow"]["accuracy"] == pytest.approx(info["val_accuracy"]["sub_borrow"])
    # A subskill's accuracy is measured on the validation questions in its band.
    wrong = {e["question"] for e in base.evaluate("val")[1]}
    band = [ex for ex in base.splits.val["sub_borrow"] if base.subskill("sub_borrow/borrows=1").contains(TASK, ex)]
    expected = 1 - sum(ex.question in wrong for ex in band) / len(band)
    assert base.tree.nodes["sub_borrow/borrows=1"]["accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (Explore("sub_borow"), InvalidPlan, "Did you mean 'sub_borrow'"),
        (Explore("mul_1d", 5), InvalidPlan, "1 to 4 new subskills"),
        ([Explore("sub_borrow", 2), Explore("sub_borrow", 1)], InvalidPlan, "proposer has no more"),
        (Explore("sub_borrow", 1, allocation=-3), InvalidPlan, "non-negative"),
        (Explore("sub_borrow", 1, allocation=33), BudgetExceeded, "at most 32"),
        (Exploit({"sub_borrow/borrows=1": 5}), InvalidPlan, "unknown subskill"),
        ([Explore("sub_borrow", 1, 4), Exploit({"sub_borrow/borrows=1": -5})], InvalidPlan, "4 \\+ \\(-5\\) = -1"),
        ([Explore("sub_borrow", 1, 4), Exploit({"sub_borrow/borrows=1": 2.5})], InvalidPlan, "whole number"),
        ({"type": "explore"}, InvalidPlan, "name a skill"),
        ({"type": "explore", "skill": "sub_borrow", "size": 3}, InvalidPlan, "extra keys"),
        ({"sub_borrow": 16}, InvalidPlan, "skill-tree action"),
        ({"explore": [1] * 8, "allocation": np.ones((8, 3))}, InvalidPlan, "shape \\(8, 4\\)"),
        ({"explore": [2] * 8, "allocation": np.ones((8, 4))}, InvalidPlan, "0 or 1"),
    ],
)
def test_bad_actions_are_refused_and_change_nothing(action, error, message):
    env, _, _ = _env()
    before = dumps(env.unwrapped._state())
    with pytest.raises(error, match=message):
        env.step(action)
    assert dumps(env.unwrapped._state()) == before


@pytest.mark.slow
def test_the_numeric_action_explores_flagged_skills_and_spends_the_budget_by_share():
    env, _, _ = _env()
    flags = np.zeros(8, dtype=np.int8)
    flags[[5, 7]] = 1  # sub_borrow, mul_1d
    shares = np.zeros((8, 4), dtype=np.float32)
    shares[5, 0], shares[7, 0], shares[0, 0] = 3.0, 1.0, 5.0  # add_no_carry has no subskill: its share is ignored
    *_, info = env.step({"explore": flags, "allocation": shares})
    assert info["plan"]["allocation"] == {"sub_borrow/borrows=1": 24, "mul_1d/one-digit_factor=2-3": 8}
    # Flags on a skill that cannot grow are ignored and reported; all-zero shares spend nothing.
    env.step({"explore": flags, "allocation": shares})
    *_, info = env.step({"explore": flags, "allocation": np.zeros((8, 4))})
    assert info["plan"]["explore_ignored"] == ["sub_borrow"] and info["budget_spent"] == 0


def test_a_custom_proposer_is_used_and_a_bad_one_is_refused():
    class Halves:
        def propose(self, task, skill, existing, n):
            names = [s.name for s in existing]
            bands = [Subskill(f"{skill}/low", skill, "low", 0, 1), Subskill(f"{skill}/high", skill, "high", 2, 99)]
            return [b for b in bands if b.name not in names][:n]

    env, _, _ = _env(proposer=Halves())
    env.step(Explore("add_carry", 2, allocation=8))
    assert subskills_of(env.unwrapped.tree, "add_carry") == ["add_carry/low", "add_carry/high"]

    class Liar:
        def propose(self, task, skill, existing, n):
            return [Subskill("mul_1d/x", "mul_1d", "", 0, 9)] * n

    env, _, _ = _env(proposer=Liar())
    with pytest.raises(InvalidPlan, match="new Subskill objects of skill 'add_carry'"):
        env.step(Explore("add_carry", 1))


# -- policies ------------------------------------------------------------------------------------------------
def test_the_tree_policies_are_registered_for_this_env_only():
    assert TREE_TEACHERS == ["tree-alternating", "tree-fill-balanced", "tree-lp", "tree-random", "tree-threshold"]


@pytest.mark.slow
@pytest.mark.parametrize("name", TREE_TEACHERS)
def test_each_policy_makes_legal_plans_that_spend_the_whole_budget_deterministically(name):
    env, obs, info = _env(steps=4, budget=40, n_val=10, n_test=5)
    teacher, twin = make_teacher(name, seed=3), make_teacher(name, seed=3)
    for _ in range(4):
        plan = teacher.act(obs, info)
        assert dumps([a.to_json() for a in plan]) == dumps([a.to_json() for a in twin.act(obs, info)])
        obs, _, _, _, info = env.step(plan)
        assert info["budget_spent"] == 40
    assert obs["mask"].sum() >= 2


def test_the_threshold_rule_exploits_a_skill_that_gained_and_explores_one_that_stalled():
    env, _, _ = _env()
    *_, info = env.step([Explore("add_carry", 1, 16), Explore("sub_borrow", 1, 16)])
    tree = tree_from_json(info["skill_tree"])
    tree.nodes["add_carry"]["history"] = [0.2, 0.3]  # gained 0.1: exploit
    tree.nodes["sub_borrow"]["history"] = [0.2, 0.205]  # gained 0.005 <= 0.01: explore
    can = {skill: 1 for skill in info["skills"]}
    weights = {"add_carry/carries=1": 16.0, "sub_borrow/borrows=1": 16.0}
    skills = ["add_carry", "sub_borrow"]
    explore = ThresholdTreeTeacher(increment=10).decide(tree, skills, can, weights, 10, 1)
    assert explore == [("sub_borrow", 10.0)] and weights == {"add_carry/carries=1": 26.0, "sub_borrow/borrows=1": 16.0}


def test_the_learning_progress_policy_funds_subskills_that_move():
    _, _, info = _env()
    tree = tree_from_json(info["skill_tree"])
    for name, history in (("a/fast", [0.1, 0.4, 0.7]), ("a/flat", [0.5, 0.5, 0.5]), ("a/drop", [0.9, 0.7, 0.5])):
        tree.add_node(name, history=history, allocation=10)
    weights = {"a/fast": 10.0, "a/flat": 10.0, "a/drop": 10.0}
    LPTreeTeacher(epsilon=0.0).decide(tree, [], {}, weights, 10, 2)
    assert weights["a/fast"] == pytest.approx(0.6) and weights["a/drop"] == pytest.approx(0.4)  # |slope| 0.3, 0.2
    assert weights["a/flat"] == 0.0


# -- a real run: the taught skill improves; runs, resumes and draws the tree ---------------------------------------
@pytest.mark.slow
def test_exploring_and_funding_a_skill_teaches_it():
    env, _, _ = _env(budget=512, n_val=100, n_test=100)
    before, _ = env.unwrapped.evaluate("test")
    env.step(Explore("sub_borrow", 2, allocation=256))
    env.step([])
    env.step([])
    after, _ = env.unwrapped.evaluate("test")
    assert after["sub_borrow"] - before["sub_borrow"] > 0.15


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_identical_numbers_and_draws_the_tree(tmp_path, monkeypatch):
    kwargs = {"steps": 3, "budget": 48, "n_val": 10, "n_test": 10}
    full = run_episode(gym.make("envgym/SkillTree-v0", **kwargs), make_teacher("tree-lp"), tmp_path / "full", seed=1)
    assert (tmp_path / "full" / "skill_tree.png").stat().st_size > 10_000

    teacher = make_teacher("tree-lp")
    calls = {"n": 0}
    act = teacher.act

    def dies_at_step_3(observation, info):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return act(observation, info)

    monkeypatch.setattr(teacher, "act", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        run_episode(gym.make("envgym/SkillTree-v0", **kwargs), teacher, tmp_path / "cut", seed=1)
    resumed = run_episode(
        gym.make("envgym/SkillTree-v0", **kwargs), make_teacher("tree-lp"), tmp_path / "cut", seed=1, resume=True
    )
    assert resumed["test_accuracy"] == full["test_accuracy"]
    steps = [json.loads(line) for line in (tmp_path / "cut" / "steps.jsonl").read_text().splitlines()]
    full_steps = [json.loads(line) for line in (tmp_path / "full" / "steps.jsonl").read_text().splitlines()]
    assert [s["plan"] for s in steps] == [s["plan"] for s in full_steps]


@pytest.mark.slow
def test_cli_runs_the_skill_tree_env_and_refuses_a_teacher_that_does_not_fit(tmp_path, capsys):
    small = ["--steps", "1", "--budget", "32", "--n-val", "10", "--n-test", "10", "--max-subskills", "3"]
    assert main(["run", "--env", "envgym/SkillTree-v0", *small, "--out", str(tmp_path / "st")]) == 0
    config = json.loads((tmp_path / "st" / "config.json").read_text())
    assert config["teacher"] == "tree-threshold" and config["env_kwargs"]["max_subskills"] == 3
    assert (tmp_path / "st" / "skill_tree.png").is_file()
    capsys.readouterr()
    assert main(["run", "--env", "envgym/SkillTree-v0", "--teacher", "targeted", *small]) == 2
    assert "plans for envgym/SkillList-v0" in capsys.readouterr().out
    assert main(["run", "--env", "envgym/SkillList-v0", "--teacher", "tree-lp", "--steps", "1"]) == 2
    out = capsys.readouterr().out
    assert "plans for envgym/SkillTree-v0" in out and "targeted" in out


def test_every_registered_env_is_listed_with_its_teachers(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "envgym/SkillTree-v0" in out and "tree-lp" in out
    assert set(envgym.ENV_IDS) >= {"envgym/SkillList-v0", "envgym/OpenEnded-v0", "envgym/SkillTree-v0"}


@pytest.mark.parametrize("module", ["envgym.skill_tree_env", "agents.skill_tree", "skills.subskills"])
def test_the_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
