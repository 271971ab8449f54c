"""The `Task` plug-in point: skills, a seeded example generator and a verifier."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import networkx as nx
import numpy as np

from skills.errors import InvalidConfig, InvalidPlan, unknown_name_error


@dataclass(frozen=True)
class Skill:
    """A named, described unit of competence a teacher can target."""

    name: str
    description: str
    category: str = "general"


@dataclass(frozen=True)
class Example:
    """One question/answer pair tagged with the skill it exercises."""

    question: str
    answer: str
    skill: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Example:
        return _from_dict(cls, data, "an example", ("question", "answer", "skill"))


@dataclass(frozen=True)
class CheckResult:
    """One checker's outcome on a response: a task's constraint (or ``"echo"``, the request itself) and whether the
    response satisfies it (``InstructionTask.check``; judges and refiners read it)."""

    name: str
    passed: bool
    description: str = ""


@dataclass(frozen=True)
class PreferencePair:
    """A DPO preference pair: two answers to one question, ``chosen`` preferred over ``rejected``.

    SPaR's pairs differ only where the instruction was (not) followed: ``chosen`` is a refinement of ``rejected``.
    The environment trains on a pair only when ``chosen`` passes the task's verifier (as an example of ``skill``)."""

    question: str
    chosen: str
    rejected: str
    skill: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def chosen_example(self) -> Example:
        return Example(self.question, self.chosen, self.skill)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreferencePair:
        return _from_dict(cls, data, "a preference pair", ("question", "chosen", "rejected", "skill"))


def _from_dict(cls: type, data: dict[str, Any], what: str, names: tuple[str, ...]) -> Any:
    """``cls`` from a stored row (a run file): the text fields as strings, the metadata as a dict."""
    missing = set(names) - set(data)
    if missing:
        raise InvalidPlan(
            f"Expects {what} with keys {', '.join(names)}; actual keys {sorted(data)} (missing {sorted(missing)})."
        )
    return cls(*(str(data[name]) for name in names), metadata=dict(data.get("metadata") or {}))


class Verdict(str, Enum):
    """What a task's independent check says about a (question, answer, skill) example."""

    CORRECT = "correct"  # the task re-solved the question and the answer matches
    WRONG_ANSWER = "wrong_answer"  # re-solved, and the answer differs
    WRONG_SKILL = "wrong_skill"  # a valid question, but not one of the skill it is filed under
    MALFORMED = "malformed"  # not a question in the task's format (foreign characters, garbage)
    UNVERIFIABLE = "unverifiable"  # the task cannot re-solve this question on its own


@dataclass(frozen=True)
class Verification:
    """A :class:`Verdict` and a short human-readable reason (shown to teachers and written to logs)."""

    verdict: Verdict
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.CORRECT


@dataclass(frozen=True)
class Diagnosis:
    """What a task's optional ``diagnose(question, answer, skill)`` makes of a wrong answer: the error pattern and
    the skills it shows missing (:mod:`skills.attribution`; empty: the task cannot tell)."""

    error: str
    skills: tuple[str, ...] = ()


@runtime_checkable
class Task(Protocol):
    """A family of verifiable skills.

    Implementations generate examples from a numpy ``Generator`` (so the same seed gives the same data)
    and score a student's answer against an example (1.0 correct, 0.0 wrong, partial credit allowed).
    """

    name: str

    @property
    def skills(self) -> Sequence[Skill]: ...

    def generate(self, skill: str, n: int, rng: np.random.Generator) -> list[Example]: ...

    def score(self, example: Example, answer: str) -> float:
        """Score ``answer`` against a *trusted* example (one the task generated: validation, test, pool data)."""
        ...

    def verify(self, example: Example) -> Verification:
        """Check an *untrusted* example (a teacher's) independently of its own ``answer`` and ``metadata``: re-solve
        the question, check it belongs to ``example.skill``, or say that it cannot (``Verdict.UNVERIFIABLE``)."""
        ...

    def heldout_key(self, question: str) -> str:
        """A canonical form of a question: two questions with the same key count as the same question
        when keeping training data away from validation/test (e.g. ``38+47=`` and ``47+38=``)."""
        ...


_DASH = "-"
_MULTIPLY = "*"
_DIVIDE = "/"
# Look-alikes of the ASCII operators that NFKC leaves alone (U+2212 minus is category Sm, not a dash).
_OPERATOR_LOOKALIKES = {
    "\u2212": _DASH,  # minus sign
    "\u2796": _DASH,  # heavy minus sign
    "\u02d7": _DASH,  # modifier letter minus sign
    "\u00d7": _MULTIPLY,  # multiplication sign
    "\u2217": _MULTIPLY,  # asterisk operator
    "\u22c5": _MULTIPLY,  # dot operator
    "\u00b7": _MULTIPLY,  # middle dot
    "\u2715": _MULTIPLY,  # multiplication x
    "\u2716": _MULTIPLY,  # heavy multiplication x
    "\u2a09": _MULTIPLY,  # n-ary times operator
    "\u00f7": _DIVIDE,  # division sign
    "\u2215": _DIVIDE,  # division slash
    "\u2044": _DIVIDE,  # fraction slash (NFKC writes '½' as '1⁄2')
}


class _KeyCharTable(dict[int, str | None]):
    """``str.translate`` table for :func:`normalize_question`, filled in lazily one character at a time.

    Maps every dash and minus look-alike to ``-``, multiplication/division look-alikes to ``*``/``/``, keeps
    letters (L*), numbers (N*), symbols (S*) and the ASCII operators ``-*/``, and deletes everything else:
    whitespace and separators (Z*), control, format and unassigned characters (C*, zero-width spaces included),
    combining marks (M*) and punctuation (P*).
    """

    def __missing__(self, codepoint: int) -> str | None:
        char = chr(codepoint)
        category = unicodedata.category(char)
        if char in _OPERATOR_LOOKALIKES:
            value: str | None = _OPERATOR_LOOKALIKES[char]
        elif category == "Pd":
            value = _DASH
        elif char in (_MULTIPLY, _DIVIDE) or category[0] in "LNS":
            value = char
        else:
            value = None
        self[codepoint] = value
        return value


