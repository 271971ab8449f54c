"""Programming problems from local JSONL files in MBPP's or LiveCodeBench's format, for students that can code.

``make_task("code:PATH")`` loads ``PATH`` (no hub access here). Each line is one of

* MBPP (original or sanitized): ``{"text" or "prompt": ..., "code": <reference solution>, "test_list": [asserts],
  "test_setup_code" or "test_imports": ..., "challenge_test_list": [...]}``;
* LiveCodeBench (``code_generation_lite``): ``{"question_content": ..., "starter_code": ..., "public_test_cases":
  [{"input", "output", "testtype": "stdin" | "functional"}], "private_test_cases": [...], "metadata":
  {"func_name": ...}, "difficulty": ...}`` (the test lists and metadata as JSON or as JSON text). The hub's
  compressed private tests (base64 of a zlib'd pickle) are refused: unpickling would run code in this process.
  Decode them once into plain JSON in a sandbox of your own, or keep the public tests only.

The question is the problem's text followed by its first test (MBPP) or its starter code (LiveCodeBench): what a
student is shown. A program is scored by the share of *all* the problem's tests it passes in the sandbox. MBPP's
``assert call == literal`` tests become :class:`~skills.sandbox.CallTest` (compared here, outside the sandbox);
other asserts are run as :class:`~skills.sandbox.AssertTest`. Skills come from a row's ``skill`` field, else
LiveCodeBench's ``difficulty``, else ``skill_map`` (question -> skill, e.g. skill discovery's output), else one
skill, ``python_function``.

Example:
    >>> from skills.registry import make_task
    >>> task = make_task("code:" + str(SAMPLE_MBPP))
    >>> problem = task.generate("strings", 1, __import__("numpy").random.default_rng(0))[0]
    >>> task.score(problem, problem.answer)
    1.0
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skills.errors import InvalidConfig, unknown_name_error
from skills.math_word import load_skill_map
from skills.programs import ProgramCase, ProgramJudge, ProgramTask, extract_program, run_verdict, syntax_tree
from skills.sandbox import AssertTest, CallTest, Execution, Outcome, Sandbox, SandboxConfig, StdioTest, Test
from skills.storage import read_problem_rows
from skills.task import Diagnosis, Example, Skill, Verdict, Verification, normalize_question, slug

DATA = Path(__file__).parent / "data"
SAMPLE_MBPP = DATA / "mbpp_sample.jsonl"
SAMPLE_LCB = DATA / "livecodebench_sample.jsonl"
DEFAULT_SKILL = "python_function"
TESTS_HEADER = "\nYour code should pass this test:\n"


@dataclass(frozen=True)
class Problem:
    question: str
    prompt: str
    tests: tuple[Test, ...]
    solution: str
    setup: str
    entry: str | None
    skill: str
    visible: int  # the first ``visible`` tests are the ones a student is shown (MBPP: the one in the question)


class CodeFileTask(ProgramTask):
    """Problems from an MBPP- or LiveCodeBench-format JSONL file (see the module docstring).

    Args:
        path: the JSONL file.
        skill_map: a dict or a JSON file mapping question text to a skill name.
        sandbox: a :class:`Sandbox`, or :class:`SandboxConfig` fields as a dict.
        name: the task's name (default ``code:<file name>``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        skill_map: str | Path | Mapping[str, str] | None = None,
        sandbox: Sandbox | SandboxConfig | dict | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or f"code:{self.path.name}"
        mapping = load_skill_map(skill_map)
        self._problems = _load(self.path, mapping)
        self._by_key = {normalize_question(p.prompt): p for p in self._problems}
        self._by_skill: dict[str, list[Problem]] = {}
        for problem in self._problems:
            self._by_skill.setdefault(problem.skill, []).append(problem)
        self._skills = [
            Skill(skill, f"programs: {skill.replace('_', ' ')}", "code") for skill in sorted(self._by_skill)
        ]
        self.judge = ProgramJudge(sandbox)

    @property
    def skills(self) -> Sequence[Skill]:
        return self._skills

    def __len__(self) -> int:
        return len(self._problems)

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        """``n`` problems of ``skill`` drawn with ``rng`` (with replacement: the file is finite); the answer is
        the file's reference solution (empty where the file has none, as LiveCodeBench's)."""
        if skill not in self._by_skill:
            raise unknown_name_error("skill", skill, self._by_skill)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidConfig(f"Expects a non-negative number of examples; actual {n!r}.")
        pool = self._by_skill[skill]
        return [Example(pool[i].question, pool[i].solution, skill) for i in rng.integers(0, len(pool), size=int(n))]

    def problem(self, question: str) -> Problem | None:
        """The file's problem whose text this question asks (its shown test or starter code ignored)."""
        return self._by_key.get(self.heldout_key(question))

    def _case(self, problem: Problem, answer: Any, visible: bool = False) -> ProgramCase:
        """``answer`` (after the problem's setup code) against all the problem's tests, or its visible ones."""
        program = extract_program(answer) if isinstance(answer, str) else ""
        reference = syntax_tree(problem.setup + problem.solution) if problem.solution else None
        tests = problem.tests[: problem.visible] if visible else problem.tests
        return ProgramCase(problem.setup + program, tests, reference, problem.entry)

    def run_answers(
        self, questions: Sequence[str], answers: Sequence[Any], *, visible: bool = False
    ) -> list[Execution | None]:
        """Each answer run against its problem's tests (``visible``: the shown ones), in parallel; None for a
        question that is not in the file."""
        problems = [self.problem(question) for question in questions]
        cases = [
            None if problem is None else self._case(problem, answer, visible)
            for problem, answer in zip(problems, answers, strict=True)
        ]
        return self.judge.judge_some(cases)

    def verify_many(self, examples: Sequence[Example]) -> list[Verification]:
        """CORRECT when the program passes all the file's tests of its problem, WRONG_ANSWER otherwise (the outcome
        and first error say why), WRONG_SKILL for a problem filed under another skill (not run), UNVERIFIABLE for
        a question that is not in the file (a new problem comes without tests)."""
        for example in examples:
            if example.skill not in self._by_skill:
                raise unknown_name_error("skill", example.skill, self._by_skill)
        problems = [self.problem(example.question) for example in examples]
        runnable = [
            None if problem is None or problem.skill != example.skill else self._case(problem, example.answer)
            for problem, example in zip(problems, examples, strict=True)
        ]
        verdicts = []
        for problem, run in zip(problems, self.judge.judge_some(runnable), strict=True):
            if problem is None:
                verdicts.append(Verification(Verdict.UNVERIFIABLE, "a problem not in the file: no tests to run"))
            elif run is None:
                verdicts.append(Verification(Verdict.WRONG_SKILL, f"the file files it under {problem.skill!r}"))
            else:
                verdicts.append(run_verdict(run, "tests"))
        return verdicts

    def heldout_key(self, question: str) -> str:
        """The problem's text, normalized (:func:`skills.task.normalize_question`), without its shown test."""
        return normalize_question(question.split(TESTS_HEADER, 1)[0])

    def diagnose(self, question: str, answer: str, skill: str) -> Diagnosis:
        """The run's outcome as the error, the question's skill as the missing one."""
        run = self.run_answers([question], [answer])[0]
        if run is None:
            return Diagnosis("unknown_problem", (skill,))
        return Diagnosis("correct") if run.outcome is Outcome.PASS else Diagnosis(run.outcome.value, (skill,))


