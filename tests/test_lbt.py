"""Learning by teaching: envgym/LbT-v0 (exam construction, scoring, the referee of actions, resume), M1's selection
rules and run, and an episode against the real local server."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envgym  # noqa: F401 - registers the environments
from agents.lbt import preference_pairs, select_answer, solution_score
from envgym.error import InvalidConfig, InvalidPlan, ResetNeeded, UnknownName
from envgym.lbt import m1_report, run_m1, run_m2, run_m3
from envgym.lbt_config import LbTRunConfig
from envgym.lbt_env import LbTEnv
from skills.rationale import Rationale, extract_answer, split_solution
from students.exam_students import ExamStudent, make_exam_students

_SHOT = re.compile(r"Question: (?P<tp>.*)\n(?:.*\n)*?Answer: (?P<given>.*)\n\nQuestion: (?P<q>.*)\n$")


def _gold(question: str) -> str:
    """The arithmetic task's answer of ``question``: an expression ending in '=', or 'a?b=' (compare)."""
    if "?" in question:
        a, b = (int(x) for x in question.rstrip("=").split("?"))
        return "<" if a < b else ">" if a > b else "="
    return str(eval(question.rstrip("=")))  # the task's own generated arithmetic


class FollowsTheExample:
    """A scripted exam student: right on every exam question when its in-context example's answer is right,
    wrong on every one otherwise. It records the prompts it was given."""

    def __init__(self, name: str = "follows") -> None:
        self.name = name
        self.prompts: list[str] = []

    def complete(self, prompts, *, stop, seed):
        self.prompts += list(prompts)
        out = []
        for prompt in prompts:
            shot = _SHOT.match(prompt)
            right = shot is not None and shot["given"].strip() == _gold(shot["tp"])
            out.append(f"Some working.\nAnswer: {_gold(shot['q']) if right else '-1'}")
        return out


class AlwaysRight:
    name = "always-right"

    def complete(self, prompts, *, stop, seed):
        return [f"Answer: {_gold(p.split('Question: ')[-1].strip())}" for p in prompts]


def _env(students=None, **kwargs):
    return LbTEnv(
        task="arithmetic",
        students=students or [FollowsTheExample()],
        problems=3,
        exam_size=5,
        n_val=10,
        n_test=10,
        **kwargs,
    )


def test_the_exam_shares_the_skill_and_never_holds_the_problem_or_a_heldout_question():
    env = _env()
    heldout = {env.task.heldout_key(ex.question) for split in ("val", "test") for ex in env.splits.all_questions(split)}
    for problem in env.teaching_problems[:12]:
        exam = env.exam_for(problem, seed=5)
        assert len(exam) == 5
        assert {ex.skill for ex in exam} == {problem.skill}
        keys = [env.task.heldout_key(ex.question) for ex in exam]
        assert env.task.heldout_key(problem.question) not in keys
        assert not set(keys) & heldout
        assert len(set(keys)) == len(keys)  # distinct problems
        assert [ex.question for ex in env.exam_for(problem, seed=5)] == [ex.question for ex in exam]
    assert [ex.question for ex in env.exam_for(problem, seed=6)] != [ex.question for ex in exam]


def test_reward_is_the_mean_exam_accuracy_over_students_and_follows_the_rationale():
    follows, right = FollowsTheExample(), AlwaysRight()
    env = _env(students=[follows, right])
    obs, info = env.reset(seed=0)
    problem = env.problem
    assert obs == {"problem": problem.question, "skill": env.skills.index(problem.skill)}
    assert info["students"] == ["follows", "always-right"]
    _, reward, terminated, truncated, info = env.step({"rationale": "carry the one", "answer": problem.answer})
    assert info["student_scores"] == {"follows": 1.0, "always-right": 1.0}
    assert reward == 1.0 and info["lbt_score"] == 1.0 and info["answer_score"] == 1.0
    assert not terminated and not truncated
    # The teaching problem and the teacher's solution are the in-context example of every exam prompt.
    assert follows.prompts[0].startswith(f"Question: {problem.question}\ncarry the one\nAnswer: {problem.answer}\n\n")
    assert [row["question"] for row in info["exam"]] == [p.split("Question: ")[-1].strip() for p in follows.prompts]

    wrong = str(int(env.problem.answer) + 1) if env.problem.skill != "compare" else "="
    _, reward, _, _, info = env.step(Rationale("", wrong))
    assert info["student_scores"] == {"follows": 0.0, "always-right": 1.0}
    assert reward == 0.5  # the mean of the students' accuracies, not their sum
    assert info["answer_score"] == 0.0


