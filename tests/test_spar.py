"""SPaR's parts in the environment: DPO of a real tiny student, preference plans (refereed, refused for a student
that cannot learn from pairs, resumable exactly) and the SPaR teacher (pairs from tree search or independent
samples, its files, resume of a half-built pair file, determinism)."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import pytest
import torch
from plain_student import PlainStudent

import envgym
from agents.spar import PAIRS_FILE, REFINER_FILE, TREES_FILE, SparTeacher
from envgym import PreferencePlan
from envgym.error import InvalidConfig, InvalidPlan, UnknownName
from skills import PreferencePair
from skills.judges import ProgrammaticJudge
from students import HFStudent, HFStudentConfig, default_student_dir

PAIRS = [PreferencePair(f"{a}+{b}=", str(a + b), str(a + b + 10), "add_carry") for a in range(15, 25) for b in (17, 28)]
IF_ENV = {"steps": 2, "budget": 64, "n_val": 2, "n_test": 2}


def _margin(student: HFStudent, pairs: list[PreferencePair]) -> float:
    """Mean log p(chosen) - log p(rejected) over ``pairs``."""
    gaps = [
        student.answer_logprob(p.question, p.chosen) - student.answer_logprob(p.question, p.rejected) for p in pairs
    ]
    return sum(gaps) / len(pairs)


def _weights(student: HFStudent) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in student.model.parameters()])


def test_dpo_moves_the_preferred_rejected_margin_deterministically():
    config = HFStudentConfig(num_threads=1, dpo_learning_rate=1e-4)
    student, twin = HFStudent(default_student_dir(), config), HFStudent(default_student_dir(), config)
    before = _margin(student, PAIRS)
    stats = student.train_preferences(PAIRS, seed=3)
    assert stats["pairs"] == len(PAIRS) and stats["loss"] is not None
    assert _margin(student, PAIRS) > before + 2.0
    twin.train_preferences(PAIRS, seed=3)
    assert torch.equal(_weights(student), _weights(twin))
    assert student.train_preferences([], seed=3)["loss"] is None


def _chosen_logp(student: HFStudent, pairs: list[PreferencePair]) -> float:
    return sum(student.answer_logprob(p.question, p.chosen) for p in pairs) / len(pairs)


def test_the_preference_loss_is_trls_named_loss_and_an_unknown_one_is_refused_with_a_did_you_mean():
    # APO-zero is anchored: it raises the chosen answers' likelihood, where sigmoid DPO need only widen the margin.
    losses = {}
    for loss in ("sigmoid", "apo_zero"):
        config = HFStudentConfig(num_threads=1, dpo_learning_rate=1e-4, dpo_loss_type=loss)
        student = HFStudent(default_student_dir(), config)
        before = (_margin(student, PAIRS), _chosen_logp(student, PAIRS))
        losses[loss] = student.train_preferences(PAIRS, seed=3)["loss"]
        assert _margin(student, PAIRS) > before[0] + 1.0
        if loss == "apo_zero":
            assert _chosen_logp(student, PAIRS) > before[1] + 1.0
    assert losses["sigmoid"] != losses["apo_zero"]
    message = (
        "Unknown HFStudentConfig.dpo_loss_type 'apo-zero'. Did you mean 'apo_zero'? Expects one of: apo_down, "
        "apo_zero, hinge, ipo, nca_pair, robust, sigmoid, sppo_hard."
    )
    with pytest.raises(UnknownName, match=f"^{re.escape(message)}$"):
        HFStudentConfig(dpo_loss_type="apo-zero")


def test_dpo_of_a_lora_student_trains_only_its_adapters():
    student = HFStudent(default_student_dir(), HFStudentConfig(num_threads=1, lora=True, dpo_learning_rate=1e-3))
    frozen = {n: p.clone() for n, p in student.model.named_parameters() if not p.requires_grad}
    before = _margin(student, PAIRS)
    student.train_preferences(PAIRS, seed=0)
    assert _margin(student, PAIRS) > before
    assert all(torch.equal(p, frozen[n]) for n, p in student.model.named_parameters() if n in frozen)


def _plain_student_env() -> envgym.SkillListEnv:
    """An episode of a student without train_preferences() (a user's SFT-only Student), reset."""
    student = PlainStudent(HFStudent(default_student_dir(), HFStudentConfig(num_threads=1)))
    env = envgym.SkillListEnv(student=student, steps=2, budget=16, n_val=3, n_test=3)
    env.reset(seed=0)
    return env


def test_a_student_that_cannot_learn_from_pairs_is_refused_a_preference_plan():
    env = _plain_student_env()
    assert env.learns_preferences is False
    message = (
        "Expects a student with train_preferences() for a 'preferences' plan; PlainStudent has none. Use a "
        "students.HFStudent (or implement students.PreferenceStudent), or send SFT examples."
    )
    with pytest.raises(InvalidPlan, match=f"^{re.escape(message)}$"):
        env.step(PreferencePlan(PAIRS[:4]))
    assert env.step_index == 0 and env.budget_left == 32


def test_a_plug_in_handler_cannot_slip_pairs_to_a_student_that_cannot_learn_them():
    env = _plain_student_env()
    env.register_plan_kind("pairs", lambda plan: (list(PAIRS[:2]), {}))
    message = (
        "Expects training examples from the 'pairs' plan handler: PlainStudent cannot learn from preference pairs "
        "(no train_preferences()). Return examples, or use a students.HFStudent."
    )
    with pytest.raises(InvalidPlan, match=f"^{re.escape(message)}$"):
        env.step(type("Pairs", (), {"kind": "pairs", "size": 2})())
    assert env.step_index == 0 and env.budget_left == 32


def test_a_preference_step_resumes_to_identical_numbers(tmp_path):
    plans = [PreferencePlan(PAIRS[:10]), PreferencePlan(PAIRS[10:], [PAIRS[0].chosen_example()])]
    straight = envgym.SkillListEnv(steps=2, budget=16, n_val=3, n_test=3)
    straight.reset(seed=1)
    straight.step(plans[0])
    _, reward, _, _, info = straight.step(plans[1])
    interrupted = envgym.SkillListEnv(steps=2, budget=16, n_val=3, n_test=3)
    interrupted.reset(seed=1)
    interrupted.step(plans[0])
    interrupted.save_checkpoint(tmp_path / "ckpt")
    resumed = envgym.SkillListEnv(steps=2, budget=16, n_val=3, n_test=3)
    resumed.reset(options={"checkpoint": tmp_path / "ckpt"})
    _, resumed_reward, _, _, resumed_info = resumed.step(plans[1])
    assert resumed_reward == reward and resumed_info["preference_loss"] == info["preference_loss"]
    assert torch.equal(_weights(resumed.student), _weights(straight.student))


@pytest.fixture(scope="module")
def if_env():
    env = gym.make("envgym/InstructionFollowing-v0", **IF_ENV)
    env.reset(seed=0)
    yield env
    env.close()


def test_spar_pairs_are_refinements_that_follow_every_instruction(if_env, tmp_path):
    teacher = SparTeacher(prompts=6, samples=2, out_dir=tmp_path, seed=0)
    teacher.attach(if_env)
    base = if_env.unwrapped
    plan = teacher.act(*if_env.reset(seed=0))
    assert isinstance(plan, PreferencePlan) and plan.pairs
    judge = ProgrammaticJudge(base.task)
    for pair in plan.pairs:
        assert judge.judge(pair.question, pair.chosen).value == 1.0
        assert judge.judge(pair.question, pair.rejected).value == 0.0
        assert not base.splits.is_heldout(pair.question)
        assert base.task.verify(pair.chosen_example()).ok
    records = [json.loads(line) for line in (tmp_path / TREES_FILE).read_text().splitlines()]
    assert [row["prompt_index"] for row in records] == list(range(6))
    pairs = [json.loads(line) for line in (tmp_path / PAIRS_FILE).read_text().splitlines()]
    assert [PreferencePair.from_dict(pair) for pair in pairs] == list(plan.pairs)
    refinements = [json.loads(line) for line in (tmp_path / REFINER_FILE).read_text().splitlines()]
    assert refinements and all(row["critique"].startswith("Fails") for row in refinements)
    # The same seed gives the same pairs; the environment trains on every one of them.
    again = SparTeacher(prompts=6, samples=2, seed=0)
    again.attach(if_env)
    assert again.act(*if_env.reset(seed=0)).pairs == plan.pairs
    _, _, _, _, info = if_env.step(plan)
    assert info["examples_used"] == len(plan.pairs) == info["budget_spent"] and info["rejected"] == 0


def test_one_root_a_prompt_refines_one_of_its_failing_samples_as_spars_released_code_does(if_env):
    prompt, failing = "echo car fish |upper", ["car fish", "Car fish", "car FISH"]
    responses = [failing[0], "CAR FISH", failing[1], failing[0], failing[2]]  # one passes, one failure twice
    teachers = {roots: SparTeacher(roots=roots, seed=2) for roots in ("all", "one")}
    for teacher in teachers.values():
        teacher.attach(if_env)
    every = teachers["all"].build_record(0, 0, prompt, "upper", responses)
    assert [tree["nodes"][0]["response"] for tree in every["trees"]] == failing  # each distinct failure once
    drawn = []
    for index in range(12):
        record = teachers["one"].build_record(0, index, prompt, "upper", responses)
        assert len(record["trees"]) == 1 and len(record["pairs"]) == 1
        drawn.append(record["trees"][0]["nodes"][0]["response"])
        assert teachers["one"].build_record(0, index, prompt, "upper", responses) == record  # seeded per prompt
    assert set(drawn) == set(failing)  # drawn, not always the first
    assert teachers["one"].build_record(0, 0, prompt, "upper", ["CAR FISH"])["trees"] == []
    with pytest.raises(UnknownName, match="Did you mean 'one'"):
        SparTeacher(roots="on")


def test_independent_pairs_are_a_passing_sample_against_a_failing_one(if_env):
    teacher = SparTeacher(prompts=14, samples=6, pairs="independent", seed=0)
    teacher.attach(if_env)
    plan = teacher.act(*if_env.reset(seed=0))
    judge = ProgrammaticJudge(if_env.unwrapped.task)
    for pair in plan.pairs:
        assert judge.judge(pair.question, pair.chosen).value == 1.0 > judge.judge(pair.question, pair.rejected).value


class _KilledJudge(ProgrammaticJudge):
    """Dies (as a killed process would) after ``calls`` judgements."""

    def __init__(self, task, calls: int) -> None:
        super().__init__(task)
        self.calls = calls

    def judge(self, prompt, response):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        return super().judge(prompt, response)


class _CountingJudge(ProgrammaticJudge):
    calls = 0

    def judge(self, prompt, response):
        type(self).calls += 1
        return super().judge(prompt, response)


def test_a_half_built_pair_file_resumes_to_the_same_pairs(if_env, tmp_path):
    task = if_env.unwrapped.task
    straight = SparTeacher(prompts=6, samples=2, out_dir=tmp_path / "straight", seed=4)
    straight.attach(if_env)
    plan = straight.act(*if_env.reset(seed=0))
    killed = SparTeacher(prompts=6, samples=2, out_dir=tmp_path / "resumed", judge=_KilledJudge(task, 12), seed=4)
    killed.refiner_choice = "programmatic"
    killed.attach(if_env)
    with pytest.raises(KeyboardInterrupt):
        killed.act(*if_env.reset(seed=0))
    trees = tmp_path / "resumed" / TREES_FILE
    finished = len(trees.read_text().splitlines())
    assert 0 < finished < 6
    with open(trees, "a") as f:
        f.write('{"step": 0, "prompt_index": 9, "quest')  # the line being written when it was killed
    resumed = SparTeacher(prompts=6, samples=2, out_dir=tmp_path / "resumed", judge=_CountingJudge(task), seed=4)
    resumed.refiner_choice = "programmatic"
    resumed.attach(if_env)
    assert resumed.act(*if_env.reset(seed=0)).pairs == plan.pairs
    for name in (TREES_FILE, PAIRS_FILE, REFINER_FILE):
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "straight" / name).read_text()
    assert _CountingJudge.calls < sum(  # the finished prompts were not judged again
        row["judgements"].__len__() + sum(len(tree["nodes"]) for tree in row["trees"])
        for row in map(json.loads, (tmp_path / "straight" / TREES_FILE).read_text().splitlines())
    )


