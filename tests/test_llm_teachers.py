"""LLM teachers (``llm``, ``llm2llm``) and the LLM data engine, against a scripted OpenAI-compatible server.

The scripted "LLM" answers through real HTTP and the ``openai`` package; what it says is chosen per test so that
each behaviour (a good plan, a malformed reply, wrong or held-out examples, disagreeing solves) is certain.
"""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest
from conftest import SMALL
from scripted_llm_server import ScriptedLLMServer, last_prompt

import envgym
from agents import LLM2LLMTeacher, LLMTeacher
from envgym.error import LLMUnavailable
from skills.arithmetic import ArithmeticTask, solve
from skills.llm import LLMClient
from skills.llm.data_engine import SELF_CONSISTENCY, VERIFIED_BY, LLMDataEngine
from skills.task import Example, Verdict, Verification

TASK = ArithmeticTask()
EPISODE = {**SMALL, "steps": 2, "budget": 48}


def _llm(server: ScriptedLLMServer, **kwargs) -> dict:
    return {"base_url": server.base_url, "model": "scripted", "max_retries": 0, **kwargs}


def _test_questions(env) -> set[str]:
    return {ex.question for ex in env.unwrapped.splits.all_questions("test")}


# -- the llm policy teacher ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_llm_teacher_turns_weights_into_a_plan_and_never_sees_test_questions():
    reply = {"weights": [{"skill": "sub_borrow", "weight": 3}, {"skill": "add_carry", "weight": 1}]}
    with ScriptedLLMServer(lambda request: json.dumps(reply)) as server:
        env = gym.make("envgym/SkillList-v0", **EPISODE)
        obs, info = env.reset(seed=0)
        teacher = LLMTeacher(_llm(server))
        plan = teacher.act(obs, info)
        env.step(plan)
    assert plan == {**dict.fromkeys(info["skills"], 0), "sub_borrow": 36, "add_carry": 12}
    prompt = last_prompt(server.requests[0])
    assert "sub_borrow" in prompt and "accuracy" in prompt
    assert any(error["question"] in prompt for error in info["errors"])  # it reads the student's errors
    assert not any(question in prompt for question in _test_questions(env))
    assert teacher.last_decision["valid"] and teacher.last_decision["fallback"] is None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raw", "fallback"),
    [
        ('{"weights": [{"skill": "sub_borow", "weight": 1}]}', "invalid reply"),  # not a skill of the task
        ('{"weights": [{"skill": "sub_borrow", "weight": -2}]}', "invalid reply"),
        ('{"weights": [{"skill": "sub_borrow", "weight": 0}]}', "all weights zero"),
        ('{"weights": [', "invalid reply"),
    ],
)
def test_llm_teacher_falls_back_to_uniform_on_a_bad_reply_and_counts_it(raw, fallback):
    with ScriptedLLMServer(lambda request: raw) as server:
        env = gym.make("envgym/SkillList-v0", **EPISODE)
        obs, info = env.reset(seed=0)
        teacher = LLMTeacher(_llm(server))
        plan = teacher.act(obs, info)
    assert sorted(set(plan.values())) == [6]  # 48 examples over 8 skills
    assert fallback in teacher.last_decision["fallback"]
    assert teacher.client.usage.invalid_replies == (fallback == "invalid reply")


@pytest.mark.slow
def test_llm_teacher_asks_the_open_ended_env_for_data():
    with ScriptedLLMServer(lambda request: json.dumps({"request": "subtraction with borrowing"})) as server:
        env = gym.make("envgym/OpenEnded-v0", **EPISODE)
        obs, info = env.reset(seed=0)
        plan = LLMTeacher(_llm(server)).act(obs, info)
        _, _, _, _, info = env.step(plan)
    assert plan == {"request": "subtraction with borrowing", "n": 48}
    assert "sub_borrow" in info["request_skills"] and info["examples_used"] > 0


# -- llm2llm ---------------------------------------------------------------------------------------------------
def _similar_problems(request: dict) -> str:
    """A scripted LLM2LLM teacher: 4 problems near the wrong one, the last with a wrong answer, plus the wrong
    problem itself (which the teacher must not send)."""
    question = re.search(r'"question": "([^"]+)"', last_prompt(request)).group(1)
    rng = np.random.default_rng(request["seed"])
    skill = re.search(r'the skill "(\w+)"', last_prompt(request)).group(1)
    examples = [{"question": ex.question, "answer": ex.answer} for ex in TASK.similar(question, skill, 4, rng)]
    examples[-1]["answer"] = str(int(solve(examples[-1]["question"]) != "0") + 10**6)
    examples.append({"question": question, "answer": solve(question)})
    return json.dumps({"examples": examples})