_KEY_CHARS = _KeyCharTable({ord("`"): None})  # a Markdown code span, not a symbol of the question
_MARKDOWN_BOLD = re.compile(r"\*{2,}")
_EDGES = re.compile(r"^\W+|\W+$")


def normalize_question(question: str) -> str:
    """Default held-out key: a deliberately aggressive canonical form of a question.

    NFKC (full-width and other compatibility forms become ASCII), case-folded, every whitespace, control and
    format character (zero-width spaces included) and combining mark removed, every dash and minus look-alike
    turned into ``-`` (and times/division look-alikes into ``*``/``/``), and all other punctuation (``?.,!``,
    quotes, brackets...) dropped; letters, digits and symbols (``+ = < > * / ^ $``...) are kept, except
    Markdown decoration (backticks, ``**`` runs) and anything before the first or after the last letter or
    digit (``**...**``, ``> ...``, a trailing ``=`` or ``?``).

    Why so aggressive: this key decides which questions are held out for validation/test. Two different
    questions that share a key (``"1,5"`` and ``"15"``) only keep a few more questions away from training,
    which is harmless; a near-copy of a test question that gets a *different* key (an extra ``?``, a full-width
    digit, a zero-width space) would leak it into training. So when in doubt, this merges.
    """
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", question).casefold())
    text = _MARKDOWN_BOLD.sub("", text.translate(_KEY_CHARS))
    return _EDGES.sub("", text)


def slug(text: str, fallback: str = "unnamed") -> str:
    """A skill name from free text, stable across runs: ``"Counting & Probability"`` -> ``"counting_and_probability"``
    (MATH's own directory names), ``"Carry Over!"`` -> ``"carry_over"``; at most 60 characters."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower().replace("&", " and ")).strip("_")[:60] or fallback


def skill_names(task: Task) -> list[str]:
    return [skill.name for skill in task.skills]


def verify_example(task: Task, example: Example) -> Verification:
    """The task's independent verdict on an untrusted example; ``UNVERIFIABLE`` for a task without ``verify``."""
    verify = getattr(task, "verify", None)
    if verify is None:
        return Verification(Verdict.UNVERIFIABLE, f"task {task.name!r} defines no verify(example) method")
    return verify(example)


def verify_examples(task: Task, examples: Sequence[Example]) -> list[Verification]:
    """:func:`verify_example` for many: the task's optional ``verify_many(examples)`` where it has one (a code
    task runs the programs in parallel), else one by one."""
    verify_many = getattr(task, "verify_many", None)
    if verify_many is None or not examples:
        return [verify_example(task, example) for example in examples]
    verdicts = list(verify_many(examples))
    if len(verdicts) != len(examples):
        raise InvalidConfig(
            f"Expects task {task.name!r}'s verify_many to return one verdict per example ({len(examples)}); "
            f"actual {len(verdicts)}."
        )
    return verdicts


def score_answers(
    task: Task, examples: Sequence[Example], answers: Sequence[str], *, visible: bool = False
) -> list[float]:
    """``task.score`` for many answers: the task's optional ``score_many(examples, answers)`` where it has one
    (a code task runs the programs in parallel), else one by one. ``visible``: a task's optional
    ``score_visible_many`` instead where it has one (a code task's tests shown in the question, what LbT scores
    students on), else the usual score."""
    score_many = getattr(task, "score_visible_many", None) if visible else None
    score_many = score_many or getattr(task, "score_many", None)
    if score_many is None:
        return [task.score(example, answer) for example, answer in zip(examples, answers, strict=True)]
    scores = [float(score) for score in score_many(examples, answers)]
    if len(scores) != len(examples):
        raise InvalidConfig(
            f"Expects task {task.name!r}'s score_many to return one score per answer ({len(examples)}); "
            f"actual {len(scores)}."
        )
    return scores


def prerequisite_edges(task: Task) -> list[tuple[str, str]]:
    """The task's ``(prerequisite, skill)`` pairs (its optional ``prerequisites`` attribute), checked: both ends
    are skills of the task and the pairs form no cycle."""
    edges = [(str(a), str(b)) for a, b in getattr(task, "prerequisites", ())]
    names = skill_names(task)
    for edge in edges:
        for end in edge:
            if end not in names:
                raise unknown_name_error(f"skill in the prerequisites of task {task.name!r}", end, names)
    if not nx.is_directed_acyclic_graph(nx.DiGraph(edges)):
        raise InvalidConfig(f"Expects the prerequisites of task {task.name!r} to form no cycle; actual {edges}.")
    return edges


def taxonomy(task: Task) -> nx.DiGraph:
    """The skill taxonomy as a DiGraph. ``relation="contains"`` edges form the tree ``root -> category -> skill``
    (a tree later work can deepen); ``relation="prerequisite"`` edges go from a skill to the skills that build on
    it (``add_carry -> add_3d_carry``), so teachers such as Skill-It can model transfer."""
    graph = nx.DiGraph()
    root = task.name
    graph.add_node(root, kind="root")
    for skill in task.skills:
        graph.add_node(skill.category, kind="category")
        graph.add_edge(root, skill.category, relation="contains")
        graph.add_node(skill.name, kind="skill", description=skill.description)
        graph.add_edge(skill.category, skill.name, relation="contains")
    graph.add_edges_from(prerequisite_edges(task), relation="prerequisite")
    return graph