def test_spar_teacher_settings_are_checked():
    with pytest.raises(UnknownName, match="Did you mean 'tree'"):
        SparTeacher(pairs="trees")
    with pytest.raises(InvalidConfig, match="LLM endpoint"):
        SparTeacher(judge="llm")
    with pytest.raises(InvalidConfig, match="samples to be an integer >= 1"):
        SparTeacher(samples=0)
    with pytest.raises(InvalidConfig, match="attached"):
        SparTeacher().act({}, {"budget_next": 4})


SPAR_FLAGS = [
    "--prompts", "14", "--samples", "2", "--n-eval", "2", "--warmup-examples-per-skill", "8", "--warmup-epochs", "1",
    "--student-num-threads", "1",
]  # fmt: skip


@pytest.mark.slow
def test_envgym_spar_writes_its_pairs_trees_and_the_rates_before_and_after(tmp_path):
    from envgym.cli import main

    out = tmp_path / "run"
    assert main(["spar", "--out", str(out), *SPAR_FLAGS]) == 0
    report = json.loads((out / "report.json").read_text())
    rates = report["constraint_satisfaction"]
    assert rates["test_prompts"] == 28 and set(rates["prompt_level"]) == {"before", "after"}
    assert report["teacher"] == "spar-tree" and report["spar"]["search"]["search"] == "bfs"
    step = json.loads((out / "steps.jsonl").read_text().splitlines()[0])
    pairs = (out / PAIRS_FILE).read_text().splitlines()
    assert step["budget_spent"] == len(pairs) > 0 and step["preference_loss"] is not None
    assert len((out / TREES_FILE).read_text().splitlines()) == 14
    # The run's pair files fit only its settings: resuming with others is refused, naming them.
    assert main(["spar", "--out", str(out), "--resume", *SPAR_FLAGS, "--samples", "3"]) == 2