# -- loading -----------------------------------------------------------------------------------------------------
def _json_field(row: dict[str, Any], name: str, where: str, default: Any) -> Any:
    value = row.get(name, default)
    if isinstance(value, str) and name != "starter_code":
        try:
            return json.loads(value) if value.strip() else default
        except ValueError:
            raise InvalidConfig(
                f"Expects {name} of {where} as JSON (LiveCodeBench's compressed private tests are not read: "
                "unpickling them would run code here; decode them to plain JSON first, or drop the field)."
            ) from None
    return value


def _call_test(assertion: str) -> CallTest | None:
    """``assert call == literal`` (either side) as a CallTest; None for any other assert."""
    try:
        node = ast.parse(assertion.strip()).body
    except SyntaxError:
        return None
    if len(node) != 1 or not isinstance(node[0], ast.Assert):
        return None
    test = node[0].test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return None
    for call, literal in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
        try:
            expected = ast.literal_eval(literal)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(call, ast.Call):
            return CallTest(ast.unparse(call), expected)
    return None


def _mbpp(row: dict[str, Any], where: str, skill: str) -> Problem:
    prompt = str(row.get("prompt") or row.get("text") or "").strip()
    asserts = [str(a) for a in (row.get("test_list") or []) + (row.get("challenge_test_list") or [])]
    if not prompt or not asserts:
        raise InvalidConfig(f"Expects an MBPP problem with a prompt ('text' or 'prompt') and a test_list; {where}.")
    setup = row.get("test_setup_code") or "\n".join(row.get("test_imports") or [])
    setup = f"{setup}\n" if setup and setup.strip() else ""
    calls = [_call_test(a) for a in asserts]
    tests: tuple[Test, ...] = (
        tuple(c for c in calls if c is not None) if all(calls) else tuple(AssertTest(a) for a in asserts)
    )
    entry = None
    first = calls[0]
    if first is not None and "(" in first.expr and first.expr.split("(", 1)[0].isidentifier():
        entry = first.expr.split("(", 1)[0]
    question = f"{prompt}{TESTS_HEADER}{asserts[0]}"
    return Problem(question, prompt, tests, str(row.get("code") or ""), setup, entry, skill, 1)


