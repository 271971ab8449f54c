import numpy as np
import pytest

from agents import (
    ErrorProportionalTeacher,
    RandomTeacher,
    TargetedTeacher,
    UniformTeacher,
    allocate,
    make_teacher,
)

OBS = {"accuracy": np.array([0.97, 0.95, 0.5, 0.2, 0.0, 0.0], dtype=np.float32), "step": 2}
INFO = {"budget_next": 300, "skills": list("abcdef")}


@pytest.mark.parametrize("weights", [[1, 1, 1], [0.2, 0.3, 0.5], [0, 0, 1], [0, 0, 0], [1e-9, 1, 7]])
@pytest.mark.parametrize("budget", [0, 1, 7, 100, 513])
def test_allocate_spends_exactly_the_budget(weights, budget):
    counts = allocate(weights, budget)
    assert counts.sum() == budget and (counts >= 0).all()


def test_every_builtin_teacher_spends_the_budget():
    for name in ("uniform", "random", "error-proportional", "targeted"):
        plan = make_teacher(name, seed=0).act(OBS, INFO)
        assert plan.sum() == 300 and (plan >= 0).all(), name


def test_uniform_and_error_proportional():
    assert UniformTeacher().act(OBS, INFO).tolist() == [50] * 6
    plan = ErrorProportionalTeacher(floor=0.05).act(OBS, INFO)
    assert plan[4] == plan[5] == plan.max()  # 0% skills get the most
    assert plan[0] > 0  # the floor keeps every skill in play


def test_targeted_prefers_learnable_skills_and_keeps_replay():
    plan = TargetedTeacher().act(OBS, INFO)
    assert plan[2] == plan.max()  # the half-learned skill
    assert plan[2] > plan[4]  # over the not-yet-learnable one
    assert plan[0] > plan[4]  # replay goes to what the student knows, not to 0% skills
    assert plan.min() > 0


def test_random_teacher_is_seeded_and_stateless():
    a = RandomTeacher(seed=3).act(OBS, INFO)
    assert (a == RandomTeacher(seed=3).act(OBS, INFO)).all()
    assert (a != RandomTeacher(seed=4).act(OBS, INFO)).any()
    assert (a != RandomTeacher(seed=3).act({**OBS, "step": 3}, INFO)).any()


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
    plan = teacher.act(OBS, INFO)
    assert plan.sum() <= 300 and (plan >= 0).all()
    assert plan[2] == plan[3] == plan.max()  # the two weakest skills above 5%
