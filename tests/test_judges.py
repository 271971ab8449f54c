"""SPaR's judges and refiners: the LLM ones against a scripted OpenAI-compatible server (real HTTP), the
programmatic ones against a tiny scripted task (and the real instruction-following task where it exists)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pytest
from scripted_llm_server import ScriptedLLMServer, last_prompt

from agents.tree_search import TreeSearchConfig, search
from skills.errors import InvalidConfig
from skills.judges import (
    TIE_UNRESOLVED,
    CheckingTask,
    CheckResult,
    Judge,
    Judgement,
    LLMJudge,
    LLMRefiner,
    ProgrammaticJudge,
    ProgrammaticRefiner,
    Refiner,
    extract_refined,
    parse_final_judgement,
)
from skills.llm import LLMClient

INSTRUCTION = "Write one lowercase sentence about cats that ends with a full stop."
RESPONSE = "Cats Purr"


def _client(server: ScriptedLLMServer, **kwargs) -> LLMClient:
    # One request at a time, so that a script indexed by request number is deterministic.
    return LLMClient(base_url=server.base_url, model="scripted", max_retries=0, concurrency=1, **kwargs)


def _scripted(replies: list[str]):
    """A reply function answering the i-th request with ``replies[i]``."""
    state = {"next": 0}

    def reply(request):
        index = state["next"]
        state["next"] += 1
        return replies[index]

    return reply


# -- LLM judge -------------------------------------------------------------------------------------------------
def test_the_llm_judge_takes_the_majority_and_a_majority_replys_analysis():
    replies = [
        "It is not lowercase.\nFinal Judgement: No",
        "Every constraint holds.\nFinal Judgement: Yes",
        "**Final Judgement:** yes",
        "Missing the full stop. Final judgment: **NO**",
        "Fine.\nFinal Judgement: Yes",
    ]
    with ScriptedLLMServer(_scripted(replies)) as server:
        judge = LLMJudge(_client(server), n=5, temperature=0.7)
        judgement = judge.judge(INSTRUCTION, RESPONSE)
    assert isinstance(judge, Judge)
    assert judgement.value == pytest.approx(0.6)
    assert judgement.votes == {"yes": 3, "no": 2, "unparseable": 0}
    assert judgement.critique == "Every constraint holds."  # the first reply agreeing with the majority
    assert judgement.score == judgement.value and judgement.note == ""
    assert len(server.requests) == 5
    assert {request["temperature"] for request in server.requests} == {0.7}
    seeds = [request["seed"] for request in server.requests]
    assert len(set(seeds)) == 5 and all(0 <= seed < 2**31 for seed in seeds)
    prompt = last_prompt(server.requests[0])
    assert INSTRUCTION in prompt and RESPONSE in prompt and "Final Judgement: Yes" in prompt

    # The seeds derive from the prompt and the response: the same question asks the same seeds, another response
    # others.
    with ScriptedLLMServer(_scripted(replies * 2)) as again:
        judge = LLMJudge(_client(again), n=5)
        judge.judge(INSTRUCTION, RESPONSE)
        judge.judge(INSTRUCTION, RESPONSE + ".")
    assert [request["seed"] for request in again.requests[:5]] == seeds
    assert not set(request["seed"] for request in again.requests[5:]) & set(seeds)


def test_the_llm_judges_critique_for_a_no_majority_is_a_no_analysis():
    replies = ["Not lowercase.\nFinal Judgement: No", "Final Judgement: Yes", "No stop.\nFinal Judgement: No"]
    with ScriptedLLMServer(_scripted(replies)) as server:
        judgement = LLMJudge(_client(server), n=3).judge(INSTRUCTION, RESPONSE)
    assert judgement.value == pytest.approx(1 / 3)
    assert judgement.critique == "Not lowercase."


def test_a_tie_is_resampled_with_another_round_and_votes_accumulate():
    yes, no = "Good.\nFinal Judgement: Yes", "Bad.\nFinal Judgement: No"
    replies = [yes, no, no, yes, yes, yes, no, yes]  # round 1: 2-2, round 2: 3-1
    with ScriptedLLMServer(_scripted(replies)) as server:
        judgement = LLMJudge(_client(server), n=4, max_rounds=3).judge(INSTRUCTION, RESPONSE)
    assert len(server.requests) == 8  # two rounds, not three
    assert judgement.votes == {"yes": 5, "no": 3, "unparseable": 0}
    assert judgement.value == pytest.approx(5 / 8) and judgement.note == ""
    assert judgement.critique == "Good."
    assert len({request["seed"] for request in server.requests}) == 8  # the second round samples anew


def test_unparseable_replies_are_dropped_and_counted():
    replies = [
        "Final Judgement: Yes",
        "I cannot tell.",
        "Final Judgement: Yes",
        "Final Judgement: Maybe",
        "No.\nFinal Judgement: No",
    ]
    with ScriptedLLMServer(_scripted(replies)) as server:
        judgement = LLMJudge(_client(server), n=5).judge(INSTRUCTION, RESPONSE)
    assert judgement.votes == {"yes": 2, "no": 1, "unparseable": 2}
    assert judgement.value == pytest.approx(2 / 3)
    assert len(server.requests) == 5


def test_no_parseable_reply_at_all_is_a_tie_resampled_then_zero_with_a_note():
    with ScriptedLLMServer(lambda request: "I am not sure.") as server:
        judgement = LLMJudge(_client(server), n=3, max_rounds=2).judge(INSTRUCTION, RESPONSE)
    assert len(server.requests) == 6  # 0/0 is a tie: a second round
    assert judgement.votes == {"yes": 0, "no": 0, "unparseable": 6}
    assert (judgement.value, judgement.critique, judgement.note) == (0.0, "", TIE_UNRESOLVED)


def test_a_tie_left_after_every_round_is_a_half_with_a_no_critique():
    replies = ["Fine.\nFinal Judgement: Yes", "Too long.\nFinal Judgement: No"] * 2
    with ScriptedLLMServer(_scripted(replies)) as server:
        judgement = LLMJudge(_client(server), n=2, max_rounds=2).judge(INSTRUCTION, RESPONSE)
    assert len(server.requests) == 4
    assert (judgement.value, judgement.note, judgement.critique) == (0.5, TIE_UNRESOLVED, "Too long.")
    # A half is not above SPaR's default end_gate of 0.5: a tied response is refined, not accepted.
    assert not judgement.value > TreeSearchConfig().end_gate


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("All good.\nFinal Judgement: Yes", ("yes", "All good.")),
        ("All good.\n**Final Judgement: YES**", ("yes", "All good.")),
        ("All good.\n**Final Judgement:** No.", ("no", "All good.")),
        ("All good.\nfinal judgment :  **no**", ("no", "All good.")),
        ("Final Judgement: Yes at first, but\nFinal Judgement: No", ("no", "Final Judgement: Yes at first, but")),
        ("Final Judgement: Yesterday", None),
        ("Final Judgement: Maybe", None),
        ("", None),
    ],
)
def test_the_final_judgement_is_the_last_one(reply, expected):
    assert parse_final_judgement(reply) == expected


def test_llm_judge_arguments_are_checked():
    client = LLMClient(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InvalidConfig, match="n to be an integer >= 1"):
        LLMJudge(client, n=0)
    with pytest.raises(InvalidConfig, match="max_rounds"):
        LLMJudge(client, max_rounds=0)
    with pytest.raises(InvalidConfig, match="temperature"):
        LLMJudge(client, temperature=-1)
    with pytest.raises(InvalidConfig, match="max_retries"):
        LLMRefiner(client, max_retries=-1)


# -- LLM refiner -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("<refined>cats purr.</refined>", "cats purr."),
        ("Use <refined>x</refined>? Better:\n<refined>\ncats purr softly.\n</refined>\nDone.", "cats purr softly."),
        ("<refined>a</refined> and <refined>b", "a"),  # the last *pair*
        ("no markers here", None),
        ("</refined> backwards <refined>", None),
        ("<refined>  </refined>", None),  # empty
    ],
)
def test_the_refined_text_is_between_the_last_pair_of_markers(reply, expected):
    assert extract_refined(reply) == expected


def test_the_llm_refiner_extracts_candidates_and_reads_the_critique():
    replies = [
        "I will lowercase it. <refined>draft</refined> No wait: <refined>cats purr.</refined>",
        "<refined>cats purr softly.</refined>",
    ]
    with ScriptedLLMServer(_scripted(replies)) as server:
        refiner = LLMRefiner(_client(server), temperature=0.9)
        out = refiner.refine(INSTRUCTION, RESPONSE, "Not lowercase; no full stop.", 2, seed=11)
    assert isinstance(refiner, Refiner)
    assert out == ["cats purr.", "cats purr softly."]
    assert (refiner.format_failures, refiner.bad_replies) == (0, 0)
    prompt = last_prompt(server.requests[0])
    assert INSTRUCTION in prompt and RESPONSE in prompt and "Not lowercase; no full stop." in prompt
    assert {request["temperature"] for request in server.requests} == {0.9}
    assert len({request["seed"] for request in server.requests}) == 2


def test_a_reply_without_markers_is_retried_then_the_candidate_dropped():
    replies = [
        "Here is the answer: cats purr.",  # candidate 0: bad format...
        "<refined>cats purr.</refined>",  # ...then good on the first retry
        "cats purr.",  # candidate 1: bad, bad, bad -> dropped
        "<refined>unterminated",
        "Sure!",
    ]
    with ScriptedLLMServer(_scripted(replies)) as server:
        refiner = LLMRefiner(_client(server), max_retries=2)
        out = refiner.refine(INSTRUCTION, RESPONSE, "critique", 2, seed=0)
    assert out == ["cats purr."]  # fewer than n
    assert len(server.requests) == 5
    assert (refiner.format_failures, refiner.bad_replies) == (1, 4)
    assert len({request["seed"] for request in server.requests}) == 5  # each retry samples anew

    with ScriptedLLMServer(lambda request: "no markers") as server:
        refiner = LLMRefiner(_client(server), max_retries=0)
        assert refiner.refine(INSTRUCTION, RESPONSE, "critique", 3, seed=0) == []
    assert len(server.requests) == 3 and refiner.format_failures == 3


def test_the_llm_pair_drives_a_tree_search_over_http():
    def reply(request):
        prompt = last_prompt(request)
        if "<critique>" in prompt:  # the refiner
            return "<refined>cats purr.</refined>"
        if "cats purr." in prompt:  # the judge, on the refinement
            return "Lowercase, one sentence, full stop.\nFinal Judgement: Yes"
        return "Capital letters and no full stop.\nFinal Judgement: No"

    with ScriptedLLMServer(reply) as server:
        client = _client(server)
        config = TreeSearchConfig(branch=2, select_branch=1, max_depth=2)
        tree = search(INSTRUCTION, RESPONSE, LLMJudge(client, n=3), LLMRefiner(client), config, seed=0)
    assert tree.status == "solved" and tree.refined_pair() == ("cats purr.", RESPONSE)
    assert tree.judge_calls == 2 and tree.root.judgement.critique == "Capital letters and no full stop."
    assert len(server.requests) == 3 + 2 + 3  # root judged, two candidates, the first judged


# -- programmatic ----------------------------------------------------------------------------------------------
class TinyTask:
    """Three constraints, each with a minimal repair (the contract of the instruction-following task)."""

    CHECKS: ClassVar[dict[str, tuple[str, Callable[[str], bool], Callable[[str], str]]]] = {
        "lowercase": ("all letters are lowercase", lambda r: r == r.lower(), lambda r: r.lower()),
        "full_stop": ("ends with a full stop", lambda r: r.endswith("."), lambda r: r + "."),
        "keyword": ("mentions 'cats'", lambda r: "cats" in r.lower(), lambda r: "cats " + r),
    }

    def check(self, question, response):
        return [CheckResult(name, check(response), desc) for name, (desc, check, _) in self.CHECKS.items()]

    def all_passed(self, question, response):
        return all(result.passed for result in self.check(question, response))

    def critique(self, question, response):
        failed = [result.description for result in self.check(question, response) if not result.passed]
        return "Follows every instruction." if not failed else "Fix: " + "; ".join(failed) + "."

    def repair(self, question, response, name):
        return self.CHECKS[name][2](response)


def test_the_programmatic_judge_uses_the_tasks_checks():
    judge = ProgrammaticJudge(TinyTask())
    assert isinstance(judge, Judge) and isinstance(TinyTask(), CheckingTask)
    bad = judge.judge(INSTRUCTION, "Dogs Bark")
    assert (bad.value, bad.votes, bad.score) == (0.0, {"no": 1}, 0.0)
    assert bad.critique == "Fix: all letters are lowercase; ends with a full stop; mentions 'cats'."
    partial = judge.judge(INSTRUCTION, "Cats purr")
    assert (partial.value, partial.score) == (0.0, pytest.approx(1 / 3))
    good = judge.judge(INSTRUCTION, "cats purr.")
    assert (good.value, good.votes, good.score, good.critique) == (1.0, {"yes": 1}, 1.0, "Follows every instruction.")


def test_the_programmatic_refiner_repairs_one_failed_check_per_candidate():
    task, refiner = TinyTask(), ProgrammaticRefiner(TinyTask())
    assert isinstance(refiner, Refiner)
    out = refiner.refine(INSTRUCTION, "Dogs Bark", "", 3, seed=0)
    assert sorted(out) == sorted(["dogs bark", "Dogs Bark.", "cats Dogs Bark"])  # one repair each
    more = refiner.refine(INSTRUCTION, "Dogs Bark", "", 7, seed=0)
    assert more[:3] == out and more[3:6] == out and more[6] == out[0]  # cycling: duplicates allowed
    assert refiner.refine(INSTRUCTION, "Dogs Bark", "", 3, seed=0) == out  # seeded
    orders = {tuple(refiner.refine(INSTRUCTION, "Dogs Bark", "", 3, seed=seed)) for seed in range(20)}
    assert len(orders) > 1  # different seeds explore different orders
    # Only the failed checks are repaired; nothing to do for a response that passes.
    assert sorted(refiner.refine(INSTRUCTION, "Cats purr", "", 2, seed=0)) == ["Cats purr.", "cats purr"]
    assert refiner.refine(INSTRUCTION, "cats purr.", "", 2, seed=0) == []
    assert all(not task.all_passed(INSTRUCTION, text) for text in out)


def test_programmatic_plugins_refuse_a_task_without_the_contract():
    with pytest.raises(InvalidConfig, match="lacks critique"):
        ProgrammaticJudge(type("NoCritique", (), {"check": lambda self, q, r: []})())
    with pytest.raises(InvalidConfig, match="lacks check, repair"):
        ProgrammaticRefiner(object())
    with pytest.raises(InvalidConfig, match="seed"):
        ProgrammaticRefiner(TinyTask()).refine(INSTRUCTION, "x", "", 1, seed=-1)


@pytest.mark.parametrize("kind", ["bfs", "dfs"])
def test_the_programmatic_pair_refines_to_a_passing_response_on_cpu(kind):
    task = TinyTask()
    config = TreeSearchConfig(search=kind, branch=3, select_branch=2, max_depth=3)
    tree = search(INSTRUCTION, "Dogs Bark", ProgrammaticJudge(task), ProgrammaticRefiner(task), config, seed=4)
    assert tree.status == "solved" and tree.solution_node.depth == 3  # one constraint fixed per step
    refined, original = tree.refined_pair()
    assert original == "Dogs Bark" and task.all_passed(INSTRUCTION, refined)
    scores = [node.judgement.score for node in tree.path(tree.solution)]
    assert scores == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_judgements_are_checked_and_round_trip():
    judgement = Judgement(0.6, "why", {"yes": 3, "no": 2, "unparseable": 0}, score=0.6, note="")
    assert Judgement.from_dict(judgement.to_dict()) == judgement
    with pytest.raises(InvalidConfig, match="value to be a number in"):
        Judgement(1.5, "")
    with pytest.raises(InvalidConfig, match="score to be a number in"):
        Judgement(0.5, "", score=-0.1)


def _instruction_task():
    try:
        module = importlib.import_module("skills.instructions")
    except ImportError:
        pytest.skip("skills.instructions (the instruction-following task) is not there yet")
    if not hasattr(module, "InstructionTask"):
        pytest.skip("skills.instructions defines no InstructionTask yet")
    return module.InstructionTask()


def test_the_programmatic_pair_on_the_real_instruction_task():
    task = _instruction_task()
    judge, refiner = ProgrammaticJudge(task), ProgrammaticRefiner(task)
    response = "An unhelpful reply that ignores every constraint"
    for skill in [skill.name for skill in task.skills][:6]:
        question = task.generate(skill, 1, np.random.default_rng(0))[0].question
        judgement = judge.judge(question, response)
        assert judgement.value == float(task.all_passed(question, response)) == 0.0, question
        assert judgement.critique and judgement.votes == {"no": 1}
        failed = [result.name for result in task.check(question, response) if not result.passed]
        for name in failed:  # the contract: repair(name) makes check `name` pass
            repaired = task.repair(question, response, name)
            assert {result.name: result.passed for result in task.check(question, repaired)}[name], (question, name)
        assert len(refiner.refine(question, response, judgement.critique, 4, seed=0)) == 4
        config = TreeSearchConfig(max_depth=len(failed) + 1, budget=60)
        tree = search(question, response, judge, refiner, config, seed=0)
        assert tree.status == "solved", (question, tree.status)
        refined, original = tree.refined_pair()
        assert original == response and task.all_passed(question, refined)


def test_the_docstring_examples_run():
    import doctest

    import skills.judges

    result = doctest.testmod(skills.judges)
    assert result.attempted > 0 and result.failed == 0