@pytest.mark.slow
def test_llm2llm_writes_problems_like_each_error_and_the_referee_rejects_the_wrong_ones():
    with ScriptedLLMServer(_similar_problems) as server:
        env = gym.make("envgym/SkillList-v0", **EPISODE)
        obs, info = env.reset(seed=0)
        teacher = LLM2LLMTeacher(_llm(server), per_error=4)
        plan = teacher.act(obs, info)
        _, _, _, _, after = env.step(plan)
    errors_used = teacher.last_decision["errors_used"]
    assert errors_used == 12 == len(server.requests)  # ceil(48 / 4) wrong answers, one request each
    asked = {error["question"] for error in info["errors"][:errors_used]}
    assert not asked & {example["question"] for example in plan}  # never the wrong question itself
    assert len(plan) <= 48 and after["budget_spent"] == len(plan)
    assert after["rejections"].get("wrong_answer", 0) >= 1  # the scripted wrong answers were caught
    assert after["examples_used"] == len(plan) - after["rejected"] - after["dropped_heldout"]


# -- the LLM data engine ---------------------------------------------------------------------------------------
def _example_writer(heldout: dict[str, Example]):
    """A scripted data engine LLM: correct problems of the asked skill, plus one wrong and one copy of a
    validation question (``heldout[skill]``)."""

    def reply(request: dict) -> str:
        prompt = last_prompt(request)
        skill = re.search(r'skill "(\w+)"', prompt).group(1)
        n = int(re.search(r"Write (\d+) new", prompt).group(1))
        rng = np.random.default_rng(request["seed"])
        examples = [{"question": ex.question, "answer": ex.answer} for ex in TASK.generate(skill, n, rng)]
        examples[0]["answer"] += "1"
        examples.append({"question": heldout[skill].question, "answer": heldout[skill].answer})
        return json.dumps({"examples": examples})

    return reply


def _val_examples(env) -> dict[str, Example]:
    return {ex.skill: ex for ex in env.unwrapped.splits.all_questions("val")}


def test_llm_data_engine_trains_only_on_verified_examples_and_charges_the_plan():
    heldout: dict[str, Example] = {}
    with ScriptedLLMServer(_example_writer(heldout)) as server:
        env = gym.make("envgym/SkillList-v0", **EPISODE, data_engine="llm", data_engine_llm=_llm(server))
        env.reset(seed=0)
        heldout.update(_val_examples(env))
        _, _, _, _, info = env.step({"add_carry": 16, "sub_borrow": 8})
    engine = info["data_engine"]
    assert engine["engine"] == "llm" and engine["failed"]["wrong_answer"] >= 2
    assert engine["llm_usage"]["requests"] == len(server.requests) >= 2
    trained = env.unwrapped.last_training_data
    assert {ex.skill for ex in trained} == {"add_carry", "sub_borrow"}
    assert all(TASK.verify(ex).ok for ex in trained)
    held = {ex.question for ex in env.unwrapped.splits.all_questions("val")}
    assert not held & {ex.question for ex in trained} and info["dropped_heldout"] >= 1
    assert info["budget_spent"] == 24 and len(trained) <= 24


class UnverifiableArithmetic(ArithmeticTask):
    """Arithmetic without an independent verifier, as a word-problem task is: only self-consistency can check."""

    def verify(self, example: Example) -> Verification:
        return Verification(Verdict.UNVERIFIABLE, "no verifier")


@pytest.mark.parametrize(("right_solves", "kept"), [(3, True), (2, True), (1, False)])
def test_self_consistency_keeps_an_unverifiable_example_only_if_two_of_three_solves_agree(right_solves, kept):
    solves = iter(range(3))

    def reply(request):
        if "Write" in last_prompt(request):
            return json.dumps({"examples": [{"question": "47+38=", "answer": "85"}]})
        return json.dumps({"answer": "85" if next(solves) < right_solves else "84"})

    task = UnverifiableArithmetic()
    with ScriptedLLMServer(reply) as server:
        engine = LLMDataEngine(task, LLMClient(_llm(server)), max_requests_per_skill=1)
        examples, stats = engine.for_counts({"add_carry": 1}, np.random.default_rng(0))
    assert len(server.requests) == 4  # one generation, three independent solves
    assert [ex.question for ex in examples] == (["47+38="] if kept else [])
    if kept:
        assert examples[0].metadata == {VERIFIED_BY: SELF_CONSISTENCY, "agreeing_solves": f"{right_solves}/3"}
    else:
        assert stats["data_engine"]["failed"] == {"no_consensus": 1}


