"""The data-engine seam: what turns a count plan ``{skill: n}`` into training examples.

Two engines ship: :class:`ProceduralDataEngine` (the task's own generator; gold by construction) and
:class:`skills.llm.data_engine.LLMDataEngine` (an LLM writes examples, kept once verified). An environment picks one
with ``data_engine=``; the loop never branches on which.
"""

from __future__ import annotations

from collections.abc import Mapping
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


class ProceduralDataEngine:
    """The task's generator through the training pool (held-out questions are never drawn)."""

    trusted = True

    def __init__(self, pool: TrainingPool) -> None:
        self.pool = pool

    def for_counts(self, counts: Mapping[str, int], rng: np.random.Generator) -> tuple[list[Example], dict[str, Any]]:
        dropped_before = sum(self.pool.dropped.values())
        examples = self.pool.sample_plan(dict(counts), rng)
        return examples, {"dropped_heldout": sum(self.pool.dropped.values()) - dropped_before}
