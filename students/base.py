"""The `Student` plug-in point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from skills.task import Example


@runtime_checkable
class Student(Protocol):
    """A model a teacher improves through data.

    ``train`` must be deterministic given ``seed`` and the student's state; ``save``/``load`` round-trip
    everything training depends on (weights and optimizer state), so an episode can resume exactly.
    """

    def train(self, examples: Sequence[Example], *, seed: int) -> dict[str, Any]: ...

    def answer(self, questions: Sequence[str]) -> list[str]: ...

    def reset(self) -> None:
        """Return to the base weights and a fresh optimizer (DataEnvGym-style retraining)."""
        ...

    def save(self, directory: str | Path) -> None: ...

    def load(self, directory: str | Path) -> None: ...

    def num_parameters(self) -> int: ...

    def check_inputs(self, questions: Sequence[str], answers: Sequence[str] | None = None) -> list[str | None]:
        """For each question (with its answer, for training; without, for evaluation), why this student cannot
        take it (characters its tokenizer cannot represent, longer than its context), or None when it can.

        The environment calls it on every teacher-written example and, at construction, on the task's held-out
        questions, so a task that does not fit the student is refused before an episode starts. A student
        without this method is trusted to handle any text.
        """
        ...
