"""Reasoning-gym datasets as a `Task`: one skill per dataset, scored by the dataset's own verifier.

Scoring a *trusted* example (one this task generated) uses the dataset's ``score_answer`` against the generated
entry. A teacher's example is not trusted: :meth:`ReasoningGymTask.verify` re-solves its question with an
independent resolver (a parser of the dataset's question template and a small safe evaluator) and never reads
the example's own answer or metadata. Datasets without a resolver are ``UNVERIFIABLE``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import numpy as np
import reasoning_gym
from reasoning_gym.factory import DATASETS

from skills.errors import InvalidConfig, InvalidPlan, unknown_name_error
from skills.storage import jsonable
from skills.task import Example, Skill, Verdict, Verification, normalize_question

_MAX_CACHED = 200_000  # original entries kept for scoring; the oldest are dropped beyond this


def _description(name: str) -> str:
    doc = (DATASETS[name][0].__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else f"reasoning-gym dataset {name!r}."


# --- independent resolvers --------------------------------------------------------------------------------
#
# A resolver reads a question of one dataset's template and recomputes its gold answer from the question text
# alone. It raises _Mismatch when the question is not in the template (the task cannot say anything about it)
# and _Malformed when the template matches but its content is not a valid question (garbage, a division by
# zero, numbers beyond the bounds below). Both are private: verify() turns them into verdicts.

MAX_QUESTION_CHARS = 2048  # bounds on what a resolver parses, far beyond the datasets' default configs
MAX_EXPRESSION_CHARS = 512
MAX_LITERAL_DIGITS = 30
MAX_MAGNITUDE = 10**200  # every intermediate value of an expression
MAX_LIST_NUMBERS = 20  # numbers in a gcd/lcm question
MAX_PAREN_DEPTH = 32


class _Mismatch(Exception):
    """The question is not in the resolver's template."""


class _Malformed(Exception):
    """The question is in the template, but its content is not a valid question."""


_BINARY_OPERATORS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _floor_divide(a: int, b: int) -> int:
    if b == 0:
        raise _Malformed("the expression divides by zero")
    return a // b


_APPLY: dict[str, Callable[[int, int], int]] = {
    "+": int.__add__,
    "-": int.__sub__,
    "*": int.__mul__,
    "/": _floor_divide,  # basic_arithmetic computes its gold with eval(expression.replace("/", "//"))
}


