"""``code``: write a one-line Python function from a short spec and an example, verified by hidden unit tests.

Each skill is a family of programs the default student can learn on CPU. A question is one example call and the
spec; the answer is the function, e.g.::

    f(3)=33. Return x times 7 plus 12.                 ->  def f(x): return x*7+12
    f([3, 50])=[50]. Return the items of a above 40.   ->  def f(a): return [v for v in a if v>40]

A student's answer is run in the sandbox (:mod:`skills.sandbox`) against hidden tests: six calls whose inputs
are drawn from the question's spec (the same spec, the same tests) and whose expected outputs come from the
task's reference function, computed here and never shown to the program. The score is the share of tests passed.
The held-out key is the spec itself (the reference program): the same program asked with another example is the
same question, so it never reaches training when it is held out.

Example:
    >>> import numpy as np
    >>> task = CodeTask()
    >>> ex = task.generate("affine", 1, np.random.default_rng(0))[0]
    >>> task.score(ex, ex.answer), task.score(ex, "def f(x): return x")
    (1.0, 0.0)
"""

from __future__ import annotations

import ast
import hashlib
import operator
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skills.errors import InvalidConfig, InvalidPlan, unknown_name_error
from skills.programs import ProgramCase, ProgramJudge, ProgramTask, extract_program, run_verdict, syntax_tree
from skills.sandbox import CallTest, Execution, Outcome, Sandbox, SandboxConfig
from skills.task import Diagnosis, Example, Skill, Verdict, Verification, normalize_question

MAX_QUESTION_CHARS = 80
MAX_ANSWER_CHARS = 48
HIDDEN_TESTS = 6
ENTRY = "f"
# Generation room a student built by name needs for this task (answers up to 48 characters, one token each with
# the character tokenizer; the longest question and answer fit the default student's 128 positions).
STUDENT_DEFAULTS = {"max_new_tokens": MAX_ANSWER_CHARS + 1, "max_length": 128}
_LETTERS = string.ascii_lowercase
_CMP = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}
_CMP_WORDS = {">": "above", "<": "below", ">=": "at least", "<=": "at most"}
_REDUCE = {"sum": sum, "max": max, "min": min, "len": len}
_REDUCE_WORDS = {
    "sum": "the sum of a",
    "max": "the largest item of a",
    "min": "the smallest item of a",
    "len": "the length of a",
}


@dataclass(frozen=True)
class Spec:
    """One program of a family: its skill, parameters, English spec and reference program."""

    skill: str
    params: tuple[Any, ...]
    text: str
    program: str

    @property
    def key(self) -> str:
        return f"{self.skill}|{self.program}"


@dataclass(frozen=True)
class _Family:
    category: str
    description: str
    arg: str  # the function's parameter: x (int), s (str) or a (list of int)
    draw: Callable[[np.random.Generator], tuple[Any, ...]]
    render: Callable[[tuple[Any, ...]], tuple[str, str]]  # params -> (spec text, program body expression)
    parse: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[Any, ...]]], ...]
    reference: Callable[[tuple[Any, ...]], Callable[[Any], Any]]
    inputs: Callable[[tuple[Any, ...], np.random.Generator], Any]
    # The input of the question's example call, kept short so that the question fits the default student.
    shown: Callable[[tuple[Any, ...], np.random.Generator], Any] | None = None


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    return int(rng.integers(low, high + 1))


def _text(rng: np.random.Generator, alphabet: str, low: int, high: int) -> str:
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=_int(rng, low, high)))


def _ints(rng: np.random.Generator, low: int, high: int, size_low: int, size_high: int) -> list[int]:
    return [int(v) for v in rng.integers(low, high + 1, size=_int(rng, size_low, size_high))]


# -- families ----------------------------------------------------------------------------------------------------
def _add_render(p: tuple[Any, ...]) -> tuple[str, str]:
    op, k = p
    return f"Return x {'plus' if op == '+' else 'minus'} {k}.", f"x{op}{k}"


def _affine_render(p: tuple[Any, ...]) -> tuple[str, str]:
    a, op, b = p
    return f"Return x times {a} {'plus' if op == '+' else 'minus'} {b}.", f"x*{a}{op}{b}"


def _slice_render(p: tuple[Any, ...]) -> tuple[str, str]:
    kind, i, j = p
    return {
        "first": (f"Return the first {i} characters of s.", f"s[:{i}]"),
        "last": (f"Return the last {i} characters of s.", f"s[-{i}:]"),
        "drop_first": (f"Return s without its first {i} characters.", f"s[{i}:]"),
        "drop_last": (f"Return s without its last {i} characters.", f"s[:-{i}]"),
        "range": (f"Return s from index {i} up to index {j}.", f"s[{i}:{j}]"),
    }[kind]


