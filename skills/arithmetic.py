"""The built-in procedural arithmetic task: eight verifiable skills of graded difficulty.

Questions are short strings a character-level model can read (``347+215=``), answers are exact strings
(``562``). :meth:`ArithmeticTask.verify` recomputes the answer from the question and checks that the question
is one of the skill it is filed under, so neither a wrong gold answer nor a mislabelled question supplied by a
teacher gets through.

Everything stored on a task is a module-level function or a ``functools.partial`` of one, so tasks pickle
(worker processes, checkpoints).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from skills.errors import InvalidPlan, Unverifiable, unknown_name_error
from skills.task import Diagnosis, Example, Skill, Verdict, Verification

Sampler = Callable[[np.random.Generator], tuple[int, ...]]
Member = Callable[[str, tuple[int, ...]], bool]

# Bounds on what verify()/solve() parse: far above any skill's operands, far below int()'s 4300-digit limit, so
# a 10,000-digit "question" is rejected at once instead of being converted.
MAX_QUESTION_CHARS = 64
MAX_NUMBER_DIGITS = 12

# The task's format: ASCII digits only (``\d`` and int() also accept '１１' or '١١'), no leading zeros, ASCII
# whitespace allowed around the tokens, three terms only in a sum.
_NUMBER = r"(0|[1-9][0-9]*)"
_QUESTION = re.compile(rf"\s*{_NUMBER}\s*([-+*?])\s*{_NUMBER}\s*(?:\+\s*{_NUMBER}\s*)?=\s*", re.ASCII)
# The held-out key parses the question after NFKC and whitespace removal, with leading zeros allowed.
_KEY_QUESTION = re.compile(r"([0-9]+)([-+*?])([0-9]+)(?:\+([0-9]+))?=", re.ASCII)


# --- generators (their rng consumption is frozen: the shipped student's curriculum depends on it) -----------


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


def _is_borrowing_subtraction(a: int, b: int) -> bool:
    return a > b and _has_borrow(a, b)


def _always(*_: int) -> bool:
    return True


def _pair(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    return int(rng.integers(low, high)), int(rng.integers(low, high))


def _rejection(
    rng: np.random.Generator, draw: Callable[[np.random.Generator], tuple[int, ...]], keep: Callable[..., bool]
) -> tuple[int, ...]:
    while True:
        values = draw(rng)
        if keep(*values):
            return values


def _no_carry_3d(rng: np.random.Generator) -> tuple[int, int]:
    return _digits_no_carry(rng, 3)


def _no_borrow_3d(rng: np.random.Generator) -> tuple[int, int]:
    # The difference of a no-carry pair read backwards is a no-borrow subtraction.
    low, high = _digits_no_carry(rng, 3)
    return low + high, high


def _sum3(rng: np.random.Generator) -> tuple[int, int, int]:
    return int(rng.integers(10, 100)), int(rng.integers(1, 10)), int(rng.integers(1, 10))


def _mul_1d(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(100, 1000)), int(rng.integers(2, 10))


def _render(op: str, *terms: int) -> str:
    return op.join(str(t) for t in terms) + "="


# --- membership: exactly the questions each generator can produce (+ and * operands in any order) -----------


def _is_2d(x: int) -> bool:
    return 10 <= x <= 99


def _is_3d(x: int) -> bool:
    return 100 <= x <= 999


def _member_add_no_carry(op: str, terms: tuple[int, ...]) -> bool:
    return op == "+" and len(terms) == 2 and all(map(_is_3d, terms)) and not _has_carry(*terms)


def _member_add_carry(op: str, terms: tuple[int, ...]) -> bool:
    return op == "+" and len(terms) == 2 and all(map(_is_2d, terms)) and _has_carry(*terms)


def _member_add_3d_carry(op: str, terms: tuple[int, ...]) -> bool:
    return op == "+" and len(terms) == 2 and all(map(_is_3d, terms)) and _has_carry(*terms)


def _member_sum3(op: str, terms: tuple[int, ...]) -> bool:
    if op != "+" or len(terms) != 3:
        return False
    big, *small = sorted(terms, reverse=True)
    return _is_2d(big) and all(1 <= x <= 9 for x in small)


def _member_sub_no_borrow(op: str, terms: tuple[int, ...]) -> bool:
    if op != "-" or len(terms) != 2:
        return False
    a, b = terms
    return _is_3d(a) and _is_3d(b) and _is_3d(a - b) and not _has_borrow(a, b)


def _member_sub_borrow(op: str, terms: tuple[int, ...]) -> bool:
    if op != "-" or len(terms) != 2:
        return False
    a, b = terms
    return _is_3d(a) and _is_3d(b) and _is_borrowing_subtraction(a, b)


def _member_compare(op: str, terms: tuple[int, ...]) -> bool:
    return op == "?" and len(terms) == 2 and all(map(_is_3d, terms))


def _member_mul_1d(op: str, terms: tuple[int, ...]) -> bool:
    if op != "*" or len(terms) != 2:
        return False
    big, small = sorted(terms, reverse=True)
    return _is_3d(big) and 2 <= small <= 9


# --- difficulty: the generator parameter each skill's subskills (difficulty bands) are cut on -----------------


def _carries(*terms: int) -> int:
    """Columns that carry in the column addition of ``terms`` (a carry of 2 counts once)."""
    count = carry = 0
    while any(terms) or carry:
        column = sum(t % 10 for t in terms) + carry
        carry = column // 10
        count += carry > 0
        terms = tuple(t // 10 for t in terms)
    return count


def _borrows(a: int, b: int) -> int:
    count = borrow = 0
    while b or borrow:
        borrow = int(a % 10 - borrow < b % 10)
        count += borrow
        a, b = a // 10, b // 10
    return count


def _largest_column_sum(a: int, b: int, *_: int) -> int:
    return max((a // 10**i) % 10 + (b // 10**i) % 10 for i in range(3))


def _answer_zeros(a: int, b: int) -> int:
    return str(a - b).count("0")


def _first_difference(a: int, b: int) -> int:
    """The digit position (0 = hundreds) where two 3-digit numbers first differ; 3 when they are equal."""
    return next((i for i, (x, y) in enumerate(zip(str(a), str(b), strict=True)) if x != y), 3)


def _small_factor(a: int, b: int) -> int:
    return min(a, b)


@dataclass(frozen=True)
class _SkillSpec:
    skill: Skill
    sample: Sampler
    render: Callable[..., str]
    member: Member  # the exact membership predicate on (operator, operands)
    rule: str  # the membership predicate in words, for verify()'s details
    difficulty: Callable[..., int]  # the parameter its difficulty bands are cut on, from the operands
    difficulty_name: str  # that parameter in a few words ("carries")


_SPECS: tuple[_SkillSpec, ...] = (
    _SkillSpec(
        Skill("add_no_carry", "Add two 3-digit numbers whose columns never carry.", "addition"),
        _no_carry_3d,
        partial(_render, "+"),
        _member_add_no_carry,
        "a+b= with a and b in 100..999 and no column carrying",
        _largest_column_sum,
        "largest column sum",
    ),
    _SkillSpec(
        Skill("add_carry", "Add two 2-digit numbers with at least one carry.", "addition"),
        partial(_rejection, draw=partial(_pair, low=10, high=100), keep=_has_carry),
        partial(_render, "+"),
        _member_add_carry,
        "a+b= with a and b in 10..99 and at least one column carrying",
        _carries,
        "carries",
    ),
    _SkillSpec(
        Skill("add_3d_carry", "Add two 3-digit numbers with at least one carry.", "addition"),
        partial(_rejection, draw=partial(_pair, low=100, high=1000), keep=_has_carry),
        partial(_render, "+"),
        _member_add_3d_carry,
        "a+b= with a and b in 100..999 and at least one column carrying",
        _carries,
        "carries",
    ),
    _SkillSpec(
        Skill("sum3", "Add three numbers: a 2-digit number and two 1-digit numbers.", "addition"),
        _sum3,
        partial(_render, "+"),
        _member_sum3,
        "a+b+c= with one term in 10..99 and two terms in 1..9",
        _carries,
        "carries",
    ),
    _SkillSpec(
        Skill("sub_no_borrow", "Subtract 3-digit numbers column by column with no borrow.", "subtraction"),
        _no_borrow_3d,
        partial(_render, "-"),
        _member_sub_no_borrow,
        "a-b= with b and a-b in 100..999, a <= 999 and no column borrowing",
        _answer_zeros,
        "zeros in the answer",
    ),
    _SkillSpec(
        Skill("sub_borrow", "Subtract a smaller 3-digit number with at least one borrow.", "subtraction"),
        partial(_rejection, draw=partial(_pair, low=100, high=1000), keep=_is_borrowing_subtraction),
        partial(_render, "-"),
        _member_sub_borrow,
        "a-b= with 100 <= b < a <= 999 and at least one column borrowing",
        _borrows,
        "borrows",
    ),
    _SkillSpec(
        Skill("compare", "Compare two 3-digit numbers: answer <, = or >.", "comparison"),
        partial(_rejection, draw=partial(_pair, low=100, high=1000), keep=_always),
        partial(_render, "?"),
        _member_compare,
        "a?b= with a and b in 100..999",
        _first_difference,
        "first differing digit (0 = hundreds, 3 = equal)",
    ),
    _SkillSpec(
        Skill("mul_1d", "Multiply a 3-digit number by a 1-digit number (2-9).", "multiplication"),
        _mul_1d,
        partial(_render, "*"),
        _member_mul_1d,
        "a*b= with one factor in 100..999 and the other in 2..9",
        _small_factor,
        "one-digit factor",
    ),
)
_SPEC_BY_NAME = {spec.skill.name: spec for spec in _SPECS}


# --- parsing and solving ----------------------------------------------------------------------------------


def _first_foreign_char(text: str) -> str | None:
    """The first character that cannot appear in a question of this task (anything but ASCII digits,
    ``+-*?=`` and ASCII whitespace), or None."""
    for char in text:
        if not (char.isascii() and (char in "0123456789+-*?=" or char.isspace())):
            return char
    return None


def _parse(question: str) -> tuple[str, tuple[int, ...]] | str:
    """``(operator, operands)`` of a question in this task's format, or a string saying why it is not one.

    Never raises and never converts a long digit string: the length is checked before anything else.
    """
    if not isinstance(question, str):
        return f"expects the question as a string; given {type(question).__name__}"
    if len(question) > MAX_QUESTION_CHARS:
        return f"expects a question of at most {MAX_QUESTION_CHARS} characters like '47+38='; given {len(question)}"
    foreign = _first_foreign_char(question)
    if foreign is not None:
        return (
            f"expects ASCII digits 0-9, one of + - * ? and '='; given {foreign!r} "
            f"(U+{ord(foreign):04X} {unicodedata.name(foreign, 'unnamed')}) in {question!r}"
        )
    match = _QUESTION.fullmatch(question)
    if match is None:
        return (
            "expects an arithmetic question like '47+38=', '347?382=' or '12+3+4=' "
            f"(numbers without leading zeros); given {question!r}"
        )
    a, op, b, c = match.groups()
    if c is not None and op != "+":
        return f"expects three terms only in a sum like '12+3+4='; given {question!r}"
    numbers = (a, b) if c is None else (a, b, c)
    if max(map(len, numbers)) > MAX_NUMBER_DIGITS:
        return f"expects numbers of at most {MAX_NUMBER_DIGITS} digits; given {question!r}"
    return op, tuple(int(n) for n in numbers)


def _answer(op: str, terms: tuple[int, ...]) -> str:
    if op == "+":
        return str(sum(terms))
    x, y = terms
    if op == "-":
        return str(x - y)
    if op == "*":
        return str(x * y)
    return "<" if x < y else ">" if x > y else "="


def solve(question: str) -> str:
    """The exact answer to an arithmetic question in this task's format.

    Raises:
        Unverifiable: ``question`` is not in the format (non-ASCII digits, a number over
            ``MAX_NUMBER_DIGITS`` digits, garbage); the message says what was expected.
    """
    parsed = _parse(question)
    if isinstance(parsed, str):
        raise Unverifiable(parsed[0].upper() + parsed[1:] + ".")
    return _answer(*parsed)


def _ascii_digit(char: str) -> str:
    return str(unicodedata.decimal(char)) if char.isdecimal() else char


def _key_text(question: str) -> str:
    """``question`` after NFKC, with whitespace, control and format characters (zero-width spaces) removed,
    dashes and minus signs as ``-`` and decimal digits of any script as ASCII digits."""
    text = unicodedata.normalize("NFKC", question)
    if text.isascii() and text.isprintable() and " " not in text:
        return text  # the canonical format: nothing to do
    chars = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace() or category in ("Cc", "Cf"):
            continue
        chars.append("-" if category == "Pd" or char == "\u2212" else _ascii_digit(char))
    return "".join(chars)


def _key_number(digits: str) -> str:
    """``str(int(digits))`` without int(), which refuses over 4300 digits."""
    return digits.lstrip("0") or "0"


def _length_then_digits(number: str) -> tuple[int, str]:
    return len(number), number  # sorts canonical non-negative numbers by value


# --- error patterns (STAT's programmatic attribution) ---------------------------------------------------------


def _columns(*terms: int) -> list[tuple[int, ...]]:
    """The digits of ``terms`` column by column, ones first."""
    width = max(len(str(t)) for t in terms)
    return [tuple((t // 10**i) % 10 for t in terms) for i in range(width)]


def _column_sums(terms: tuple[int, ...], dropped: int = 0) -> tuple[int, list[bool]]:
    """Column addition of ``terms`` forgetting the carry out of every column whose bit is set in ``dropped``; the
    result and, per column (ones first, then the final carry), whether a carry came in or went out."""
    columns = _columns(*terms)
    total = carry = 0
    involved = []
    for i, digits in enumerate(columns):
        column = sum(digits) + carry
        carry_in = carry > 0
        carry = 0 if dropped >> i & 1 else column // 10
        involved.append(carry_in or column >= 10)
        total += (column % 10) * 10**i
    return total + carry * 10 ** len(columns), [*involved, carry > 0]


def _column_differences(a: int, b: int, dropped: int = 0) -> tuple[int, list[bool]]:
    """Column subtraction ``a - b`` forgetting to decrement after the borrows whose column bit is set in
    ``dropped``; the result and, per column, whether a borrow came in or went out."""
    total = borrow = 0
    involved = []
    for i, (x, y) in enumerate(_columns(a, b)):
        column = x - borrow - y
        borrow_in = borrow > 0
        borrow = 0 if dropped >> i & 1 or column >= 0 else 1
        involved.append(borrow_in or column < 0)
        total += (column % 10) * 10**i
    return total, involved


def _smaller_from_larger(a: int, b: int) -> int:
    """The classic borrow bug: in each column the smaller digit is taken from the larger."""
    return sum(abs(x - y) * 10**i for i, (x, y) in enumerate(_columns(a, b)))


def _one_slipped_column(value: int, truth: int) -> int | None:
    """The column (ones = 0) of the only digit where ``value`` differs from ``truth``, if the two have the same
    length and differ in exactly one digit."""
    given, right = str(value), str(truth)
    if len(given) != len(right):
        return None
    slips = [len(right) - 1 - i for i, (x, y) in enumerate(zip(given, right, strict=True)) if x != y]
    return slips[0] if len(slips) == 1 else None


def _diagnose_sum(terms: tuple[int, ...], value: int) -> str | None:
    truth, involved = _column_sums(terms)
    masks = range(1, 2 ** len(_columns(*terms)))
    if any(_column_sums(terms, dropped)[0] == value for dropped in masks):  # value is never the truth here
        return "missing_carry"
    column = _one_slipped_column(value, truth)
    if column is None:
        return None
    return "carry_column" if involved[column] else "column"


def _diagnose_difference(a: int, b: int, value: int) -> str | None:
    if a < b:
        return None
    truth, involved = _column_differences(a, b)
    masks = range(1, 2 ** len(_columns(a, b)))
    borrowed = any(involved)
    if borrowed and (
        value == _smaller_from_larger(a, b) or any(_column_differences(a, b, m)[0] == value for m in masks)
    ):
        return "missing_borrow"
    column = _one_slipped_column(value, truth)
    if column is None:
        return None
    return "borrow_column" if involved[column] else "column"


PREREQUISITES: tuple[tuple[str, str], ...] = (
    ("add_no_carry", "add_3d_carry"),
    ("add_carry", "add_3d_carry"),
    ("add_carry", "sum3"),
    ("add_3d_carry", "mul_1d"),
    ("sub_no_borrow", "sub_borrow"),
)


class ArithmeticTask:
    """Eight procedural arithmetic skills with exact verifiers.

    Example:
        >>> import numpy as np
        >>> task = ArithmeticTask()
        >>> ex = task.generate("add_carry", 1, np.random.default_rng(0))[0]
        >>> task.score(ex, ex.answer), task.score(ex, "nonsense")
        (1.0, 0.0)
        >>> task.verify(Example("12+34=", "46", "mul_1d")).verdict
        <Verdict.WRONG_SKILL: 'wrong_skill'>
    """

    name = "arithmetic"

    def __init__(self, skills: Sequence[str] | None = None) -> None:
        chosen = list(skills) if skills is not None else list(_SPEC_BY_NAME)
        for name in chosen:
            if name not in _SPEC_BY_NAME:
                raise unknown_name_error("arithmetic skill", name, _SPEC_BY_NAME)
        self._specs = {name: _SPEC_BY_NAME[name] for name in chosen}

    @property
    def skills(self) -> list[Skill]:
        return [spec.skill for spec in self._specs.values()]

    @property
    def prerequisites(self) -> list[tuple[str, str]]:
        """``(prerequisite, skill)`` pairs among the chosen skills: column addition before carrying over three
        digits, carrying before three-term sums and multiplication, subtraction without borrowing before with."""
        return [(a, b) for a, b in PREREQUISITES if a in self._specs and b in self._specs]

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        if skill not in self._specs:
            raise unknown_name_error("arithmetic skill", skill, self._specs)
        if n < 0:
            raise InvalidPlan(f"Expects a non-negative number of examples; actual {n}.")
        spec = self._specs[skill]
        examples = []
        for _ in range(n):
            question = spec.render(*spec.sample(rng))
            examples.append(Example(question, solve(question), skill))
        return examples

    def similar(self, question: str, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        """``n`` new questions of ``skill`` near ``question`` (each operand moved by at most 9, staying in the
        skill; LLM2LLM's "similar problems" for a procedural task), with their answers. Falls back to fresh
        draws of the skill when no neighbour fits (or ``question`` is not in the format)."""
        if skill not in self._specs:
            raise unknown_name_error("arithmetic skill", skill, self._specs)
        spec = self._specs[skill]
        parsed = _parse(question)
        examples: list[Example] = []
        for _ in range(n):
            neighbour = None
            if not isinstance(parsed, str):
                op, terms = parsed
                for _attempt in range(20):
                    moved = tuple(max(0, t + int(rng.integers(-9, 10))) for t in terms)
                    if moved != terms and spec.member(op, moved):
                        neighbour = spec.render(*moved)
                        break
            if neighbour is None:
                neighbour = spec.render(*spec.sample(rng))
            examples.append(Example(neighbour, solve(neighbour), skill))
        return examples

    def difficulty(self, example: Example) -> int:
        """The generator parameter ``example.skill``'s difficulty bands are cut on (:meth:`difficulty_name`):
        carries for the carrying additions, borrows for ``sub_borrow``, the one-digit factor for ``mul_1d``, ...
        These bands are the subskills of ``envgym/SkillTree-v0``.

        >>> task = ArithmeticTask()
        >>> [task.difficulty(Example(q, "", "add_carry")) for q in ("47+38=", "58+67=")]
        [1, 2]
        """
        if example.skill not in self._specs:
            raise unknown_name_error("arithmetic skill", example.skill, self._specs)
        parsed = _parse(example.question)
        if isinstance(parsed, str):
            raise InvalidPlan(f"Expects a question of this task to measure its difficulty; {parsed}.")
        return self._specs[example.skill].difficulty(*parsed[1])

    def difficulty_name(self, skill: str) -> str:
        if skill not in self._specs:
            raise unknown_name_error("arithmetic skill", skill, self._specs)
        return self._specs[skill].difficulty_name

    def score(self, example: Example, answer: str) -> float:
        """1.0 when ``answer`` (surrounding whitespace ignored) is the exact answer to a trusted example's
        question, else 0.0; never raises (a question out of the format scores 0.0)."""
        parsed = _parse(example.question)
        if isinstance(parsed, str) or not isinstance(answer, str):
            return 0.0
        return 1.0 if answer.strip() == _answer(*parsed) else 0.0

    def verify(self, example: Example) -> Verification:
        """Check a teacher's example from its question alone: in the format (else ``MALFORMED``), one of the
        questions ``example.skill`` generates (else ``WRONG_SKILL``), and ``example.answer`` is the recomputed
        answer (surrounding whitespace ignored, as :meth:`score` does; else ``WRONG_ANSWER``).

        Raises:
            UnknownName: ``example.skill`` is not a skill of this task.
        """
        if example.skill not in self._specs:
            raise unknown_name_error("arithmetic skill", example.skill, self._specs)
        parsed = _parse(example.question)
        if isinstance(parsed, str):
            return Verification(Verdict.MALFORMED, parsed)
        op, terms = parsed
        spec = self._specs[example.skill]
        if not spec.member(op, terms):
            owners = [other.skill.name for other in _SPECS if other.member(op, terms)]
            belongs = f"it belongs to skill {owners[0]!r}" if owners else "it belongs to no arithmetic skill"
            return Verification(
                Verdict.WRONG_SKILL,
                f"skill {example.skill!r} expects {spec.rule}; given {example.question!r}, and {belongs}",
            )
        truth = _answer(op, terms)
        if not isinstance(example.answer, str):
            return Verification(
                Verdict.MALFORMED, f"expects the answer as a string like {truth!r}; given {example.answer!r}"
            )
        if example.answer.strip() != truth:
            return Verification(
                Verdict.WRONG_ANSWER, f"expects answer {truth!r} to {example.question!r}; given {example.answer!r}"
            )
        return Verification(Verdict.CORRECT, f"{example.question!r} = {truth!r}")

    def diagnose(self, question: str, answer: str, skill: str) -> Diagnosis:
        """The error pattern of a wrong ``answer`` and the skills it shows missing (STAT's programmatic attribution,
        :class:`skills.attribution.ProgrammaticAttributor`): a carry dropped (the answer is the column sum with one
        or more carries forgotten) or a wrong digit in a carrying column points to ``add_carry``, a forgotten borrow
        (or the smaller digit taken from the larger) or a wrong digit in a borrowing column to ``sub_borrow``, a
        wrong digit in a column that needed neither to plain column arithmetic (``add_no_carry``,
        ``sub_no_borrow``), each together with the question's own skill. Another operation's result on the same
        operands, an answer out of format, or anything else: the question's skill alone. A component skill this
        task instance lacks is left out.

        >>> task = ArithmeticTask()
        >>> task.diagnose("358+267=", "515", "add_3d_carry")
        Diagnosis(error='missing_carry', skills=('add_carry', 'add_3d_carry'))
        >>> task.diagnose("352+217=", "579", "add_3d_carry")
        Diagnosis(error='column', skills=('add_no_carry', 'add_3d_carry'))
        >>> task.diagnose("352-217=", "145", "sub_borrow")
        Diagnosis(error='missing_borrow', skills=('sub_borrow',))
        >>> task.diagnose("352+217=", "135", "add_3d_carry")
        Diagnosis(error='operation', skills=('add_3d_carry',))
        """
        if skill not in self._specs:
            raise unknown_name_error("arithmetic skill", skill, self._specs)
        parsed = _parse(question)
        given = answer.strip() if isinstance(answer, str) else ""
        if isinstance(parsed, str):
            return Diagnosis("unparseable_question", (skill,))
        op, terms = parsed
        if given == _answer(op, terms):
            return Diagnosis("correct")
        if op == "?" or re.fullmatch(r"-?(0|[1-9][0-9]{0,12})", given) is None:
            return Diagnosis("comparison" if op == "?" else "format", (skill,))
        value = int(given)
        if len(terms) == 2 and any(str(value) == _answer(other, terms) for other in "+-*" if other != op):
            return Diagnosis("operation", (skill,))
        if op == "+":
            error = _diagnose_sum(terms, value)
        elif op == "-":
            error = _diagnose_difference(*terms, value)
        else:  # mul_1d: no pattern diagnosed
            error = None
        if error is None:
            return Diagnosis("other", (skill,))
        missing = {
            "missing_carry": "add_carry",
            "carry_column": "add_carry",
            "missing_borrow": "sub_borrow",
            "borrow_column": "sub_borrow",
            "column": "add_no_carry" if op == "+" else "sub_no_borrow",
        }[error]
        # The component that failed, and the question's own skill: carrying was missing *in a 3-digit sum*.
        return Diagnosis(error, tuple(dict.fromkeys((missing if missing in self._specs else skill, skill))))

    def heldout_key(self, question: str) -> str:
        """Sorted operands for + and *, so ``38+47=`` and ``47+38=`` share a key; NFKC and whitespace removal
        first, so ``４７ + ３８ =`` does too. For every question the generators produce the key is the one
        earlier versions computed (the shipped student's curriculum was filtered with it)."""
        text = _key_text(question)
        match = _KEY_QUESTION.fullmatch(text)
        if match is None or (match.group(4) is not None and match.group(2) != "+"):
            return text.casefold()
        a, op, b, c = match.groups()
        terms = [_key_number(t) for t in (a, b, c) if t is not None]
        if op in "+*":  # commutative: 38+47= and 47+38= are the same question
            return op.join(sorted(terms, key=_length_then_digits)) + "="
        return f"{terms[0]}{op}{terms[1]}="