def test_an_episode_ends_after_its_problems_and_refuses_more():
    env = _env()
    env.reset(seed=1)
    problems = [ex.question for ex in env.episode_problems]
    assert len(problems) == 3 == len(set(problems))
    assert set(problems) <= {ex.question for ex in env.splits.all_questions("val")}
    for k in range(3):
        _, _, terminated, _, _ = env.step({"answer": env.problem.answer})
        assert terminated == (k == 2)
    with pytest.raises(ResetNeeded, match="reset"):
        env.step({"answer": "1"})


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        ("85", InvalidPlan, "Expects an action"),
        ({"rationale": "x"}, InvalidPlan, "'answer'"),
        ({"answr": "85"}, UnknownName, "Did you mean 'answer'"),
        ({"answer": 85}, InvalidPlan, "to be a string; actual int"),
        ({"answer": "8" * 300}, InvalidPlan, "at most 256 characters; actual 300"),
        ({"answer": "85", "rationale": "é"}, InvalidPlan, "printable ASCII"),
    ],
)
def test_bad_actions_are_refused_with_what_was_expected_and_change_nothing(action, error, message):
    env = _env()
    env.reset(seed=0)
    before = json.dumps(env._state())
    with pytest.raises(error, match=message):
        env.step(action)
    assert json.dumps(env._state()) == before


def test_gymnasium_check_env_passes_and_the_spaces_are_typed_text():
    env = _env()
    check_env(env, skip_render_check=True)
    assert env.action_space["rationale"].min_length == 0
    assert "\n" in env.action_space["rationale"].character_set


def test_same_seed_same_episode_and_a_checkpoint_resumes_to_identical_numbers(tmp_path):
    def run(env, seed):
        trace = [env.reset(seed=seed)]
        while not env.episode_over:
            trace.append(env.step({"answer": env.problem.answer}))
        return json.dumps(trace, sort_keys=True)

    assert run(_env(), 4) == run(_env(), 4)
    assert run(_env(), 4) != run(_env(), 5)

    env = _env()
    env.reset(seed=4)
    first = env.step({"answer": env.problem.answer})
    env.save_checkpoint(tmp_path)
    expected = [env.step({"answer": "7"}), env.step({"answer": "7"})]
    resumed = _env()
    restored = resumed.reset(options={"checkpoint": tmp_path})
    assert json.dumps(restored, sort_keys=True) == json.dumps([first[0], first[4]], sort_keys=True)
    got = [resumed.step({"answer": "7"}), resumed.step({"answer": "7"})]
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_a_damaged_checkpoint_is_refused_and_changes_nothing(tmp_path):
    env = _env()
    env.reset(seed=0)
    env.save_checkpoint(tmp_path)
    state = json.loads((tmp_path / "lbt_state.json").read_text())
    state["order"] = [10_000]
    (tmp_path / "lbt_state.json").write_text(json.dumps(state))
    before = json.dumps(env._state())
    with pytest.raises(Exception, match="does not fit"):
        env.reset(options={"checkpoint": tmp_path})
    assert json.dumps(env._state()) == before


def test_selection_rules_on_a_fixed_set():
    sols = [Rationale("", a) for a in ("7", "8", "8", "9", "9")]
    scores = [0.9, 0.5, 0.5, 0.6, 0.7]
    assert select_answer(sols, scores, "maj") == "8"  # 8 and 9 tie on count: the first seen
    assert select_answer(sols, scores, "max") == "7"
    assert select_answer(sols, scores, "sum") == "9"  # 1.3 > 1.0 > 0.9
    assert select_answer(sols, scores, "avg") == "7"  # 0.9 > 0.65 > 0.5
    with pytest.raises(UnknownName, match="Did you mean 'max'"):
        select_answer(sols, scores, "mx")
    with pytest.raises(InvalidConfig, match="one LbT score per solution"):
        select_answer(sols, scores[:2], "max")


def test_answers_are_read_from_the_last_answer_line():
    assert extract_answer("7+8=15, carry 1\nAnswer: 85\nAnswer: 86") == "86"
    assert extract_answer("no final line") == ""
    assert split_solution("step one\nstep two\nAnswer:  85 ") == Rationale("step one\nstep two", "85")