def test_a_teacher_cannot_forge_the_engines_self_consistency_mark():
    env = gym.make("envgym/SkillList-v0", **EPISODE, task=UnverifiableArithmetic())
    env.reset(seed=0)
    forged = Example("47+38=", "85", "add_carry", {VERIFIED_BY: SELF_CONSISTENCY})
    _, _, _, _, info = env.step(envgym.ExamplesPlan([forged]))
    assert info["rejections"] == {"unverifiable": 1} and info["examples_used"] == 0


# -- the runner: accounting, cache, a server that goes away -----------------------------------------------------
@pytest.mark.slow
def test_an_llm_run_logs_usage_and_resumes_after_the_server_dies_without_paying_twice(tmp_path):
    reply = json.dumps({"weights": [{"skill": "sub_borrow", "weight": 1}]})
    alive = {"steps": 1}

    def scripted(request):
        if alive["steps"] <= 0:
            return 503, "server going down"
        alive["steps"] -= 1
        return reply

    out = tmp_path / "run"
    with ScriptedLLMServer(scripted) as server:
        env = gym.make("envgym/SkillList-v0", **EPISODE)
        with pytest.raises(LLMUnavailable, match=r"could not plan step 2.*503.*envgym run --resume"):
            envgym.run_episode(env, LLMTeacher(_llm(server)), out, seed=0, teacher_name="llm", progress=False)
    rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["teacher_llm"]["requests"] == 1 and rows[0]["teacher_decision"]["valid"]

    with ScriptedLLMServer(lambda request: reply) as server:
        env = gym.make("envgym/SkillList-v0", **EPISODE)
        report = envgym.run_episode(
            env, LLMTeacher(_llm(server)), out, seed=0, teacher_name="llm", resume=True, progress=False
        )
    assert len(server.requests) == 1  # only step 2's plan; step 1's is never asked again
    assert report["teacher_llm"]["requests"] == 2 and report["teacher_llm"]["invalid_replies"] == 0
    assert report["teacher_llm"]["prompt_tokens"] == 20
    assert (out / "llm_cache").is_dir()


# -- the command line ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_envgym_run_with_the_llm_teacher_end_to_end_and_resume_at_another_url(tmp_path, capsys):
    from envgym.cli import main

    reply = json.dumps({"weights": [{"skill": "add_carry", "weight": 2}, {"skill": "sum3", "weight": 1}]})
    out = tmp_path / "llm-run"
    flags = ["--steps", "2", "--budget", "48", "--n-val", "40", "--n-test", "40", "--out", str(out)]
    with ScriptedLLMServer(lambda request: reply) as server:
        assert (
            main(["run", "--teacher", "llm", "--teacher-base-url", server.base_url, "--teacher-model", "m", *flags])
            == 0
        )
    config = json.loads((out / "config.json").read_text())
    assert config["teacher_llm"]["base_url"] == server.base_url and config["teacher_llm"]["model"] == "m"
    report = json.loads((out / "report.json").read_text())
    assert report["teacher_llm"]["requests"] == 2 and report["teacher_llm"]["invalid_replies"] == 0
    rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [row["plan"]["counts"]["add_carry"] for row in rows] == [32, 32]

    # A finished run resumed at a dead URL needs no server: nothing is left to ask.
    assert main(["run", "--resume", str(out), "--teacher-base-url", "http://127.0.0.1:9/v1"]) == 0