def _slice_reference(p: tuple[Any, ...]) -> Callable[[str], str]:
    kind, i, j = p
    return {
        "first": lambda s: s[:i],
        "last": lambda s: s[-i:],
        "drop_first": lambda s: s[i:],
        "drop_last": lambda s: s[:-i],
        "range": lambda s: s[i:j],
    }[kind]


def _slice_draw(rng: np.random.Generator) -> tuple[Any, ...]:
    kind = ("first", "last", "drop_first", "drop_last", "range")[_int(rng, 0, 4)]
    if kind == "range":
        i = _int(rng, 0, 79)
        return kind, i, _int(rng, i + 1, 80)
    return kind, _int(rng, 1, 99), 0


def _replace_render(p: tuple[Any, ...]) -> tuple[str, str]:
    old, new = p
    text = f"Remove every '{old}' from s." if not new else f"Replace every '{old}' in s with '{new}'."
    return text, f"s.replace('{old}','{new}')"


def _replace_draw(rng: np.random.Generator) -> tuple[Any, ...]:
    old = _text(rng, _LETTERS, 1, 2)
    new = _text(rng, _LETTERS, 0, 2)
    return (old, new) if new != old else (old, "")


def _replace_inputs(
    p: tuple[Any, ...], rng: np.random.Generator, low: int = 0, high: int = 12, share: float = 0.8
) -> str:
    """A string over the substring's letters and two others, holding the substring (``share`` of the time)."""
    alphabet = "".join(sorted(set(p[0] + p[1]))) + _text(rng, _LETTERS, 2, 2)
    text = _text(rng, alphabet, low, high)
    at = _int(rng, 0, len(text))
    return text[:at] + p[0] + text[at:] if rng.random() < share else text


def _reduce_render(p: tuple[Any, ...]) -> tuple[str, str]:
    op, k = p
    return (f"Return {_REDUCE_WORDS[op]} plus {k}." if k else f"Return {_REDUCE_WORDS[op]}."), (
        f"{op}(a)+{k}" if k else f"{op}(a)"
    )


def _filter_render(p: tuple[Any, ...]) -> tuple[str, str]:
    cmp, k = p
    return f"Return the items of a {_CMP_WORDS[cmp]} {k}.", f"[v for v in a if v{cmp}{k}]"


def _conditional_render(p: tuple[Any, ...]) -> tuple[str, str]:
    yes, cmp, k, no = p
    return f"Return {yes} if x is {_CMP_WORDS[cmp]} {k}, else {no}.", f"{yes} if x{cmp}{k} else {no}"


def _loop_render(p: tuple[Any, ...]) -> tuple[str, str]:
    start, step = p
    return f"Add up the numbers from {start} below x in steps of {step}.", f"sum(range({start},x,{step}))"