def test_exam_students_are_built_from_specs_and_need_distinct_names():
    url = "http://127.0.0.1:9/v1"
    students = make_exam_students([{"base_url": url, "temperature": 0.0}, {"base_url": url, "temperature": 0.7}])
    assert [s.name for s in students] == ["gemma-3-270m@t0", "gemma-3-270m@t0.7"]
    assert all(isinstance(s, ExamStudent) for s in students)
    with pytest.raises(InvalidConfig, match="distinct names"):
        make_exam_students([{"base_url": "http://127.0.0.1:9/v1"}] * 2)
    with pytest.raises(InvalidConfig, match="non-empty list"):
        make_exam_students([])


class ScriptedSolver:
    """Greedy is wrong; of the samples, the right answer is in the minority but teaches best."""

    def greedy(self, problem, shots):
        return Rationale("", "-5")

    def sample(self, problem, shots, n, *, seed):
        right = _gold(problem)
        return [Rationale("", right), Rationale("", "-5"), Rationale("", "-5"), Rationale("", "-7")][:n]


def test_m1_selects_by_exam_scores_where_self_consistency_fails_and_resumes(tmp_path):
    config = LbTRunConfig(task="arithmetic", problems=3, samples=4, exam_size=4)
    report = run_m1(config, tmp_path / "run", solver=ScriptedSolver(), students=[FollowsTheExample()], progress=False)
    accuracy = report["accuracy"]
    assert accuracy["greedy"] == 0.0 and accuracy["maj"] == 0.0  # the wrong answer is the most frequent
    assert accuracy["max"] == accuracy["sum"] == accuracy["avg"] == 1.0  # only the right one teaches
    assert report["lbt_score"]["right_solutions"] == 1.0 and report["lbt_score"]["wrong_solutions"] == 0.0
    rows = (tmp_path / "run" / "m1.jsonl").read_text().splitlines()
    assert len(rows) == 3
    # A run cut after its first problem continues to the same report.
    (tmp_path / "run" / "m1.jsonl").write_text(rows[0] + "\n" + rows[1][:20])
    resumed = run_m1(
        config, tmp_path / "run", solver=ScriptedSolver(), students=[FollowsTheExample()], resume=True, progress=False
    )
    assert (tmp_path / "run" / "m1.jsonl").read_text().splitlines() == rows
    assert {k: v for k, v in resumed.items() if not k.startswith("wall")} == {
        k: v for k, v in report.items() if not k.startswith("wall")
    }
    with pytest.raises(InvalidConfig, match="differ"):
        run_m1(
            LbTRunConfig(task="arithmetic", problems=4, samples=4, exam_size=4),
            tmp_path / "run",
            solver=ScriptedSolver(),
            students=[FollowsTheExample()],
            resume=True,
            progress=False,
        )
    assert m1_report([], ["x"])["accuracy"]["greedy"] is None


@pytest.mark.slow
def test_an_lbt_episode_against_the_real_local_server(teacher_server):
    env = gym.make(
        "envgym/LbT-v0",
        students=[
            {"base_url": teacher_server.base_url, "temperature": 0.0, "max_retries": 0},
            {"base_url": teacher_server.base_url, "temperature": 0.7, "max_retries": 0},
        ],
        problems=2,
        exam_size=3,
        n_val=4,
        n_test=4,
    )
    env.reset(seed=0)
    base = env.unwrapped
    good = base.step({"rationale": "", "answer": base.problem.answer})
    assert set(good[4]["student_scores"]) == {"gemma-3-270m@t0", "gemma-3-270m@t0.7"}
    assert 0.0 <= good[1] <= 1.0 and good[1] == pytest.approx(np.mean(list(good[4]["student_scores"].values())))
    assert all(len(answers) == 3 for answers in good[4]["exam_answers"].values())
    # A wrong example changes what the real students write on the same exam.
    problem = base.episode_problems[0]
    exam = base.exam_for(problem, 1)
    right = base.score(problem, Rationale("", problem.answer), exam, 1)
    wrong = base.score(problem, Rationale("", "zzz qqq"), exam, 1)
    assert right.answers != wrong.answers
    env.close()


