"""The data-engine seam: what turns a count plan ``{skill: n}`` into training examples.

Two engines ship: :class:`ProceduralDataEngine` (the task's own generator; gold by construction) and
:class:`skills.llm.data_engine.LLMDataEngine` (an LLM writes examples, kept once verified). An environment picks one
with ``data_engine=``; the loop never branches on which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from skills.splits import TrainingPool
from skills.task import Example


@runtime_checkable
class DataEngine(Protocol):
    """``for_counts(counts, rng) -> (examples, stats)``. ``trusted`` engines make gold data (only the student's
    input limits are checked); the referee verifies an untrusted engine's examples like a teacher's."""

    trusted: bool

    def for_counts(
        self, counts: Mapping[str, int], rng: np.random.Generator
    ) -> tuple[list[Example], dict[str, Any]]: ...

    def for_references(
        self, references: Sequence[Example], skill: str, n: int, rng: np.random.Generator
    ) -> tuple[list[Example], dict[str, Any]]:
        """Up to ``n`` new examples of ``skill`` in the style of ``references`` (STAT-Syn)."""
        ...


class ProceduralDataEngine:
    """The task's generator through the training pool (held-out questions are never drawn)."""

    trusted = True

    def __init__(self, pool: TrainingPool) -> None:
        self.pool = pool

    def for_counts(self, counts: Mapping[str, int], rng: np.random.Generator) -> tuple[list[Example], dict[str, Any]]:
        dropped_before = sum(self.pool.dropped.values())
        examples = self.pool.sample_plan(dict(counts), rng)
        return examples, {"dropped_heldout": sum(self.pool.dropped.values()) - dropped_before}

    def for_references(
        self, references: Sequence[Example], skill: str, n: int, rng: np.random.Generator
    ) -> tuple[list[Example], dict[str, Any]]:
        """``n`` distinct neighbours of the references (``task.similar``: operands moved a little, the same skill),
        one per reference in turn, minus held-out questions; fresh draws of the skill where the task has no
        ``similar``. The task's verifier still checks each in the referee."""
        similar = getattr(self.pool.splits.task, "similar", None)
        if not callable(similar) or not references:
            dropped_before = self.pool.dropped[skill]
            examples = self.pool.sample(skill, n, rng)
            return examples, {
                "engine": "procedural",
                "fresh": len(examples),
                "dropped_heldout": self.pool.dropped[skill] - dropped_before,
            }
        out: list[Example] = []
        seen: set[str] = set()
        dropped = turn = 0
        key = self.pool.splits.task.heldout_key
        for _round in range(8):  # neighbours can repeat or be held out: a few rounds fill ``n``
            missing = n - len(out)
            if missing <= 0:
                break
            candidates = []
            for _ in range(missing):
                candidates += similar(references[turn % len(references)].question, skill, 1, rng)
                turn += 1
            kept, held = self.pool.splits.filter_training(candidates)
            dropped += held
            for example in kept:
                canonical = key(example.question)
                if canonical not in seen and len(out) < n:
                    seen.add(canonical)
                    out.append(example)
        return out, {"engine": "procedural", "similar": len(out), "dropped_heldout": dropped}
