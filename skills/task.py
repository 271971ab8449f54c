"""The `Task` plug-in point: skills, a seeded example generator and a verifier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import networkx as nx
import numpy as np


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
        missing = {"question", "answer", "skill"} - set(data)
        if missing:
            raise ValueError(
                f"Expects an example with keys question, answer, skill; actual keys {sorted(data)} "
                f"(missing {sorted(missing)})."
            )
        return cls(
            question=str(data["question"]),
            answer=str(data["answer"]),
            skill=str(data["skill"]),
            metadata=dict(data.get("metadata") or {}),
        )


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

    def score(self, example: Example, answer: str) -> float: ...

    def heldout_key(self, question: str) -> str:
        """A canonical form of a question: two questions with the same key count as the same question
        when keeping training data away from validation/test (e.g. ``38+47=`` and ``47+38=``)."""
        ...


def normalize_question(question: str) -> str:
    """Default held-out key: case-folded with whitespace collapsed."""
    return " ".join(question.split()).casefold()


def skill_names(task: Task) -> list[str]:
    return [skill.name for skill in task.skills]


def verify_example(task: Task, example: Example) -> bool:
    """True when the task's own verifier accepts the example's answer as correct."""
    return task.score(example, example.answer) >= 1.0


def taxonomy(task: Task) -> nx.DiGraph:
    """The skill taxonomy as a DiGraph: ``root -> category -> skill`` (a tree later work can deepen)."""
    graph = nx.DiGraph()
    root = task.name
    graph.add_node(root, kind="root")
    for skill in task.skills:
        graph.add_node(skill.category, kind="category")
        graph.add_edge(root, skill.category)
        graph.add_node(skill.name, kind="skill", description=skill.description)
        graph.add_edge(skill.category, skill.name)
    return graph
