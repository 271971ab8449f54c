"""The code task (procedural one-line functions) and the MBPP/LiveCodeBench file task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skills import Example, Verdict, make_task, skill_names, taxonomy
from skills.code import FAMILIES, HIDDEN_TESTS, MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, CodeTask
from skills.code_files import SAMPLE_LCB, SAMPLE_MBPP, CodeFileTask
from skills.errors import InvalidConfig, UnknownName
from skills.programs import ProgramCase, ProgramJudge, extract_program
from skills.sandbox import AssertTest, CallTest, Outcome, StdioTest
from skills.splits import TaskSplits

TASK = CodeTask()
# A wrong program of each family's shape: off by one somewhere, or the wrong operation.
WRONG = {
    "add_const": "def f(x): return x+1000000",
    "affine": "def f(x): return x*2",
    "slice": "def f(s): return s[::-1]",
    "replace": "def f(s): return s.upper()",
    "reduce": "def f(a): return sum(a)*3-7",
    "filter": "def f(a): return a[::-1]",
    "conditional": "def f(x): return -1",
    "loop": "def f(x): return -x-1",
}


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(2026)
    return {skill: TASK.generate(skill, 30, rng) for skill in skill_names(TASK)}


def test_eight_families_in_a_taxonomy_with_prerequisites():
    assert skill_names(TASK) == list(FAMILIES) and len(FAMILIES) == 8
    graph = taxonomy(TASK)
    assert {graph.nodes[s.category]["kind"] for s in TASK.skills} == {"category"}
    assert graph.edges["add_const", "affine"]["relation"] == "prerequisite"


def test_generation_is_seeded_and_fits_the_default_student(examples):
    again = {skill: TASK.generate(skill, 30, np.random.default_rng(2026)) for skill in ["add_const"]}
    first = TASK.generate("add_const", 30, np.random.default_rng(2026))
    assert [e.question for e in again["add_const"]] == [e.question for e in first]
    assert first != TASK.generate("add_const", 30, np.random.default_rng(2027))
    for batch in examples.values():
        for ex in batch:
            assert len(ex.question) <= MAX_QUESTION_CHARS and len(ex.answer) <= MAX_ANSWER_CHARS
            assert ex.question.isascii() and ex.question.isprintable() and ex.answer.isprintable()


@pytest.mark.parametrize("skill", list(FAMILIES))
def test_every_familys_answer_passes_its_hidden_tests_and_a_wrong_one_fails(skill, examples):
    batch = examples[skill]
    # Run, not recognised: a reformatted copy of the reference (same behaviour, other syntax tree) goes to the sandbox.
    spaced = [ex.answer.replace("return ", "return (lambda: ") + ")()" for ex in batch[:10]]
    runs_before = TASK.judge.runs
    assert TASK.score_many(batch[:10], spaced) == [1.0] * 10
    assert TASK.judge.runs > runs_before
    scores = TASK.score_many(batch, [WRONG[skill]] * len(batch))
    assert max(scores) < 1.0 and np.mean(scores) < 0.5
    assert {v.verdict for v in TASK.verify_many(batch)} == {Verdict.CORRECT}
    wrong = TASK.verify(Example(batch[0].question, WRONG[skill], skill))
    assert wrong.verdict is Verdict.WRONG_ANSWER and "hidden tests" in wrong.detail


def test_hidden_tests_are_fixed_per_spec_and_differ_between_specs():
    spec, _, _ = TASK.parse("f(3)=15. Return x plus 12.")
    same, _, _ = TASK.parse("f(100)=112. Return x plus 12.")
    other, _, _ = TASK.parse("f(3)=16. Return x plus 13.")
    assert TASK.hidden_tests(spec) == TASK.hidden_tests(same) and len(TASK.hidden_tests(spec)) == HIDDEN_TESTS
    assert TASK.hidden_tests(spec) != TASK.hidden_tests(other)
    assert all(test.expected == int(test.expr[2:-1]) + 12 for test in TASK.hidden_tests(spec))


def test_the_heldout_key_is_the_spec_so_another_example_call_is_the_same_question():
    assert TASK.heldout_key("f(3)=15. Return x plus 12.") == TASK.heldout_key("f(-7)=5. Return x plus 12.")
    assert TASK.heldout_key("f(3)=15. Return x plus 12.") != TASK.heldout_key("f(3)=-9. Return x minus 12.")


def test_default_splits_share_no_key_with_training_data():
    splits = TaskSplits.build(TASK, n_val=200, n_test=400, split_seed=1234)
    held = {TASK.heldout_key(ex.question) for split in ("val", "test") for ex in splits.all_questions(split)}
    assert len(held) == 8 * 600
    from skills.splits import TrainingPool

    pool = TrainingPool(splits).sample_plan({skill: 300 for skill in FAMILIES}, np.random.default_rng(0))
    assert not held & {TASK.heldout_key(ex.question) for ex in pool}


@pytest.mark.parametrize(
    ("question", "answer", "skill", "verdict"),
    [
        ("f(3)=16. Return x plus 12.", "def f(x): return x+12", "add_const", Verdict.MALFORMED),  # example lies
        ("f(3)=15. Return x plus 12.", "def f(x): return x+12", "affine", Verdict.WRONG_SKILL),
        ("Return x plus 12.", "def f(x): return x+12", "add_const", Verdict.MALFORMED),  # no example call
        ("f(3)=9. Return x squared.", "def f(x): return x*x", "add_const", Verdict.MALFORMED),  # no such spec
        ("f(3)=15. Return x plus 12.", "def f(x):\n return x+12", "add_const", Verdict.MALFORMED),  # not one line
        ("f(3)=15. Return x plus 12.", "x+12", "add_const", Verdict.WRONG_ANSWER),  # not a function
        ("f(3)=15. Return x plus 12.", "def f(x): return x+12", "add_const", Verdict.CORRECT),
    ],
)
def test_a_teachers_example_is_verified_from_the_question_alone(question, answer, skill, verdict):
    assert TASK.verify(Example(question, answer, skill)).verdict is verdict


def test_replies_that_are_not_programs_fail_without_starting_a_process():
    ex = TASK.generate("loop", 1, np.random.default_rng(0))[0]
    runs = TASK.judge.runs
    assert TASK.score_many([ex] * 3, ["42", "def f(x) return", ""]) == [0.0, 0.0, 0.0]
    assert TASK.score(ex, "def g(x): return 1") == 0.0
    assert TASK.judge.runs == runs
    assert TASK.diagnose(ex.question, "42", "loop").error == "crash"


def test_a_reply_in_a_fenced_block_is_read_as_its_program():
    ex = TASK.generate("affine", 1, np.random.default_rng(0))[0]
    assert TASK.score(ex, f"Here it is:\n```python\n{ex.answer}\n```\nDone.") == 1.0
    assert extract_program("no fence") == "no fence"


def test_unknown_skills_are_refused_with_a_suggestion():
    with pytest.raises(UnknownName, match="add_const"):
        CodeTask(["add_cnst"])
    assert skill_names(make_task("code", skills="loop,slice")) == ["loop", "slice"]


# -- files --------------------------------------------------------------------------------------------------------
def test_the_mbpp_sample_solutions_pass_their_tests_when_run():
    task = CodeFileTask(SAMPLE_MBPP)
    judge = ProgramJudge(task.judge.sandbox)
    cases = [ProgramCase(p.setup + p.solution, p.tests, None, p.entry) for p in task._problems]  # no shortcut
    results = judge.judge(cases)
    assert [r.outcome for r in results] == [Outcome.PASS] * len(task) and judge.runs == len(task)
    assert all(isinstance(t, CallTest) for p in task._problems for t in p.tests)
    assert skill_names(task) == ["lists", "math", "strings"]


def test_mbpp_asserts_that_are_not_call_equals_literal_run_as_assert_tests(tmp_path):
    row = {"text": "Write f.", "code": "def f(x):\n    return x / 3", "test_list": ["assert abs(f(3) - 1) < 1e-9"]}
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(row) + "\n")
    task = CodeFileTask(path)
    assert isinstance(task._problems[0].tests[0], AssertTest)
    ex = task.generate("python_function", 1, np.random.default_rng(0))[0]
    assert task.score(ex, "def f(x):\n    return x / 3.0") == 1.0
    assert task.score(ex, "def f(x):\n    return x") == 0.0


def test_livecodebench_stdin_and_functional_problems():
    task = CodeFileTask(SAMPLE_LCB)
    assert skill_names(task) == ["easy", "medium"]
    by_title = {p.prompt.split()[0]: p for p in task._problems}
    add = next(p for p in task._problems if "sum" in p.prompt and isinstance(p.tests[0], StdioTest))
    two_sum = next(p for p in task._problems if p.entry == "Solution" and "twoSum" in p.question)
    assert by_title and add.question.startswith("Read two integers")
    good = "a, b = map(int, input().split())\nprint(a + b)"
    assert task.verify(Example(add.question, good, add.skill)).verdict is Verdict.CORRECT
    assert task.score(Example(add.question, "", add.skill), "print(3)") == pytest.approx(1 / 3)
    solution = (
        "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
        "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
        "                return [seen[target - x], i]\n            seen[x] = i\n"
    )
    assert task.verify(Example(two_sum.question, solution, two_sum.skill)).verdict is Verdict.CORRECT
    assert task.verify(Example("A new problem.", solution, "easy")).verdict is Verdict.UNVERIFIABLE
    assert task.verify(Example(two_sum.question, solution, "easy")).verdict is Verdict.WRONG_SKILL


def test_compressed_private_tests_and_unknown_rows_are_refused_with_what_to_do(tmp_path):
    row = {"question_content": "x", "public_test_cases": "[]", "private_test_cases": "eJzLSM3JyQcABiwCFQ=="}
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(InvalidConfig, match="unpickling"):
        CodeFileTask(path)
    path.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(InvalidConfig, match="MBPP line"):
        CodeFileTask(path)
    with pytest.raises(InvalidConfig, match="does not exist"):
        make_task(f"code:{tmp_path / 'missing.jsonl'}")


def test_the_file_tasks_heldout_key_ignores_the_shown_test():
    task = CodeFileTask(SAMPLE_MBPP)
    problem = task._problems[0]
    assert task.heldout_key(problem.question) == task.heldout_key(problem.prompt)
    assert task.problem(problem.prompt) is problem


def test_the_readmes_code_table_holds_verified_examples():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| \w+ \| `(.+?)` → `(.+?)` \|$", readme, flags=re.MULTILINE)
    assert [skill for skill, _, _ in rows] == list(FAMILIES)
    for skill, question, answer in rows:
        assert TASK.verify(Example(question, answer, skill)).verdict is Verdict.CORRECT, question


def test_a_code_task_copies_and_pickles_with_its_environment():
    import copy
    import pickle

    ex = TASK.generate("loop", 1, np.random.default_rng(0))[0]
    for clone in (copy.deepcopy(TASK), pickle.loads(pickle.dumps(TASK))):
        assert clone.score(ex, ex.answer.replace("return ", "return (lambda: ") + ")()") == 1.0
        assert clone.judge.sandbox.config == TASK.judge.sandbox.config


@pytest.mark.parametrize("module", ["skills.code", "skills.code_files", "skills.sandbox"])
def test_the_docstring_examples_run(module):
    import doctest
    import importlib

    outcome = doctest.testmod(importlib.import_module(module))
    assert outcome.attempted > 0 and outcome.failed == 0