_NUMBER = r"(\d{1,4})"
_SIGNED = r"(-?\d{1,4})"
FAMILIES: dict[str, _Family] = {
    "add_const": _Family(
        "arithmetic",
        "add or subtract a constant: x+17, x-250",
        "x",
        lambda rng: ("+-"[_int(rng, 0, 1)], _int(rng, 1, 1500)),
        _add_render,
        ((re.compile(rf"Return x (plus|minus) {_NUMBER}\."), lambda m: ("+" if m[1] == "plus" else "-", int(m[2]))),),
        lambda p: (lambda x: x + p[1]) if p[0] == "+" else (lambda x: x - p[1]),
        lambda p, rng: _int(rng, -100, 1000),
    ),
    "affine": _Family(
        "arithmetic",
        "multiply by a constant, then add or subtract one: x*7+12",
        "x",
        lambda rng: (_int(rng, 2, 49), "+-"[_int(rng, 0, 1)], _int(rng, 1, 99)),
        _affine_render,
        (
            (
                re.compile(rf"Return x times {_NUMBER} (plus|minus) {_NUMBER}\."),
                lambda m: (int(m[1]), "+" if m[2] == "plus" else "-", int(m[3])),
            ),
        ),
        lambda p: (lambda x: x * p[0] + p[2]) if p[1] == "+" else (lambda x: x * p[0] - p[2]),
        lambda p, rng: _int(rng, -100, 1000),
    ),
    "slice": _Family(
        "strings",
        "slice a string: its first or last characters, without them, or an index range",
        "s",
        _slice_draw,
        _slice_render,
        (
            (re.compile(rf"Return the first {_NUMBER} characters of s\."), lambda m: ("first", int(m[1]), 0)),
            (re.compile(rf"Return the last {_NUMBER} characters of s\."), lambda m: ("last", int(m[1]), 0)),
            (re.compile(rf"Return s without its first {_NUMBER} characters\."), lambda m: ("drop_first", int(m[1]), 0)),
            (re.compile(rf"Return s without its last {_NUMBER} characters\."), lambda m: ("drop_last", int(m[1]), 0)),
            (
                re.compile(rf"Return s from index {_NUMBER} up to index {_NUMBER}\."),
                lambda m: ("range", int(m[1]), int(m[2])),
            ),
        ),
        _slice_reference,
        lambda p, rng: _text(rng, _LETTERS, 0, 90),
        lambda p, rng: _text(rng, _LETTERS, 3, 10),
    ),
    "replace": _Family(
        "strings",
        "replace or remove a substring: s.replace('ab','c')",
        "s",
        _replace_draw,
        _replace_render,
        (
            (re.compile(r"Remove every '([a-z]{1,2})' from s\."), lambda m: (m[1], "")),
            (re.compile(r"Replace every '([a-z]{1,2})' in s with '([a-z]{1,2})'\."), lambda m: (m[1], m[2])),
        ),
        lambda p: lambda s: s.replace(p[0], p[1]),
        _replace_inputs,
        lambda p, rng: _replace_inputs(p, rng, 1, 4, share=1.0),
    ),
    "reduce": _Family(
        "lists",
        "reduce a list to a number: sum, largest, smallest or length, plus a constant",
        "a",
        lambda rng: (("sum", "max", "min", "len")[_int(rng, 0, 3)], _int(rng, 0, 999)),
        _reduce_render,
        tuple(
            (re.compile(rf"Return {words} plus {_NUMBER}\."), lambda m, op=op: (op, int(m[1])))
            for op, words in _REDUCE_WORDS.items()
        )
        + tuple((re.compile(rf"Return {words}\."), lambda m, op=op: (op, 0)) for op, words in _REDUCE_WORDS.items()),
        lambda p: lambda a: _REDUCE[p[0]](a) + p[1],
        lambda p, rng: _ints(rng, -50, 99, 1, 8),
        lambda p, rng: _ints(rng, 0, 20, 2, 3),
    ),
    "filter": _Family(
        "lists",
        "keep the items of a list that compare to a constant: [v for v in a if v>40]",
        "a",
        lambda rng: (tuple(_CMP)[_int(rng, 0, 3)], _int(rng, -50, 500)),
        _filter_render,
        tuple(
            (re.compile(rf"Return the items of a {word} {_SIGNED}\."), lambda m, cmp=cmp: (cmp, int(m[1])))
            for cmp, word in _CMP_WORDS.items()
        ),
        lambda p: lambda a: [v for v in a if _CMP[p[0]](v, p[1])],
        lambda p, rng: _ints(rng, p[1] - 30, p[1] + 30, 0, 8),
        lambda p, rng: _ints(rng, p[1] - 5, p[1] + 5, 2, 3),
    ),
    "conditional": _Family(
        "control",
        "choose between two constants by comparing x: 3 if x>45 else 7",
        "x",
        lambda rng: (_int(rng, 0, 99), tuple(_CMP)[_int(rng, 0, 3)], _int(rng, 0, 99), _int(rng, 0, 99)),
        _conditional_render,
        tuple(
            (
                re.compile(rf"Return {_NUMBER} if x is {word} {_NUMBER}, else {_NUMBER}\."),
                lambda m, cmp=cmp: (int(m[1]), cmp, int(m[2]), int(m[3])),
            )
            for cmp, word in _CMP_WORDS.items()
        ),
        lambda p: lambda x: p[0] if _CMP[p[1]](x, p[2]) else p[3],
        lambda p, rng: _int(rng, p[2] - 20, p[2] + 20),
    ),
    "loop": _Family(
        "control",
        "sum a range with a start and a step: sum(range(3,x,4))",
        "x",
        lambda rng: (_int(rng, 0, 199), _int(rng, 1, 20)),
        _loop_render,
        (
            (
                re.compile(rf"Add up the numbers from {_NUMBER} below x in steps of {_NUMBER}\."),
                lambda m: (int(m[1]), int(m[2])),
            ),
        ),
        lambda p: lambda x: sum(range(p[0], x, p[1])),
        lambda p, rng: _int(rng, 0, 500),
    ),
}
# Later families build on earlier ones (Skill-It style transfer): add before affine, reduce before filter, ...
PREREQUISITES = (("add_const", "affine"), ("reduce", "filter"), ("add_const", "loop"), ("conditional", "filter"))
# The example call comes first and the spec last, right before the answer: the constants the answer copies from the
# spec then sit at a fixed distance from where they are written, which a small student learns far sooner.
_QUESTION = re.compile(r"f\((.{1,60}?)\)=(.{1,60}?)\. ([A-Z].*)")


