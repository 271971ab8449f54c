import numpy as np
import pytest

from agents import (
    ErrorProportionalTeacher,
    RandomTeacher,
    TargetedTeacher,
    UniformTeacher,
    allocate,
    counts_plan,
    make_teacher,
    teacher_names,
)
from envgym.plans import validate_plan
from skills.errors import InvalidPlan

OBS = {"accuracy": np.array([0.97, 0.95, 0.5, 0.2, 0.0, 0.0], dtype=np.float32), "step": 2}
INFO = {"budget_next": 300, "skills": list("abcdef")}


@pytest.mark.parametrize("weights", [[1, 1, 1], [0.2, 0.3, 0.5], [0, 0, 1], [0, 0, 0], [1e-9, 1, 7]])
@pytest.mark.parametrize("budget", [0, 1, 7, 100, 513])
def test_allocate_spends_exactly_the_budget(weights, budget):
    counts = allocate(weights, budget)
    assert counts.sum() == budget and (counts >= 0).all()


def test_counts_plan_names_every_skill_and_checks_the_weights():
    assert counts_plan([1, 1, 2], {"skills": ["a", "b", "c"], "budget_next": 10}) == {"a": 3, "b": 2, "c": 5}
    assert counts_plan(np.zeros(2), {"skills": ["a", "b"], "budget_next": 0}) == {"a": 0, "b": 0}
    with pytest.raises(InvalidPlan, match="one weight per skill"):
        counts_plan([1, 2], INFO)


def test_every_builtin_skill_list_teacher_returns_a_plan_that_spends_the_budget():
    from agents.registry import TEACHER_ENVS

    assert {"uniform", "random", "error-proportional", "targeted", "tscl", "skill-it", "odm", "doremi"} <= set(
        teacher_names()
    )
    for name in teacher_names():
        if name == "oracle":  # needs the environment itself: tests/test_lookahead.py
            continue
        if TEACHER_ENVS[name] != ("envgym/SkillList-v0",):  # open-ended teachers: tests/test_open_ended.py
            continue
        plan = make_teacher(name, seed=0).act(OBS, INFO)
        if name.startswith("stat-"):  # STAT's plan objects (ReweightPlan, SynthesisPlan): tests/test_stat.py
            assert validate_plan(plan, INFO["skills"], [plan.kind], allowed=300).size == 300, name
            continue
        assert isinstance(plan, dict) and list(plan) == INFO["skills"], name
        assert all(type(n) is int and n >= 0 for n in plan.values()), name
        assert sum(plan.values()) == 300, name


def test_uniform_and_error_proportional():
    assert UniformTeacher().act(OBS, INFO) == dict.fromkeys("abcdef", 50)
    plan = ErrorProportionalTeacher(floor=0.05).act(OBS, INFO)
    assert plan["e"] == plan["f"] == max(plan.values())  # 0% skills get the most
    assert plan["a"] > 0  # the floor keeps every skill in play


def test_targeted_prefers_learnable_skills_and_keeps_replay():
    plan = TargetedTeacher().act(OBS, INFO)
    assert plan["c"] == max(plan.values())  # the half-learned skill
    assert plan["c"] > plan["e"]  # over the not-yet-learnable one
    assert plan["a"] > plan["e"]  # replay goes to what the student knows, not to 0% skills
    assert min(plan.values()) > 0


def test_random_teacher_is_seeded_and_stateless():
    a = RandomTeacher(seed=3).act(OBS, INFO)
    assert a == RandomTeacher(seed=3).act(OBS, INFO)
    assert a != RandomTeacher(seed=4).act(OBS, INFO)
    assert a != RandomTeacher(seed=3).act({**OBS, "step": 3}, INFO)


def test_make_teacher_names_and_errors():
    assert isinstance(make_teacher("agents:TargetedTeacher"), TargetedTeacher)
    with pytest.raises(ValueError, match="Did you mean 'targeted'"):
        make_teacher("targetted")
    with pytest.raises(ValueError, match="could not import"):
        make_teacher("no_such_module:Thing")
    with pytest.raises(ValueError, match="Did you mean 'UniformTeacher'"):
        make_teacher("agents:UniformTeachr")
    with pytest.raises(ValueError, match="act"):
        make_teacher("collections:OrderedDict")


def test_example_custom_teacher_loads_by_module_path_and_plans_validly(monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).parents[1])  # module:Class resolves from the working directory
    teacher = make_teacher("examples.custom_teacher:TwoWeakestTeacher")
    shares = np.asarray(teacher.act(OBS, INFO))  # budget shares, which the env normalises and allocates
    assert shares.sum() == pytest.approx(1.0) and (shares >= 0).all()
    assert shares[2] == shares[3] == shares.max()  # the two weakest skills above 5%
