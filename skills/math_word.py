"""Math word problems from local JSONL files: GSM8K's format or MATH's.

``make_task("math:PATH")`` loads ``PATH`` (a JSONL file; there is no hub access here). Each line is either

* GSM8K: ``{"question": ..., "answer": "... reasoning ... #### 72"}``, or
* MATH: ``{"problem": ..., "solution": "... \\boxed{\\frac{3}{4}} ...", "type": "Algebra", "level": "Level 2"}``.

The final answer is what follows the last ``####`` (GSM8K) or the content of the last ``\\boxed{...}`` (MATH, nested
braces included). Answers are compared with the well-kept ``math-verify`` library (Hugging Face), so ``1/2``,
``0.5`` and ``\\frac{1}{2}`` are one answer, ``1,200`` is ``1200``, ``$5`` and ``5 dollars`` are ``5``, and ``-3``
is not ``3``.

Skills come from the data: MATH's ``type`` (``algebra``, ``number_theory``, ...), or ``type`` and ``level``
(``skills="type_level"``: ``algebra_level2``). GSM8K has no such field: every problem is one skill, ``word_problem``,
unless ``skill_map`` (a dict or a JSON file, question -> skill name) files them, e.g. the ``question_skills`` that
skill discovery writes (``envgym discover-skills``).

Held-out questions are reserved by the same salted hash as every task's (see :mod:`skills.splits`), so a finite file
gives about ``heldout_fraction`` of its problems to validation and test; a file too small for ``n_val``/``n_test``
is refused with the numbers. ``verify`` cannot re-solve a word problem: a teacher's example is checked against the
file's gold answer when its question is in the file (``CORRECT``/``WRONG_ANSWER``), and is ``UNVERIFIABLE``
otherwise (the LLM data engine then needs self-consistency).

Example:
    >>> from skills.registry import make_task
    >>> task = make_task("math:" + str(SAMPLE_MATH))
    >>> sorted(skill.name for skill in task.skills)[:2]
    ['algebra', 'counting_and_probability']
    >>> task.score(task.generate("algebra", 1, __import__("numpy").random.default_rng(0))[0], "no idea")
    0.0
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skills.errors import InvalidConfig, unknown_name_error
from skills.storage import read_problem_rows
from skills.task import Example, Skill, Verdict, Verification, normalize_question, slug

DATA = Path(__file__).parent / "data"
SAMPLE_GSM8K = DATA / "math_word_sample.jsonl"
SAMPLE_MATH = DATA / "math_sample.jsonl"
SKILL_SCHEMES = ("type", "type_level")
DEFAULT_GSM8K_SKILL = "word_problem"
_BOXED = "\\boxed"


@dataclass(frozen=True)
class _Problem:
    question: str
    answer: str  # the extracted final answer
    solution: str
    skill: str


def extract_answer(text: str) -> str | None:
    """The final answer in a solution or a student's reply: after the last ``####``, else the content of the last
    ``\\boxed{...}`` (nested braces included), else None.

    >>> extract_answer("so 3 + 4 = 7. #### 7")
    '7'
    >>> extract_answer("x = \\\\boxed{\\\\frac{1}{2}} and done")
    '\\\\frac{1}{2}'
    """
    if "####" in text:
        answer = text.rsplit("####", 1)[1].strip().splitlines()
        return answer[0].strip() if answer and answer[0].strip() else None
    start = text.rfind(_BOXED + "{")
    if start < 0:
        return None
    depth, begin = 0, start + len(_BOXED) + 1
    for index in range(begin - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[begin:index].strip() or None
    return None  # unbalanced braces: no answer


def answers_match(gold: str, answer: str) -> bool:
    """Whether ``answer`` (a student's reply: free text, ``#### n`` or ``\\boxed{}``) equals ``gold`` mathematically,
    by ``math-verify``.

    >>> answers_match("0.5", "the answer is \\\\boxed{\\\\frac{1}{2}}"), answers_match("3", "-3")
    (True, False)
    """
    from math_verify import verify

    candidate = extract_answer(answer)
    candidate = answer if candidate is None else candidate
    if not candidate.strip():
        return False
    try:
        return bool(verify(_parse(gold), _parse(candidate)))
    except Exception:  # math-verify's sympy parsing of garbage: a wrong answer, never a crash
        return False


def _parse(text: str) -> Any:
    from math_verify import parse

    # Bare LaTeX ("\\dfrac{3}{4}") is read as LaTeX only inside $...$; plain text ("12 dollars") as it is.
    return parse(f"${text}$" if "\\" in text and "$" not in text else text)


class MathWordTask:
    """Word problems from a GSM8K- or MATH-format JSONL file (see the module docstring).

    Args:
        path: the JSONL file.
        skills: ``"type"`` or ``"type_level"`` (MATH files; ignored for GSM8K).
        skill_map: GSM8K problems' skills: a dict or a JSON file mapping question text to a skill name.
        name: the task's name (default: ``math:<file name>``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        skills: str = "type",
        skill_map: str | Path | Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        if skills not in SKILL_SCHEMES:
            raise InvalidConfig(f"Expects skills to be one of {SKILL_SCHEMES}; actual {skills!r}.")
        self.path = Path(path)
        self.name = name or f"math:{self.path.name}"
        mapping = load_skill_map(skill_map)
        self._problems = _load(self.path, skills, mapping)
        self._by_skill: dict[str, list[_Problem]] = {}
        for problem in self._problems:
            self._by_skill.setdefault(problem.skill, []).append(problem)
        self._gold = {normalize_question(p.question): p.answer for p in self._problems}
        described = {p.skill: p for p in self._problems}
        self._skills = [Skill(skill, _describe(skill, mapping is not None), "math") for skill in sorted(described)]

    @property
    def skills(self) -> Sequence[Skill]:
        return self._skills

    def __len__(self) -> int:
        return len(self._problems)

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        """``n`` problems of ``skill`` drawn from the file with ``rng`` (with replacement: the file is finite)."""
        if skill not in self._by_skill:
            raise unknown_name_error("skill", skill, self._by_skill)
        if n < 0:
            raise InvalidConfig(f"Expects a non-negative number of examples; actual {n}.")
        pool = self._by_skill[skill]
        picks = rng.integers(0, len(pool), size=n)
        return [Example(pool[i].question, pool[i].answer, skill, {"solution": pool[i].solution}) for i in picks]

    def score(self, example: Example, answer: str) -> float:
        return 1.0 if answers_match(example.answer, answer) else 0.0

    def verify(self, example: Example) -> Verification:
        """Against the file's gold answer when the question is in the file; otherwise ``UNVERIFIABLE``."""
        if example.skill not in self._by_skill:
            raise unknown_name_error("skill", example.skill, self._by_skill)
        gold = self._gold.get(normalize_question(example.question))
        if gold is None:
            return Verification(Verdict.UNVERIFIABLE, "a new word problem: the task cannot solve it on its own")
        if not answers_match(gold, example.answer):
            return Verification(Verdict.WRONG_ANSWER, f"the dataset's answer is {gold!r}")
        return Verification(Verdict.CORRECT)

    def heldout_key(self, question: str) -> str:
        """:func:`skills.task.normalize_question`: case, whitespace, punctuation and compatibility forms ignored."""
        return normalize_question(question)


def _describe(skill: str, mapped: bool) -> str:
    if skill == DEFAULT_GSM8K_SKILL and not mapped:
        return "grade-school math word problems (GSM8K format)"
    return f"math problems: {skill.replace('_', ' ')}"


def load_skill_map(skill_map: str | Path | Mapping[str, str] | None) -> dict[str, str] | None:
    if skill_map is None or isinstance(skill_map, Mapping):
        return None if skill_map is None else {normalize_question(q): slug(s) for q, s in skill_map.items()}
    path = Path(skill_map)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InvalidConfig(
            f"Expects skill_map to be a JSON file of question -> skill; cannot read {str(path)!r} ({err})."
        ) from None
    if not isinstance(data, dict):
        raise InvalidConfig(
            f"Expects skill_map {str(path)!r} to hold a JSON object (question -> skill); actual {type(data).__name__}."
        )
    # skill discovery's question_skills.json maps each question to [category, fine skill]: the category is the skill.
    return {normalize_question(q): slug(s[0] if isinstance(s, list) and s else str(s)) for q, s in data.items()}


def _load(path: Path, scheme: str, mapping: dict[str, str] | None) -> list[_Problem]:
    rows = read_problem_rows(path, "GSM8K- or MATH-format", DATA)
    return [_problem(row, where, scheme, mapping) for where, row in rows]


def _problem(row: Any, where: str, scheme: str, mapping: dict[str, str] | None) -> _Problem:
    if isinstance(row, dict) and isinstance(row.get("question"), str) and isinstance(row.get("answer"), str):
        answer = extract_answer(row["answer"]) if "####" in row["answer"] else None
        if answer is None:
            raise InvalidConfig(f"Expects a GSM8K answer ending in '#### <final answer>'; {where} has none.")
        skill = (mapping or {}).get(normalize_question(row["question"]), DEFAULT_GSM8K_SKILL)
        return _Problem(row["question"].strip(), answer, row["answer"], skill)
    if isinstance(row, dict) and isinstance(row.get("problem"), str) and isinstance(row.get("solution"), str):
        answer = extract_answer(row["solution"])
        if answer is None:
            raise InvalidConfig(f"Expects a MATH solution with a \\boxed{{...}} final answer; {where} has none.")
        kind = row.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise InvalidConfig(f"Expects a MATH problem with a 'type' (e.g. 'Algebra'); {where} has none.")
        skill = slug(kind)
        if scheme == "type_level":
            level = re.sub(r"\D", "", str(row.get("level", "")))
            skill = f"{skill}_level{level or 'unknown'}"
        return _Problem(row["problem"].strip(), answer, row["solution"], skill)
    keys = sorted(row) if isinstance(row, dict) else type(row).__name__
    raise InvalidConfig(
        f"Expects a GSM8K line {{question, answer}} or a MATH line {{problem, solution, type, level}}; {where} has "
        f"{keys}."
    )