def _spec(skill: str, params: tuple[Any, ...]) -> Spec:
    text, body = FAMILIES[skill].render(params)
    return Spec(skill, params, text, f"def {ENTRY}({FAMILIES[skill].arg}): return {body}")


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise InvalidPlan(f"Expects a Python literal in the question's example; actual {text!r}.") from None


class CodeTask(ProgramTask):
    """One-line Python functions in eight families (:data:`FAMILIES`), judged by hidden tests in the sandbox.

    Args:
        skills: a subset of the families (comma-separated or a list); default all.
        sandbox: a :class:`Sandbox`, or :class:`SandboxConfig` fields as a dict (limits, parallelism).
    """

    name = "code"
    student_defaults = STUDENT_DEFAULTS  # read by the environment for a student it builds by name

    def __init__(
        self, skills: Sequence[str] | str | None = None, sandbox: Sandbox | SandboxConfig | dict | None = None
    ) -> None:
        if isinstance(skills, str):
            skills = [name.strip() for name in skills.split(",") if name.strip()]
        chosen = list(dict.fromkeys(FAMILIES if skills is None else skills))
        for name in chosen:
            if name not in FAMILIES:
                raise unknown_name_error("code skill", name, FAMILIES)
        if not chosen:
            raise InvalidConfig(f"Expects at least one code skill (of {', '.join(FAMILIES)}); actual none.")
        self._names = tuple(chosen)
        self.judge = ProgramJudge(sandbox)
        self.prerequisites = tuple(edge for edge in PREREQUISITES if set(edge) <= set(self._names))

    @property
    def skills(self) -> list[Skill]:
        return [Skill(name, FAMILIES[name].description, FAMILIES[name].category) for name in self._names]

    def _known(self, skill: str) -> None:
        if skill not in self._names:
            raise unknown_name_error("code skill", skill, self._names)

    # -- generation ----------------------------------------------------------------------------------------------
    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        self._known(skill)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidPlan(f"Expects a non-negative integer number of examples; actual {n!r}.")
        family = FAMILIES[skill]
        shown_input = family.shown or family.inputs
        examples = []
        for _ in range(int(n)):
            spec = _spec(skill, family.draw(rng))
            reference = family.reference(spec.params)
            for _attempt in range(100):  # only the example is redrawn, so long specs are not drawn less often
                shown = shown_input(spec.params, rng)
                question = f"{ENTRY}({shown!r})={reference(shown)!r}. {spec.text}"
                if len(question) <= MAX_QUESTION_CHARS:
                    break
            else:  # pragma: no cover - every family's longest spec fits with its shortest example
                raise InvalidConfig(f"Expects {skill!r} questions to fit {MAX_QUESTION_CHARS} characters: {question!r}")
            examples.append(Example(question, spec.program, skill, {"spec": spec.text}))
        return examples

    def parse(self, question: str) -> tuple[Spec, Any, Any]:
        """The question's spec and its shown example (input, output). Raises InvalidPlan when it is not a question
        of this task."""
        if not isinstance(question, str) or len(question) > 2 * MAX_QUESTION_CHARS:
            raise InvalidPlan(f"Expects a code question of at most {MAX_QUESTION_CHARS} characters.")
        example = _QUESTION.fullmatch(question)
        if example is None:
            raise InvalidPlan(
                f"Expects a question like 'f(3)=15. Return x plus 12.' (an example call, then the spec); actual "
                f"{question!r}."
            )
        text = example[3]
        for skill in self._names:
            for pattern, params in FAMILIES[skill].parse:
                match = pattern.fullmatch(text)
                if match:
                    return _spec(skill, params(match)), _literal(example[1]), _literal(example[2])
        raise InvalidPlan(f"Expects a spec of one of the skills {', '.join(self._names)}; actual {text!r}.")

    def hidden_tests(self, spec: Spec) -> list[CallTest]:
        """The spec's hidden tests: the same :data:`HIDDEN_TESTS` inputs for the same spec, drawn from its key."""
        family = FAMILIES[spec.skill]
        seed = int.from_bytes(hashlib.sha256(spec.key.encode()).digest()[:8], "big")
        rng = np.random.default_rng(seed)
        reference = family.reference(spec.params)
        tests = []
        for _ in range(HIDDEN_TESTS):
            value = family.inputs(spec.params, rng)
            tests.append(CallTest(f"{ENTRY}({value!r})", reference(value)))
        return tests

    def _case(self, spec: Spec, answer: Any, shown: tuple[Any, Any] | None = None) -> ProgramCase:
        """``answer`` against the spec's hidden tests, or with ``shown`` (input, output) its visible one."""
        program = extract_program(answer) if isinstance(answer, str) else ""
        tests = self.hidden_tests(spec) if shown is None else [CallTest(f"{ENTRY}({shown[0]!r})", shown[1])]
        return ProgramCase(program, tests, syntax_tree(spec.program), ENTRY)

    # -- judging ---------------------------------------------------------------------------------------------------
    def run_answers(
        self, questions: Sequence[str], answers: Sequence[Any], *, visible: bool = False
    ) -> list[Execution | None]:
        """Each answer run against its question's hidden tests (``visible``: its example call instead), in
        parallel; None for a malformed question."""
        cases: list[ProgramCase | None] = []
        for question, answer in zip(questions, answers, strict=True):
            try:
                spec, shown_input, shown_output = self.parse(question)
            except InvalidPlan:
                cases.append(None)
                continue
            cases.append(self._case(spec, answer, (shown_input, shown_output) if visible else None))
        return self.judge.judge_some(cases)

    def verify_many(self, examples: Sequence[Example]) -> list[Verification]:
        """From the question alone: MALFORMED (not a question of this task, over the size limits, or its shown
        example contradicts its spec), WRONG_SKILL, WRONG_ANSWER (a hidden test fails: the outcome and error
        say which), else CORRECT.

        Raises:
            UnknownName: an example's skill is not a skill of this task.
        """
        verdicts: list[Verification | Spec] = []
        for example in examples:
            self._known(example.skill)
            verdicts.append(self._check_question(example))
        to_run = [i for i, verdict in enumerate(verdicts) if isinstance(verdict, Spec)]
        cases = [self._case(verdicts[i], examples[i].answer) for i in to_run]
        for index, run in zip(to_run, self.judge.judge(cases), strict=True):
            verdicts[index] = run_verdict(run, "hidden tests")
        return verdicts

    def _check_question(self, example: Example) -> Verification | Spec:
        """A verdict on the question (and the answer's form) alone, or the spec when the answer must be run."""
        try:
            spec, shown_input, shown_output = self.parse(example.question)
        except InvalidPlan as error:
            return Verification(Verdict.MALFORMED, str(error))
        if spec.skill != example.skill:
            return Verification(
                Verdict.WRONG_SKILL, f"the question asks for a {spec.skill!r} program, not {example.skill!r}"
            )
        if len(example.question) > MAX_QUESTION_CHARS or not isinstance(example.answer, str):
            return Verification(
                Verdict.MALFORMED, f"expects a question of at most {MAX_QUESTION_CHARS} characters and a text answer"
            )
        if len(example.answer) > MAX_ANSWER_CHARS or not example.answer.isascii() or not example.answer.isprintable():
            return Verification(
                Verdict.MALFORMED,
                f"expects a one-line answer of at most {MAX_ANSWER_CHARS} printable ASCII characters; given "
                f"{example.answer[:80]!r}",
            )
        try:
            expected = FAMILIES[spec.skill].reference(spec.params)(shown_input)
            agrees = expected == shown_output and type(expected) is type(shown_output)
        except (TypeError, ValueError, IndexError):  # the reference cannot take the shown input
            agrees = False
        if not agrees:
            return Verification(
                Verdict.MALFORMED, f"its example f({shown_input!r})={shown_output!r} contradicts its spec"
            )
        return spec

    def heldout_key(self, question: str) -> str:
        """The spec's reference program (the example call left out); a malformed question falls back to
        :func:`skills.task.normalize_question`."""
        try:
            return self.parse(question)[0].key
        except InvalidPlan:
            return normalize_question(question)

    def diagnose(self, question: str, answer: str, skill: str) -> Diagnosis:
        """The run's outcome (``crash``: not a program defining f, ``fail``, ``timeout``, ...) and the question's
        skill as the missing one."""
        self._known(skill)
        run = self.run_answers([question], [answer])[0]
        if run is None:
            return Diagnosis("unparseable_question", (skill,))
        if run.outcome is Outcome.PASS:
            return Diagnosis("correct")
        return Diagnosis(run.outcome.value, (skill,))