def test_teacher_llm_flags_are_refused_for_a_teacher_without_an_llm(tmp_path, capsys):
    from envgym.cli import main

    code = main(["run", "--teacher", "uniform", "--teacher-model", "m", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--teacher-model configure an LLM teacher" in capsys.readouterr().out
    assert not (tmp_path / "x").exists()


def test_a_dead_teacher_server_is_one_line_in_the_cli_and_the_run_resumes(tmp_path, capsys):
    from envgym.cli import main

    out = tmp_path / "dead"
    flags = ["--steps", "1", "--budget", "16", "--n-val", "20", "--n-test", "20", "--out", str(out)]
    code = main(
        ["run", "--teacher", "llm", "--teacher-base-url", "http://127.0.0.1:9/v1", "--teacher-max-retries", "0", *flags]
    )
    printed = capsys.readouterr().out
    assert code == 2 and "Cannot reach an LLM server at http://127.0.0.1:9/v1" in printed
    assert "Traceback" not in printed and "envgym run --resume" in printed
    assert (out / "checkpoint").is_dir()  # the episode's start is kept


@pytest.mark.slow
def test_envgym_run_with_the_llm_data_engine(tmp_path):
    from envgym.cli import main

    out = tmp_path / "engine-run"
    # The split (split_seed) does not depend on the episode, so this env's validation questions are the run's.
    heldout = _val_examples(gym.make("envgym/SkillList-v0", n_val=20, n_test=20))
    with ScriptedLLMServer(_example_writer(heldout)) as server:
        endpoint = json.dumps(_llm(server))
        flags = ["--steps", "1", "--budget", "16", "--n-val", "20", "--n-test", "20", "--out", str(out)]
        assert main(["run", "--teacher", "uniform", "--data-engine", "llm", "--data-engine-llm", endpoint, *flags]) == 0
    row = json.loads((out / "steps.jsonl").read_text())
    assert row["data_engine"]["engine"] == "llm" and row["examples_used"] > 0
    assert row["examples_used"] == row["data_engine"]["kept"] - row["rejected"] - row["dropped_heldout"]
    assert row["dropped_heldout"] >= 1
    report = json.loads((out / "report.json").read_text())
    assert report["data_engine_llm"]["requests"] == len(server.requests)
    assert json.loads((out / "config.json").read_text())["env_kwargs"]["data_engine"] == "llm"


def test_llm_data_engine_fulfils_an_open_ended_request_with_skills_it_files():
    def reply(request):
        rng = np.random.default_rng(request["seed"])
        examples = [
            {"skill": ex.skill, "question": ex.question, "answer": ex.answer} for ex in TASK.generate("sum3", 3, rng)
        ]
        examples.append({"skill": "compare", "question": examples[0]["question"], "answer": examples[0]["answer"]})
        return json.dumps({"examples": examples})

    with ScriptedLLMServer(reply) as server:
        env = gym.make("envgym/OpenEnded-v0", **EPISODE, data_engine="llm", data_engine_llm=_llm(server))
        env.reset(seed=0)
        _, _, _, _, info = env.step({"request": "sums of three numbers", "n": 6})
    assert "sums of three numbers" in last_prompt(server.requests[0])
    assert info["data_engine"]["failed"].get("wrong_skill", 0) >= 1  # filed under the wrong skill: rejected
    assert {ex.skill for ex in env.unwrapped.last_training_data} == {"sum3"} and info["budget_spent"] == 6


def test_skill_tree_refuses_the_llm_data_engine_with_a_reason():
    with pytest.raises(envgym.error.InvalidConfig, match="difficulty band"):
        gym.make("envgym/SkillTree-v0", data_engine="llm", data_engine_llm={"base_url": "http://127.0.0.1:9/v1"})


@pytest.mark.slow
def test_llm_teachers_join_envgym_bench_with_the_teacher_flags(tmp_path, capsys):
    from envgym.cli import main

    reply = json.dumps({"weights": [{"skill": "sub_borrow", "weight": 1}]})
    out = tmp_path / "bench"
    with ScriptedLLMServer(lambda request: reply) as server:
        args = ["bench", "--teachers", "uniform,llm", "--seeds", "0", "--steps", "1", "--budget", "16", "--jobs", "2"]
        assert main([*args, "--teacher-base-url", server.base_url, "--teacher-model", "m", "--out", str(out)]) == 0
    report = json.loads((out / "llm" / "seed0" / "report.json").read_text())
    assert report["teacher_llm"]["requests"] == 1 and len(server.requests) == 1
    assert "teacher_llm" not in json.loads((out / "uniform" / "seed0" / "report.json").read_text())
    assert (out / "llm" / "seed0" / "llm_cache").is_dir()  # each episode caches in its own run directory