def _evaluate(expression: str, operators: str, *, parentheses: bool) -> int:
    """The integer value of ``expression`` (ASCII integer literals, the binary ``operators`` among ``+-*/``,
    unary minus, optionally parentheses), parsed with :mod:`ast` and walked by hand, never ``eval``.

    ``/`` is floor division, as in reasoning-gym's basic_arithmetic. Raises _Malformed on anything else,
    and on expressions or values beyond the module's bounds.
    """
    allowed = set("0123456789 -" + operators + ("()" if parentheses else ""))
    if not expression.strip():
        raise _Malformed("the expression is empty")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise _Malformed(f"expects an expression of at most {MAX_EXPRESSION_CHARS} characters; given {len(expression)}")
    foreign = next((char for char in expression if char not in allowed), None)
    if foreign is not None:
        raise _Malformed(
            f"expects an expression of integers, {' '.join(operators)}, unary minus"
            f"{' and parentheses' if parentheses else ''} only; given {foreign!r} in {expression!r}"
        )
    if re.search(rf"[0-9]{{{MAX_LITERAL_DIGITS + 1}}}", expression):
        raise _Malformed(f"expects integers of at most {MAX_LITERAL_DIGITS} digits in {expression!r}")
    depth = 0
    for char in expression:
        depth += (char == "(") - (char == ")")
        if depth > MAX_PAREN_DEPTH:
            raise _Malformed(f"expects parentheses nested at most {MAX_PAREN_DEPTH} deep in {expression!r}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise _Malformed(f"{expression!r} is not an arithmetic expression ({type(err).__name__})") from None
    try:
        return _evaluate_node(tree.body, operators)
    except RecursionError:
        raise _Malformed(f"{expression!r} nests too deeply") from None


def _evaluate_node(node: ast.AST, operators: str) -> int:
    symbol = _BINARY_OPERATORS.get(type(node.op)) if isinstance(node, ast.BinOp) else None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        value = node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = -_evaluate_node(node.operand, operators)
    elif isinstance(node, ast.BinOp) and symbol is not None and symbol in operators:
        value = _APPLY[symbol](_evaluate_node(node.left, operators), _evaluate_node(node.right, operators))
    else:
        element = type(getattr(node, "op", node)).__name__  # Pow, FloorDiv, UAdd, Constant (a float), ...
        raise _Malformed(f"expects integers, {' '.join(operators)} and unary minus only; given a {element} element")
    if abs(value) > MAX_MAGNITUDE:
        raise _Malformed(f"expects values of magnitude at most 10**{len(str(MAX_MAGNITUDE)) - 1}")
    return value


def _template_body(question: str, pattern: re.Pattern[str], template: str) -> str:
    match = pattern.fullmatch(question.strip())
    if match is None:
        raise _Mismatch(f"expects the template {template!r}")
    return match.group("body")


def _number_list(body: str, *, template: str) -> list[int]:
    parts = [part.strip() for part in body.split(",")]
    if not 2 <= len(parts) <= MAX_LIST_NUMBERS:
        raise _Malformed(f"expects 2 to {MAX_LIST_NUMBERS} numbers in {template!r}; given {body!r}")
    if not all(re.fullmatch(rf"[1-9][0-9]{{0,{MAX_LITERAL_DIGITS - 1}}}", part, re.ASCII) for part in parts):
        raise _Malformed(
            f"expects positive integers of at most {MAX_LITERAL_DIGITS} ASCII digits, no leading zeros, "
            f"separated by ', ' in {template!r}; given {body!r}"
        )
    return [int(part) for part in parts]


_CHAIN_SUM_TEMPLATE = "State the final answer to the following arithmetic problem: {expression} ="
_CHAIN_SUM = re.compile(r"State the final answer to the following arithmetic problem: (?P<body>.+) =", re.DOTALL)


def _resolve_chain_sum(question: str, config: Any) -> int:
    return _evaluate(_template_body(question, _CHAIN_SUM, _CHAIN_SUM_TEMPLATE), "+-", parentheses=False)


# basic_arithmetic: format_style="simple" asks "Calculate {e}."; "natural" picks one of the other four.
_BASIC_TEMPLATES = (
    "Calculate {expression}.",
    "What is {expression}?",
    "Solve {expression}.",
    "Compute {expression}.",
    "Evaluate: {expression}.",
)
_BASIC = re.compile(
    r"(?:Calculate (?P<calculate>.+)\.|What is (?P<what>.+)\?|Solve (?P<solve>.+)\.|Compute (?P<compute>.+)\."
    r"|Evaluate: (?P<evaluate>.+)\.)",
    re.DOTALL,
)


def _resolve_basic_arithmetic(question: str, config: Any) -> int:
    if not getattr(config, "allow_parentheses", True):
        # Without parentheses the dataset computes its gold left to right ("2 + 3 * 4" -> 20) and may divide
        # by another number than the one it prints: its answers do not follow from its questions.
        raise _Mismatch(
            "basic_arithmetic with allow_parentheses=False: its gold answers do not follow from its questions"
        )
    match = _BASIC.fullmatch(question.strip())
    if match is None:
        raise _Mismatch(f"expects one of the templates {', '.join(map(repr, _BASIC_TEMPLATES))}")
    body = next(group for group in match.groups() if group is not None)
    return _evaluate(body, "+-*/", parentheses=True)


_GCD_TEMPLATE = (
    "Find the Greatest Common Divisor (GCD) of these numbers: {numbers}. Give only the GCD as your final answer."
)
_GCD = re.compile(
    r"Find the Greatest Common Divisor \(GCD\) of these numbers: (?P<body>.+)\. "
    r"Give only the GCD as your final answer\.",
    re.DOTALL,
)


def _resolve_gcd(question: str, config: Any) -> int:
    return reduce(math.gcd, _number_list(_template_body(question, _GCD, _GCD_TEMPLATE), template=_GCD_TEMPLATE))


_LCM_TEMPLATE = "Find the Least Common Multiple (LCM) of these numbers: {numbers}"
_LCM = re.compile(r"Find the Least Common Multiple \(LCM\) of these numbers: (?P<body>.+)", re.DOTALL)


def _resolve_lcm(question: str, config: Any) -> int:
    return reduce(math.lcm, _number_list(_template_body(question, _LCM, _LCM_TEMPLATE), template=_LCM_TEMPLATE))


_PRODUCTS_TEMPLATE = "Solve the following multiplication: {expression}. Give only the result as your final answer."
_PRODUCTS = re.compile(
    r"Solve the following multiplication: (?P<body>.+)\. Give only the result as your final answer\.", re.DOTALL
)


def _resolve_products(question: str, config: Any) -> int:
    return _evaluate(_template_body(question, _PRODUCTS, _PRODUCTS_TEMPLATE), "*", parentheses=False)


Resolver = Callable[[str, Any], int]

# dataset name -> resolver(question, the dataset's config) -> the gold answer as an int.
RESOLVERS: dict[str, Resolver] = {
    "basic_arithmetic": _resolve_basic_arithmetic,
    "chain_sum": _resolve_chain_sum,
    "gcd": _resolve_gcd,
    "lcm": _resolve_lcm,
    "products": _resolve_products,
}


class ReasoningGymTask:
    """Skills backed by reasoning-gym datasets (``reasoning_gym.factory.DATASETS`` lists the names).

    ``configs`` maps a dataset name to keyword arguments of its config class (not ``size``/``seed``).

    Example:
        >>> import numpy as np
        >>> task = ReasoningGymTask(["chain_sum", "gcd"], configs={"gcd": {"max_value": 100}})
        >>> ex = task.generate("gcd", 1, np.random.default_rng(0))[0]
        >>> task.score(ex, ex.answer), task.score(ex, "wrong")
        (1.0, 0.0)
    """

    def __init__(self, datasets: Sequence[str], configs: dict[str, dict[str, Any]] | None = None) -> None:
        datasets = list(datasets)
        if not datasets:
            raise InvalidConfig("Expects at least one reasoning-gym dataset name, e.g. ['chain_sum']; actual [].")
        for name in datasets:
            if name not in DATASETS:
                raise unknown_name_error("reasoning-gym dataset", name, DATASETS)
        if len(set(datasets)) != len(datasets):
            raise InvalidConfig(f"Expects distinct dataset names; actual {datasets}.")
        self._configs = {name: dict(cfg) for name, cfg in (configs or {}).items()}
        for name, cfg in self._configs.items():
            if name not in datasets:
                raise unknown_name_error("dataset in configs (not in this task)", name, datasets)
            if {"size", "seed"} & set(cfg):
                raise InvalidConfig(f"Expects no 'size' or 'seed' in configs[{name!r}]; generate() sets them.")
        self.name = "rg:" + ",".join(datasets)
        self._skills = [Skill(name, _description(name), "reasoning_gym") for name in datasets]
        # One dataset per skill, built now so a bad config fails here; its score_answer is the verifier.
        self._scorers = {name: self._dataset(name, size=1, seed=0) for name in datasets}
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}  # (skill, question) -> original entry

    def _dataset(self, name: str, *, size: int, seed: int) -> Any:
        try:
            return reasoning_gym.create_dataset(name, size=size, seed=seed, **self._configs.get(name, {}))
        except (TypeError, AssertionError, ValueError) as err:  # reasoning-gym validates configs with assert
            raise InvalidConfig(f"Invalid config for reasoning-gym dataset {name!r}: {err}") from err

    @property
    def skills(self) -> list[Skill]:
        return list(self._skills)

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]:
        if skill not in self._scorers:
            raise unknown_name_error("skill", skill, self._scorers)
        if n < 0:
            raise InvalidPlan(f"Expects a non-negative number of examples; actual {n}.")
        if n == 0:
            return []
        seed = int(rng.integers(2**31))
        examples = []
        for entry in self._dataset(skill, size=n, seed=seed):
            # A few open-ended datasets (boxnet, graph_color, rubiks_cube, ...) have no gold answer (None).
            question, answer = str(entry["question"]), "" if entry["answer"] is None else str(entry["answer"])
            self._remember((skill, question), entry)
            examples.append(Example(question, answer, skill, jsonable(entry.get("metadata") or {})))
        return examples

    def _remember(self, key: tuple[str, str], entry: dict[str, Any]) -> None:
        self._entries.pop(key, None)
        self._entries[key] = entry
        if len(self._entries) > _MAX_CACHED:
            self._entries.pop(next(iter(self._entries)))

    def score(self, example: Example, answer: str) -> float:
        if example.skill not in self._scorers:
            raise unknown_name_error("skill", example.skill, self._scorers)
        entry = self._entries.get((example.skill, example.question)) or {
            "question": example.question,
            "answer": example.answer,
            "metadata": example.metadata,
        }
        try:
            reward = float(self._scorers[example.skill].score_answer(answer, entry))
        except Exception:  # a dataset's verifier may choke on garbage answers: count them as wrong
            return 0.0
        return min(max(reward, 0.0), 1.0) if np.isfinite(reward) else 0.0

    def verify(self, example: Example) -> Verification:
        """Re-solve a teacher's question with the dataset's resolver and judge ``example.answer`` with the
        dataset's own ``score_answer`` against the recomputed gold (so ``"+01,000.00"`` passes for chain_sum
        exactly when the dataset would accept it); a score below 1.0 is ``WRONG_ANSWER``.

        ``example.answer`` and ``example.metadata`` are never trusted, and the cache of generated entries is not
        used, so the verdict is the same in a fresh process. A question of another resolvable dataset is
        ``WRONG_SKILL``; a dataset without a resolver, or a question outside the template, ``UNVERIFIABLE``; the
        template with invalid content (garbage, a division by zero), ``MALFORMED``.

        Raises:
            UnknownName: ``example.skill`` is not a skill of this task.
        """
        skill = example.skill
        if skill not in self._scorers:
            raise unknown_name_error("skill", skill, self._scorers)
        if not isinstance(example.question, str) or not isinstance(example.answer, str):
            return Verification(Verdict.MALFORMED, "expects the question and the answer as strings")
        resolver = RESOLVERS.get(skill)
        if resolver is None:
            return Verification(
                Verdict.UNVERIFIABLE,
                f"no independent resolver for reasoning-gym dataset {skill!r} (resolvable: {', '.join(RESOLVERS)})",
            )
        if len(example.question) > MAX_QUESTION_CHARS:
            return Verification(
                Verdict.MALFORMED,
                f"{skill}: expects at most {MAX_QUESTION_CHARS} characters; given {len(example.question)}",
            )
        try:
            gold = str(resolver(example.question, self._scorers[skill].config))
        except (_Mismatch, _Malformed) as err:
            other = self._resolving_dataset(example.question, skill)
            if other is not None:
                return Verification(Verdict.WRONG_SKILL, f"filed under {skill!r}, but it is a {other!r} question")
            if isinstance(err, _Malformed):
                return Verification(Verdict.MALFORMED, f"{skill}: {err}")
            return Verification(Verdict.UNVERIFIABLE, f"{skill}: {err}; given {example.question[:200]!r}")
        entry = {"question": example.question, "answer": gold, "metadata": {}}
        try:
            reward = float(self._scorers[skill].score_answer(example.answer, entry))
        except Exception:  # a dataset's verifier may choke on garbage answers: count them as wrong
            reward = 0.0
        if not reward >= 1.0:
            return Verification(
                Verdict.WRONG_ANSWER,
                f"expects {gold[:200]!r} (the dataset's score_answer gives {reward:.3g}); "
                f"given {example.answer[:200]!r}",
            )
        return Verification(Verdict.CORRECT, f"re-solved: {gold!r}")

    def _resolving_dataset(self, question: str, skill: str) -> str | None:
        """Another dataset whose resolver solves ``question`` (with this task's config for it, else the
        dataset's default config), if any: the question is then of the wrong skill, not garbage."""
        for name, resolver in RESOLVERS.items():
            if name == skill:
                continue
            config = self._scorers[name].config if name in self._scorers else DATASETS[name][1]()
            try:
                resolver(question, config)
            except (_Mismatch, _Malformed):
                continue
            return name
        return None

    def heldout_key(self, question: str) -> str:
        """:func:`skills.task.normalize_question`: case, whitespace, punctuation and compatibility forms are
        ignored, so a teacher's near-copy of a validation/test question is held out with it."""
        return normalize_question(question)