def _livecodebench(row: dict[str, Any], where: str, skill: str) -> Problem:
    prompt = str(row["question_content"]).strip()
    public = _json_field(row, "public_test_cases", where, [])
    cases = public + _json_field(row, "private_test_cases", where, [])
    metadata = _json_field(row, "metadata", where, {}) or {}
    starter = str(row.get("starter_code") or "")
    tests: list[Test] = []
    for case in cases:
        if not isinstance(case, dict) or "input" not in case or "output" not in case:
            raise InvalidConfig(f"Expects LiveCodeBench test cases as {{input, output, testtype}}; {where}.")
        if case.get("testtype", "stdin") == "functional":
            name = metadata.get("func_name") if isinstance(metadata, dict) else None
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidConfig(f"Expects metadata.func_name for functional tests; {where} has none.")
            try:
                args = [json.loads(line) for line in str(case["input"]).splitlines() if line.strip()]
                expected = json.loads(str(case["output"]))
            except ValueError:
                raise InvalidConfig(f"Expects functional test inputs and outputs as JSON lines; {where}.") from None
            tests.append(CallTest(f"Solution().{name}({', '.join(repr(arg) for arg in args)})", expected))
        else:
            tests.append(StdioTest(str(case["input"]), str(case["output"])))
    if not tests:
        raise InvalidConfig(f"Expects a LiveCodeBench problem with test cases; {where} has none.")
    if len({type(test) for test in tests}) > 1:
        raise InvalidConfig(f"Expects one test type per problem (stdin or functional); {where} mixes them.")
    entry = "Solution" if isinstance(tests[0], CallTest) else None
    question = f"{prompt}\n\n{starter}".rstrip() if starter else prompt
    return Problem(question, question, tuple(tests), "", "", entry, skill, max(1, len(public)))


def _load(path: Path, mapping: dict[str, str] | None) -> list[Problem]:
    problems = []
    for where, row in read_problem_rows(path, "MBPP- or LiveCodeBench-format", DATA):
        text = str(row.get("question_content") or row.get("prompt") or row.get("text") or "")
        skill = (
            slug(str(row["skill"]))
            if row.get("skill")
            else (mapping or {}).get(normalize_question(text))
            or (slug(str(row["difficulty"])) if row.get("difficulty") else DEFAULT_SKILL)
        )
        if "question_content" in row:
            problems.append(_livecodebench(row, where, skill))
        elif "test_list" in row:
            problems.append(_mbpp(row, where, skill))
        else:
            raise InvalidConfig(
                f"Expects an MBPP line {{text, code, test_list}} or a LiveCodeBench line {{question_content, "
                f"public_test_cases, ...}}; {where} has {sorted(row)}."
            )
    return problems
