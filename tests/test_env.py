import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envgym
from envgym import CountPlan, ExamplesPlan
from skills import Example


@pytest.mark.slow
def test_check_env_passes(make_env):
    env = make_env(steps=2, budget=32)
    check_env(env.unwrapped, skip_render_check=True)


def test_gym_make_kwargs_and_observation_space(make_env):
    env = make_env(steps=3, budget=64, seed=5, attributor="label")
    obs, info = env.reset()
    assert env.observation_space.contains(obs)
    assert info["skills"] == env.unwrapped.skills
    assert obs["budget_left"][0] == 3 * 64 and obs["step"] == 0
    profile = obs["missing_skill_profile"]
    assert profile.sum() == pytest.approx(1.0, abs=1e-5)
    # With the label attributor the profile is each skill's share of the validation failures.
    errors = np.array([1 - a for a in obs["accuracy"]])
    assert np.allclose(profile, errors / errors.sum(), atol=1e-5)
    assert all(error["missing_skills"] == [error["skill"]] for error in info["errors"])


def test_the_programmatic_profile_moves_dropped_carries_to_the_carrying_skill(make_env):
    """The default attributor diagnoses each wrong answer: the shipped student's failures on 3-digit additions with
    two carries include answers with a carry dropped, which name add_carry besides the question's add_3d_carry."""
    labels = make_env(steps=1, budget=8, seed=5, attributor="label").reset()[1]
    diagnosed = make_env(steps=1, budget=8, seed=5).reset()[1]
    assert diagnosed["attributor"] == "programmatic"
    carries = [e for e in diagnosed["errors"] if e["skill"] == "add_3d_carry" and "add_carry" in e["missing_skills"]]
    dropped = [e for e in carries if int(e["answer"]) < sum(map(int, e["question"][:-1].split("+")))]
    assert dropped, "expected dropped-carry errors on add_3d_carry"
    for error in dropped:  # each is the sum less whole tens or hundreds: the ones digit is right, a carry is lost
        a, b = map(int, error["question"][:-1].split("+"))
        assert (a + b - int(error["answer"])) % 10 == 0
        assert error["missing_skills"] == ["add_carry", "add_3d_carry"]
    label_profile, profile = labels["missing_skill_profile"], diagnosed["missing_skill_profile"]
    assert profile["add_carry"] > label_profile["add_carry"]
    assert sum(profile.values()) == pytest.approx(1.0, abs=1e-5)


def _val_accuracy_by_hand(base):
    """Macro validation accuracy measured here, not by the env: the student's answers scored by the task."""
    questions = base.splits.all_questions("val")
    answers = base.student.answer([ex.question for ex in questions])
    per_skill = {skill: [] for skill in base.skills}
    for example, answer in zip(questions, answers, strict=True):
        per_skill[example.skill].append(base.task.score(example, answer))
    return float(np.mean([np.mean(scores) for scores in per_skill.values()]))


@pytest.mark.slow
def test_step_reward_termination_and_info(make_env):
    env = make_env(steps=3, budget=64)
    base = env.unwrapped
    env.reset(seed=0)
    start = _val_accuracy_by_hand(base)
    obs, reward, terminated, truncated, info = env.step({"sub_borrow": 40, "mul_1d": 24})
    after_first = _val_accuracy_by_hand(base)
    assert after_first != start  # training moved the student, so the two rewards below differ from each other
    assert reward == pytest.approx(after_first - start, abs=1e-9)
    assert (terminated, truncated) == (False, False)
    assert info["examples_used"] == 64 and obs["budget_left"][0] == 128
    assert all(set(e) == {"question", "answer", "gold", "skill", "missing_skills"} for e in info["errors"])
    assert len(info["errors"]) <= env.unwrapped.config.max_errors
    # The reward is the gain over the previous step, not over the episode's start: a step that trains nothing
    # gains exactly nothing.
    obs, reward, terminated, truncated, info = env.step(np.zeros(8, dtype=np.int64))
    assert reward == 0.0 and info["examples_used"] == 0 and not terminated
    obs, reward, terminated, truncated, info = env.step({"add_3d_carry": 64})
    assert reward == pytest.approx(_val_accuracy_by_hand(base) - after_first, abs=1e-9)
    assert terminated and not truncated and obs["budget_left"][0] == 64  # the idle step's share is left unspent
    with pytest.raises(RuntimeError, match="Call reset"):
        env.step({"sub_borrow": 1})


