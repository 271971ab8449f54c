"""The `Student` plug-in point, and the optional capabilities the environment uses when a student has them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from skills.task import Example, PreferencePair


@runtime_checkable
class Student(Protocol):
    """A model a teacher improves through data.

    ``train`` returns its statistics: ``"loss"`` (a float, or None when nothing was trained) and, optionally,
    ``"seconds"`` (else the environment times the step's training as 0). It must be deterministic given ``seed``
    and the student's state; ``save``/``load`` round-trip everything training depends on (weights and optimizer
    state), so an episode can resume exactly.
    """

    def train(self, examples: Sequence[Example], *, seed: int) -> dict[str, Any]: ...

    def answer(self, questions: Sequence[str]) -> list[str]: ...

    def reset(self) -> None:
        """Return to the base weights and a fresh optimizer (DataEnvGym-style retraining)."""
        ...

    def save(self, directory: str | Path) -> None: ...

    def load(self, directory: str | Path) -> None: ...

    def num_parameters(self) -> int: ...


@runtime_checkable
class InputCheckingStudent(Student, Protocol):
    """A student that can say which inputs it cannot take. The environment calls :meth:`check_inputs` on every
    teacher-written example and, at construction, on the task's held-out questions, so a task that does not fit
    the student is refused before an episode starts. A student without it is trusted to handle any text."""

    def check_inputs(self, questions: Sequence[str], answers: Sequence[str] | None = None) -> list[str | None]:
        """For each question (with its answer, for training; without, for evaluation), why this student cannot
        take it (characters its tokenizer cannot represent, longer than its context), or None when it can."""
        ...


@runtime_checkable
class SamplingStudent(Student, Protocol):
    """A student that can sample several answers per question, for STAT's label-free difficulty detection
    (``difficulty="consistency"``: a question whose sampled answers disagree is difficult)."""

    def sample_answers(self, questions: Sequence[str], k: int, *, temperature: float, seed: int) -> list[list[str]]:
        """``k`` sampled answers per question, deterministic given ``seed`` and the student's weights."""
        ...


@runtime_checkable
class SnapshotStudent(Student, Protocol):
    """A student with cheap in-memory copies of its training state, for lookahead (the oracle, tree search).
    For a student without them the environment snapshots through ``save``/``load`` in a temporary directory."""

    def snapshot(self) -> Any:
        """An in-memory copy of everything training depends on."""
        ...

    def restore(self, snapshot: Any) -> None:
        """Return to a :meth:`snapshot` exactly; the snapshot stays reusable."""
        ...


@runtime_checkable
class PreferenceStudent(Student, Protocol):
    """A student that also learns from preference pairs (DPO), for SPaR and any teacher that sends a
    :class:`~envgym.plans.PreferencePlan`. The environment checks for it when it is built, so a preference plan to
    a student without it is refused with a clear message instead of failing mid-episode."""

    def train_preferences(self, pairs: Sequence[PreferencePair], *, seed: int) -> dict[str, Any]:
        """Preference-train on ``pairs`` (deterministic given ``seed`` and the student's state); returns at least
        ``loss`` (None for no pairs) and ``seconds``, like :meth:`Student.train`."""
        ...
