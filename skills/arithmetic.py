"""The built-in procedural arithmetic task: eight verifiable skills of graded difficulty.

Questions are short strings a character-level model can read (``347+215=``), answers are exact strings
(``562``). The verifier recomputes the answer from the question, so a wrong gold answer supplied by a
teacher is rejected too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from skills.errors import unknown_name_error
from skills.task import Example, Skill

Sampler = Callable[[np.random.Generator], tuple[int, ...]]


def _digits_no_carry(rng: np.random.Generator, n_digits: int) -> tuple[int, int]:
    """Two n-digit numbers whose column sums never carry (leading digits are non-zero)."""
    a = b = 0
    for position in range(n_digits):
        low = 1 if position == n_digits - 1 else 0
        da = int(rng.integers(low, 10 - low))
        db = int(rng.integers(low, 10 - da))
        a += da * 10**position
        b += db * 10**position
    return a, b


def _has_carry(a: int, b: int) -> bool:
    while a or b:
        if a % 10 + b % 10 >= 10:
            return True
        a, b = a // 10, b // 10
    return False


def _has_borrow(a: int, b: int) -> bool:
    while b:
        if a % 10 < b % 10:
            return True
        a, b = a // 10, b // 10
    return False


def _rejection(rng: np.random.Generator, draw: Sampler, keep: Callable[..., bool]) -> tuple[int, ...]:
    while True:
        values = draw(rng)
        if keep(*values):
            return values


def _pair(low: int, high: int) -> Sampler:
    return lambda rng: (int(rng.integers(low, high)), int(rng.integers(low, high)))


@dataclass(frozen=True)
class _SkillSpec:
    skill: Skill
    sample: Sampler
    render: Callable[..., str]


def _no_borrow_3d(rng: np.random.Generator) -> tuple[int, int]:
    # The difference of a no-carry pair read backwards is a no-borrow subtraction.
    low, high = _digits_no_carry(rng, 3)
    return low + high, high


_SPECS: tuple[_SkillSpec, ...] = (
    _SkillSpec(
        Skill("add_no_carry", "Add two 3-digit numbers whose columns never carry.", "addition"),
        lambda rng: _digits_no_carry(rng, 3),
        lambda a, b: f"{a}+{b}=",
    ),
    _SkillSpec(
        Skill("add_carry", "Add two 2-digit numbers with at least one carry.", "addition"),
        lambda rng: _rejection(rng, _pair(10, 100), _has_carry),
        lambda a, b: f"{a}+{b}=",
    ),
    _SkillSpec(
        Skill("add_3d_carry", "Add two 3-digit numbers with at least one carry.", "addition"),
        lambda rng: _rejection(rng, _pair(100, 1000), _has_carry),
        lambda a, b: f"{a}+{b}=",
    ),
    _SkillSpec(
        Skill("sum3", "Add three numbers: a 2-digit number and two 1-digit numbers.", "addition"),
        lambda rng: (int(rng.integers(10, 100)), int(rng.integers(1, 10)), int(rng.integers(1, 10))),
        lambda a, b, c: f"{a}+{b}+{c}=",
    ),
    _SkillSpec(
        Skill("sub_no_borrow", "Subtract 3-digit numbers column by column with no borrow.", "subtraction"),
        _no_borrow_3d,
        lambda a, b: f"{a}-{b}=",
    ),
    _SkillSpec(
        Skill("sub_borrow", "Subtract a smaller 3-digit number with at least one borrow.", "subtraction"),
        lambda rng: _rejection(rng, _pair(100, 1000), lambda a, b: a > b and _has_borrow(a, b)),
        lambda a, b: f"{a}-{b}=",
    ),
    _SkillSpec(
        Skill("compare", "Compare two 3-digit numbers: answer <, = or >.", "comparison"),
        lambda rng: _rejection(rng, _pair(100, 1000), lambda a, b: True),
        lambda a, b: f"{a}?{b}=",
    ),
    _SkillSpec(
        Skill("mul_1d", "Multiply a 3-digit number by a 1-digit number (2-9).", "multiplication"),
        lambda rng: (int(rng.integers(100, 1000)), int(rng.integers(2, 10))),
        lambda a, b: f"{a}*{b}=",
    ),
)

_QUESTION = re.compile(r"^\s*(\d+)\s*([-+*?])\s*(\d+)\s*(?:\+\s*(\d+)\s*)?=\s*$")


def solve(question: str) -> str:
    """The exact answer to an arithmetic question in this task's format."""
    match = _QUESTION.match(question)
    if match is None:
        raise ValueError(f"Expects an arithmetic question like '47+38=', '347?382=' or '12+3+4='; actual {question!r}.")
    a, op, b, c = match.groups()
    x, y = int(a), int(b)
    if c is not None and op != "+":
        raise ValueError(f"Expects three terms only in a sum like '12+3+4='; actual {question!r}.")
    if op == "+":
        return str(x + y + (int(c) if c else 0))
    if op == "-":
        return str(x - y)
    if op == "*":
        return str(x * y)
    return "<" if x < y else ">" if x > y else "="


class ArithmeticTask:
    """Eight procedural arithmetic skills with exact verifiers.

    Example:
        >>> import numpy as np
        >>> task = ArithmeticTask()
        >>> ex = task.generate("add_carry", 1, np.random.default_rng(0))[0]
        >>> task.score(ex, ex.answer), task.score(ex, "nonsense")
        (1.0, 0.0)
    """

    name = "arithmetic"

    def __init__(self, skills: Sequence[str] | None = None) -> None:
        by_name = {spec.skill.name: spec for spec in _SPECS}
        chosen = list(skills) if skills is not None else list(by_name)
        for name in chosen:
            if name not in by_name:
                raise unknown_name_error("arithmetic skill", name, by_name)
        self._specs = {name: by_name[name] for name in chosen}

    @property
    def skills(self) -> list[Skill]:
        return [spec.skill for spec in self._specs.values()]

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        if skill not in self._specs:
            raise unknown_name_error("arithmetic skill", skill, self._specs)
        if n < 0:
            raise ValueError(f"Expects a non-negative number of examples; actual {n}.")
        spec = self._specs[skill]
        examples = []
        for _ in range(n):
            question = spec.render(*spec.sample(rng))
            examples.append(Example(question, solve(question), skill))
        return examples

    def score(self, example: Example, answer: str) -> float:
        try:
            truth = solve(example.question)
        except ValueError:
            return 0.0
        return 1.0 if answer.strip() == truth else 0.0

    def heldout_key(self, question: str) -> str:
        match = _QUESTION.match(question)
        if match is None:
            return " ".join(question.split())
        a, op, b, c = match.groups()
        if op in "+*":  # commutative: 38+47= and 47+38= are the same question
            terms = sorted(int(t) for t in (a, b, c) if t is not None)
            return op.join(str(t) for t in terms) + "="
        return f"{int(a)}{op}{int(b)}="