@pytest.mark.slow
def test_envgym_lbt_m1_runs_against_the_real_server_and_resumes_from_its_cache(teacher_server, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m1"
    command = [sys.executable, "-m", "envgym.cli", "lbt", "m1", "--problems", "2", "--samples", "2", "--exam-size"]
    command += ["3", "--teacher-base-url", teacher_server.base_url, "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "M1 on 2 teaching problems" in done.stdout
    report = json.loads((out / "report.json").read_text())
    rows = [json.loads(line) for line in (out / "m1.jsonl").read_text().splitlines()]
    assert report["problems"] == len(rows) == 2
    assert all(len(row["samples"]) == 2 and len(row["exam"]) == 3 for row in rows)
    assert set(report["accuracy"]) == {"greedy", "maj", "max", "sum", "avg", "oracle", "sample_mean"}
    # A run cut after its first problem continues to the same rows (the server's replies come from the cache).
    (out / "m1.jsonl").write_text(json.dumps(rows[0]) + "\n")
    again = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [json.loads(line) for line in (out / "m1.jsonl").read_text().splitlines()] == rows


def test_m2_pairs_keep_gaps_over_the_threshold_widest_first_and_capped():
    sols = [Rationale("", a) for a in ("1", "2", "3", "4", "4")]
    scores = [1.0, 0.8, 0.5, 0.1, 0.1]
    pairs = preference_pairs("Q", "add_carry", sols, scores, gap=0.3, cap=8)
    got = [(p.chosen, p.rejected) for p in pairs]
    # (1,4) twice in scores but one text pair: the repeat is skipped; 0.8-0.5 = 0.3 is not more than the gap.
    assert got == [
        ("Answer: 1", "Answer: 4"),
        ("Answer: 2", "Answer: 4"),
        ("Answer: 1", "Answer: 3"),
        ("Answer: 3", "Answer: 4"),
    ]
    assert [round(p.metadata["score_gap"], 2) for p in pairs] == [0.9, 0.7, 0.5, 0.4]
    assert len(preference_pairs("Q", "add_carry", sols, scores, gap=0.3, cap=2)) == 2
    assert preference_pairs("Q", "s", [Rationale("", "1")] * 2, [1.0, 0.0], gap=0.3, cap=8) == []  # same text
    assert solution_score(1.0, 0.2, 0.5) == 0.6 and solution_score(1.0, 0.2, 0.0) == 1.0


@pytest.mark.slow
def test_m2_trains_a_real_teacher_with_dpo_on_lbt_and_on_correctness_pairs_and_resumes(tmp_path, default_dir):
    from students import HFStudent, HFStudentConfig

    class BareQuestion(HFStudent):
        """The default student reads bare questions ('47+38='): it sees only the solver prompt's last one."""

        def format_prompt(self, question):
            return super().format_prompt(question.split("Question: ")[-1].strip())

    def teacher():
        return BareQuestion(default_dir, HFStudentConfig(max_new_tokens=6, dpo_learning_rate=1e-4, dpo_batch_size=8))

    config = LbTRunConfig(task="arithmetic", problems=10, samples=4, exam_size=3, eval_problems=16, temperature=1.5)
    report = run_m2(config, tmp_path / "m2", teacher=teacher(), students=[FollowsTheExample()], progress=False)
    rows = [json.loads(line) for line in (tmp_path / "m2" / "m2.jsonl").read_text().splitlines()]
    assert len(rows) == report["problems"] == 10
    held_out = {ex.question for ex in LbTEnv(task="arithmetic", students=[AlwaysRight()]).splits.all_questions("test")}
    assert not {row["problem"] for row in rows} & held_out  # M2 trains on training-side problems only
    # The scripted students learn exactly from right answers: LbT score == correctness, so both arms' pairs agree.
    assert all(s["lbt_score"] == s["correct"] for row in rows for s in row["samples"])
    assert report["pairs"]["lbt"] == report["pairs"]["correctness"] > 0
    assert all(loss is not None for loss in report["dpo_loss"].values())
    pairs = [json.loads(line) for line in (tmp_path / "m2" / "pairs_lbt.jsonl").read_text().splitlines()]
    assert all(
        _gold(p["question"].split("Question: ")[-1].strip()) == p["chosen"].removeprefix("Answer: ") for p in pairs
    )  # every chosen solution is the right answer
    assert set(report["accuracy"]) == {"before", "after_lbt", "after_correctness"}
    # Cut after the first chunk of 8 problems: the resumed run samples the rest and reaches the same report.
    (tmp_path / "m2" / "m2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:9]))
    resumed = run_m2(
        config, tmp_path / "m2", teacher=teacher(), students=[FollowsTheExample()], resume=True, progress=False
    )
    assert [json.loads(line) for line in (tmp_path / "m2" / "m2.jsonl").read_text().splitlines()] == rows
    strip = {"config", "wall_seconds_this_session"}
    assert {k: v for k, v in resumed.items() if k not in strip} == {k: v for k, v in report.items() if k not in strip}


class LearnsFromExplainedExamples:
    """A scripted exam student: right on every question when some in-context example carries a rationale (a line
    between its question and its answer), wrong otherwise."""

    def __init__(self, name="explained"):
        self.name = name

    def complete(self, prompts, *, stop, seed):
        out = []
        for prompt in prompts:
            *shots, last = prompt.split("Question: ")
            explained = any(len(shot.strip().splitlines()) > 2 for shot in shots if shot.strip())
            out.append(f"Answer: {_gold(last.strip()) if explained else '-1'}")
        return out


class RewritingTeacher:
    """A scripted teacher: its rewrite explains one right example, and adds a wrong one and a held-out one."""

    def __init__(self, right, heldout_question):
        self.right, self.heldout_question = right, heldout_question
        self.prompts = []

    def complete(self, prompt, *, temperature, seed):
        self.prompts.append(prompt)
        return (
            f"The examples show no working.\nQuestion: {self.right.question}\nadd the ones, carry, add the tens\n"
            f"Answer: {self.right.answer}\n\nQuestion: 19+19=\nAnswer: 37\n\n"
            f"Question: {self.heldout_question}\nAnswer: 0\n"
        )


def test_m3_refines_the_example_set_from_failures_keeps_a_beam_and_resumes(tmp_path):
    env = LbTEnv(task="arithmetic", students=[AlwaysRight()])
    heldout = next(ex.question for ex in env.splits.all_questions("val") if ex.skill == "add_carry")
    right = env.pool.sample("add_carry", 1, np.random.default_rng(99))[0]
    config = LbTRunConfig(task="arithmetic", skill="add_carry", examples=3, rounds=2, beam=2, rewrites=1, minibatch=4)
    students = [LearnsFromExplainedExamples("a"), LearnsFromExplainedExamples("b")]
    teacher = RewritingTeacher(right, heldout)
    report = run_m3(config, tmp_path / "m3", teacher=teacher, students=students, progress=False)
    assert report["val_accuracy_by_round"] == {"one_student": [0.0, 1.0, 1.0], "all_students": [0.0, 1.0, 1.0]}
    # The teacher saw the students' failures with the first set.
    assert "(the students wrote '-1'; correct:" in teacher.prompts[0]
    rows = [json.loads(line) for line in (tmp_path / "m3" / "m3.jsonl").read_text().splitlines()]
    first = rows[1]["all_students"]
    assert first["dropped_unverified"] == first["dropped_heldout"] == 1  # the wrong and the held-out example
    best = first["beam"][0]
    assert best == [
        {"question": right.question, "answer": right.answer, "rationale": "add the ones, carry, add the tens"}
    ]
    everything = json.dumps(rows)
    assert heldout not in everything.replace(teacher.prompts[0], "")  # never in a beam
    (tmp_path / "m3" / "m3.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n")
    resumed = run_m3(
        config,
        tmp_path / "m3",
        teacher=RewritingTeacher(right, heldout),
        students=students,
        resume=True,
        progress=False,
    )
    strip = {"wall_seconds_this_session"}
    assert {k: v for k, v in resumed.items() if k not in strip} == {k: v for k, v in report.items() if k not in strip}


@pytest.mark.slow
def test_envgym_lbt_m3_runs_against_the_real_server(teacher_server, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m3"
    command = [sys.executable, "-m", "envgym.cli", "lbt", "m3", "--skill", "upper", "--rounds", "1", "--examples"]
    command += ["2", "--minibatch", "3", "--teacher-base-url", teacher_server.base_url, "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["skill"] == "upper"
    assert {mode: len(values) for mode, values in report["val_accuracy_by_round"].items()} == {
        "one_student": 2,
        "all_students": 2,
    }
    rows = [json.loads(line) for line in (out / "m3.jsonl").read_text().splitlines()]
    assert rows[1]["all_students"]["rewrites"] == 2  # one per kept set (the beam starts with one) x 2 rewrites
    splits = LbTEnv(task="ifeval-like", students=[AlwaysRight()]).splits
    heldout = {ex.question for split in ("val", "test") for ex in splits.all_questions(split)}
    assert not heldout & {ex["question"] for row in rows for s in row["all_students"]["beam"] for ex in s}


def test_fit_turns_free_text_into_a_valid_action_and_the_env_still_refuses_the_raw_one():
    env = _env()
    env.reset(seed=0)
    raw = Rationale("über " + "r" * 3000, "é" + "9" * 400)
    with pytest.raises(InvalidPlan):
        env.validate_action(raw)
    fitted = env.fit(raw)
    assert env.validate_action(fitted) == fitted
    assert fitted.answer == "9" * 256 and fitted.rationale.startswith("ber r") and len(fitted.rationale) == 2048
