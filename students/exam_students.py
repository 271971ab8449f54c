"""Exam takers for learning by teaching (LbT): frozen students that answer prompts holding an in-context example.

In LbT a teacher's rationale is scored by how well students do on an exam when that rationale is their in-context
example. An exam student only continues prompts; it is never trained. Two kinds ship:

* :class:`EndpointExamStudent`: a model behind any OpenAI-compatible server (the local Gemma-3-270M server,
  ``vllm serve``, OpenAI), asked through the completions API, so the in-context example is raw text a base model
  continues; its decoding (temperature) is part of the student, so one model at two temperatures is two students.
* :class:`LocalExamStudent`: an envgym :class:`~students.base.Student` (``"default"``, ``"gemma-3-270m"``, a model
  directory) answering the prompts greedily in this process.

Example:
    >>> from students.exam_students import make_exam_students
    >>> students = make_exam_students([{"base_url": "http://127.0.0.1:8000/v1", "temperature": 0.7}])
    >>> students[0].name
    'gemma-3-270m@t0.7'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from skills.errors import InvalidConfig
from skills.llm import LLMClient
from skills.llm.client_config import LLMClientConfig
from skills.rationale import cut_at_stop

# Most tokens an exam student writes after the prompt: a rationale and its answer line.
EXAM_MAX_TOKENS = 96


@runtime_checkable
class ExamStudent(Protocol):
    """A frozen student: continues each prompt (an in-context example, then the exam question)."""

    name: str

    def complete(self, prompts: Sequence[str], *, stop: Sequence[str], seed: int) -> list[str]:
        """One continuation per prompt, cut at the first of ``stop``; ``seed`` seeds any sampling."""
        ...


class EndpointExamStudent:
    """A model behind an OpenAI-compatible completions endpoint, at a fixed temperature.

    Args:
        llm: the endpoint (an :class:`~skills.llm.client_config.LLMClientConfig` or a dict of its fields); its
            ``api`` is forced to ``"completions"``.
        name: how reports name this student (default: ``<model>@t<temperature>``).
    """

    def __init__(self, llm: LLMClientConfig | Mapping[str, Any], *, name: str | None = None) -> None:
        fields = llm.to_dict() if isinstance(llm, LLMClientConfig) else dict(llm)
        fields.setdefault("max_tokens", EXAM_MAX_TOKENS)
        self.client = LLMClient({**fields, "api": "completions"})
        config = self.client.config
        self.name = name or f"{config.model}@t{config.temperature:g}"

    def complete(self, prompts: Sequence[str], *, stop: Sequence[str], seed: int) -> list[str]:
        return self.client.map(lambda prompt: self.client.complete(prompt, stop=list(stop), seed=seed), prompts)

    def use_cache_dir(self, path: Any) -> None:
        self.client.use_cache_dir(path)

    def close(self) -> None:
        self.client.close()


class LocalExamStudent:
    """An envgym student answering greedily in this process; the whole prompt is its question.

    The default tiny student was only ever trained on bare questions (``47+38=``), so a prompt with an in-context
    example is far outside what it knows: it takes part where a task's prompts fit its context, as a floor.
    """

    def __init__(self, student: Any = "default", *, name: str | None = None) -> None:
        from students.factory import make_student

        self.student = make_student(student)
        self.name = name or (student if isinstance(student, str) else type(student).__name__)

    def complete(self, prompts: Sequence[str], *, stop: Sequence[str], seed: int) -> list[str]:
        check_inputs = getattr(self.student, "check_inputs", None)
        problems = check_inputs(list(prompts)) if check_inputs is not None else [None] * len(prompts)
        fitting = [i for i, problem in enumerate(problems) if problem is None]
        answers = self.student.answer([prompts[i] for i in fitting]) if fitting else []
        out = [""] * len(prompts)  # a prompt beyond the student's context is unanswered: scored wrong
        for i, answer in zip(fitting, answers, strict=True):
            out[i] = cut_at_stop(answer, list(stop))
        return out

    def close(self) -> None:
        close = getattr(self.student, "close", None)
        if callable(close):
            close()


def make_exam_students(specs: Sequence[Any]) -> list[ExamStudent]:
    """Exam students from specs: a dict of endpoint settings (``LLMClientConfig`` fields, plus an optional
    ``name``), a student name or model directory (a :class:`LocalExamStudent`), or an :class:`ExamStudent`."""
    if isinstance(specs, (str, Mapping)) or not isinstance(specs, Sequence) or not specs:
        raise InvalidConfig(
            "Expects a non-empty list of exam students, e.g. [{'base_url': 'http://127.0.0.1:8000/v1'}, 'default']; "
            f"actual {specs!r:.200}."
        )
    students: list[ExamStudent] = []
    for spec in specs:
        if isinstance(spec, ExamStudent):
            students.append(spec)
        elif isinstance(spec, Mapping):
            fields = dict(spec)
            name = fields.pop("name", None)
            students.append(EndpointExamStudent(fields, name=name))
        elif isinstance(spec, str):
            students.append(LocalExamStudent(spec))
        else:
            raise InvalidConfig(
                "Expects each exam student as a dict of endpoint settings, a student name or model directory, or "
                f"an object with name and complete(prompts, stop=, seed=); actual {type(spec).__name__}."
            )
    names = [student.name for student in students]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidConfig(
            f"Expects exam students with distinct names (scores are reported per student); {repeated} repeat. "
            "Give each a 'name'."
        )
    return students