def test_test_split_never_reaches_observation_or_info(make_env):
    env = make_env(steps=2, budget=64, max_errors=10_000)
    base = env.unwrapped
    test_questions = {e.question for e in base.splits.all_questions("test")}
    _, info = env.reset(seed=0)
    seen = {e["question"] for e in info["errors"]}
    _, _, _, _, info = env.step({"add_3d_carry": 64})
    seen |= {e["question"] for e in info["errors"]}
    assert seen and not seen & test_questions
    assert not {e.question for e in base.last_training_data} & test_questions


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"sub_borow": 3}, "Did you mean 'sub_borrow'"),
        ({"sub_borrow": -1}, "non-negative"),
        ({"sub_borrow": 2.5}, "whole number"),
        ({"sub_borrow": 65}, "at most 64 examples"),
        (CountPlan(dict.fromkeys(["add_carry", "compare", "sum3", "mul_1d", "sub_borrow"], 13)), "at most 64 examples"),
        (np.zeros(5), r"shape \(8,\)"),
        (np.array([-1, 0, 0, 0, 0, 0, 0, 0]), "non-negative"),
        ("sub_borrow", "Expects a plan"),
        (ExamplesPlan([Example("1+1=", "2", "no_such_skill")]), "unknown skill"),
    ],
)
def test_bad_plans_raise_clear_errors(make_env, plan, message):
    env = make_env(steps=2, budget=64)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(plan)
    assert env.unwrapped.step_index == 0  # a rejected plan changes nothing


@pytest.mark.slow
def test_total_budget_limits_later_steps(make_env):
    env = make_env(steps=3, budget=64, total_budget=100)
    env.reset(seed=0)
    _, _, terminated, _, info = env.step({"compare": 64})
    assert not terminated and info["budget_next"] == 36
    with pytest.raises(ValueError, match="36 left"):
        env.step({"compare": 37})
    _, _, terminated, _, _ = env.step({"compare": 36})
    assert terminated


def test_examples_plan_verifies_and_drops_heldout(make_env):
    env = make_env(steps=1, budget=64)
    env.reset(seed=0)
    base = env.unwrapped
    heldout = base.splits.val["add_carry"][0]
    plan = ExamplesPlan(
        [
            Example("123+456=", "579", "add_no_carry"),
            Example("123+456=", "580", "add_no_carry"),  # wrong: rejected by the verifier
            Example(heldout.question, heldout.answer, "add_carry"),  # a validation question: dropped
        ]
    )
    _, _, _, _, info = env.step(plan)
    assert info["rejected"] == 1 and info["dropped_heldout"] == 1 and info["examples_used"] == 1
    assert [e.question for e in base.last_training_data] == ["123+456="]


@pytest.mark.slow
def test_shares_dict_and_countplan_are_the_same_plan(make_env):
    results = []
    # A share array spends the whole step's budget: all of it on sub_borrow here.
    for plan in (np.array([0, 0, 0, 0, 0, 0.7, 0, 0]), {"sub_borrow": 32}, CountPlan({"sub_borrow": 32})):
        env = make_env(steps=1, budget=32)
        env.reset(seed=1)
        env.step(plan)
        results.append([e.question for e in env.unwrapped.last_training_data])
    assert results[0] == results[1] == results[2]


def test_custom_plan_kind_plugs_in_without_core_changes(make_env):
    env = make_env(steps=1, budget=16)
    env.reset(seed=0)

    class Doubles:
        kind = "doubles"
        size = 8

    env.unwrapped.register_plan_kind(
        "doubles", lambda plan: ([Example(f"{n}+{n}=", str(2 * n), "add_carry") for n in range(55, 63)], {})
    )
    _, _, _, _, info = env.step(Doubles())
    # The core referees a plug-in's data like a teacher's: verified, and held-out questions dropped.
    assert info["examples_used"] + info["dropped_heldout"] == 8 and info["budget_spent"] == 8
    assert info["rejected"] == 0 and info["examples_used"] >= 6


def test_unknown_env_kwarg_and_mode_are_clear(make_env):
    with pytest.raises(ValueError, match="Did you mean 'budget'"):
        make_env(budgett=5)
    with pytest.raises(ValueError, match="mode"):
        make_env(mode="online")


def test_registered_ids():
    expected = {"envgym/SkillList-v0", "envgym/OpenEnded-v0", "envgym/SkillTree-v0"}
    assert expected <= set(envgym.ENV_IDS)
    ours = {env_id for env_id in gym.registry if env_id.startswith("envgym/")}
    assert set(envgym.ENV_IDS) | set(envgym.LBT_ENV_IDS) == ours
    assert not set(envgym.ENV_IDS) & set(envgym.LBT_ENV_IDS)
    for env_id, entry_point in envgym.ENV_IDS.items():
        assert gym.spec(env_id).entry_point == entry_point
        assert gym.spec(env_id).vector_entry_point is not None  # every teaching env steps on Ray through make_vec
    for env_id, entry_point in envgym.LBT_ENV_IDS.items():
        assert gym.spec(env_id).entry_point == entry_point


@pytest.mark.slow
def test_retrain_mode_trains_the_base_student_on_all_data_so_far(make_env):
    import torch

    from students import HFStudent

    env = make_env(steps=2, budget=64, mode="retrain")
    base = env.unwrapped
    env.reset(seed=4)
    env.step({"sub_borrow": 64})
    first = list(base.last_training_data)
    env.step({"add_3d_carry": 32})
    assert base.accumulated == first + base.last_training_data

    # Same as a fresh base student trained once on everything, with step 2's seed.
    reference = HFStudent(base.student.model_dir, base.student.config)
    seed = int(np.random.SeedSequence([4, 1]).generate_state(1)[0])
    reference.train(base.accumulated, seed=seed)
    for a, b in zip(base.student.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.equal(a, b)
