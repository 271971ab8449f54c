"""Missing-skill attribution (STAT): which skill(s) a student *failed to apply* on a question it got wrong.

STAT (Skill-Targeted Adaptive Training) builds a **missing-skill profile** (MSP): for each difficult validation
question, an attributor names the skills the student's answer shows it lacked, and the MSP is the frequency of
each skill across those attributions. Three attributors share one Protocol (:class:`Attributor`):

* :class:`LabelAttributor` (``"label"``): the question's own skill label, the profile envgym had before.
* :class:`ProgrammaticAttributor` (``"programmatic"``): the task diagnoses the error pattern (``task.diagnose``):
  an addition answer that is the sum with a carry dropped is attributed to the carrying skill (and to the
  question's own skill: carrying failed *there*), a subtraction that forgot to borrow to the borrowing skill, a
  wrong digit in a column that needed neither to plain column arithmetic. Where the task has no ``diagnose``, or
  it cannot tell, the label.
* :class:`LLMAttributor` (``"llm"``): an LLM judges, reasons and names the skills (STAT's prompt: judge / reason /
  skills), through the shared OpenAI-compatible client; names outside the skill list are dropped and counted, and
  a reply naming none falls back to the label.

An environment picks one with ``attributor=`` (``SkillList-v0``, ``OpenEnded-v0``, ``SkillTree-v0``); its
observation's and ``info``'s ``missing_skill_profile`` and each reported error's ``missing_skills`` come from it.

Example:
    >>> from skills import ArithmeticTask
    >>> error = {"question": "58+67=", "answer": "115", "gold": "125", "skill": "add_carry"}
    >>> ProgrammaticAttributor().attribute(ArithmeticTask(), [error])
    [('add_carry',)]
    >>> error = {"question": "358+267=", "answer": "515", "gold": "625", "skill": "add_3d_carry"}
    >>> ProgrammaticAttributor().attribute(ArithmeticTask(), [error])  # both carries dropped
    [('add_carry', 'add_3d_carry')]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, Field

from skills.errors import unknown_name_error
from skills.llm.client import LLMClient, bounded_text
from skills.llm.templates import render
from skills.task import Diagnosis, Example, Task, skill_names

ATTRIBUTORS = ("label", "programmatic", "llm")
# Which validation questions are difficult: the ones answered wrongly, or (label-free) the ones whose sampled answers
# disagree.
DIFFICULTY = ("ground_truth", "consistency")
# The sampling temperature of the consistency check: the student's own distribution.
CONSISTENCY_TEMPERATURE = 1.0
__all__ = [
    "ATTRIBUTORS",
    "DIFFICULTY",
    "Attributor",
    "Diagnosis",
    "LLMAttributor",
    "LabelAttributor",
    "ProgrammaticAttributor",
    "consistency_difficult",
]


@runtime_checkable
class Attributor(Protocol):
    """``attribute(task, errors)``: for each error (``question``, ``answer``, ``gold``, ``skill``), the skills the
    student failed to apply, each one of the task's skills, at least one per error. ``attributes_all``: whether it is
    cheap enough to run on every validation error (an LLM attributor runs on the reported sample only)."""

    name: str
    attributes_all: bool

    def attribute(self, task: Task, errors: Sequence[Mapping[str, str]]) -> list[tuple[str, ...]]: ...


class LabelAttributor:
    """The question's own skill label."""

    name = "label"
    attributes_all = True

    def attribute(self, task: Task, errors: Sequence[Mapping[str, str]]) -> list[tuple[str, ...]]:
        return [(error["skill"],) for error in errors]


class ProgrammaticAttributor:
    """The task's own diagnosis of the error pattern (``task.diagnose(question, answer, skill)``), else the label."""

    name = "programmatic"
    attributes_all = True

    def attribute(self, task: Task, errors: Sequence[Mapping[str, str]]) -> list[tuple[str, ...]]:
        diagnose = getattr(task, "diagnose", None)
        known = set(skill_names(task))
        out = []
        for error in errors:
            skills: tuple[str, ...] = ()
            if callable(diagnose):
                diagnosis = diagnose(error["question"], error["answer"], error["skill"])
                skills = tuple(skill for skill in diagnosis.skills if skill in known)
            out.append(skills or (error["skill"],))
        return out


class _Attribution(BaseModel):
    judgement: bounded_text(400)  # type: ignore[valid-type]
    reason: bounded_text(800)  # type: ignore[valid-type]
    skills: list[bounded_text(80)] = Field(max_length=4)  # type: ignore[valid-type]


class LLMAttributor:
    """STAT's attribution by an LLM: given the question, the student's answer, the reference answer and the skill
    list, it judges the answer, reasons about what went wrong and names the missing skills (JSON). Skill names not
    in the list are dropped and counted in :attr:`unknown_skills`; an invalid reply, or one naming no known skill,
    falls back to the question's label (counted in :attr:`fallbacks`).

    Args:
        llm: the endpoint (an :class:`~skills.llm.LLMClient` or its config / a dict of its fields).
        seed: each request's sampling seed derives from it and the error's position.
        temperature: the sampling temperature (0: greedy).
    """

    name = "llm"
    attributes_all = False

    def __init__(self, llm: Any = None, *, seed: int = 0, temperature: float = 0.0) -> None:
        self.client = llm if isinstance(llm, LLMClient) else LLMClient(llm)
        self.seed = int(seed)
        self.temperature = temperature
        self.unknown_skills: Counter[str] = Counter()
        self.fallbacks = 0

    def attribute(self, task: Task, errors: Sequence[Mapping[str, str]]) -> list[tuple[str, ...]]:
        skills = list(task.skills)
        names = [skill.name for skill in skills]
        prompts = [
            render(
                "attribute_missing_skills.jinja",
                question=error["question"],
                answer=error["answer"],
                gold=error["gold"],
                skills=skills,
            )
            for error in errors
        ]
        seeds = [int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]) for index in range(len(errors))]
        replies = self.client.map(
            lambda job: self.client.structured(job[0], _Attribution, seed=job[1], temperature=self.temperature),
            list(zip(prompts, seeds, strict=True)),
        )
        out = []
        for error, reply in zip(errors, replies, strict=True):
            named: list[str] = []
            for raw in [] if reply.value is None else reply.value.skills:
                skill = raw.strip()
                if skill in names and skill not in named:
                    named.append(skill)
                elif skill not in names:
                    self.unknown_skills[skill] += 1
            if not named:
                self.fallbacks += 1
            out.append(tuple(named) or (error["skill"],))
        return out

    def close(self) -> None:
        self.client.close()


def consistency_difficult(questions: Sequence[Example], samples: Sequence[Sequence[str]]) -> list[dict[str, str]]:
    """STAT's label-free difficulty detection: the questions whose sampled answers have no strict majority, each as
    an error record (``answer`` the most common sample, ``agreement`` its votes out of k). The gold answer is only
    carried along for the record; it decides nothing here.

    >>> from skills.task import Example
    >>> qs = [Example("1+1=", "2", "add"), Example("2+2=", "4", "add")]
    >>> [row["question"] for row in consistency_difficult(qs, [["2", "2", "3"], ["4", "5", "6"]])]
    ['2+2=']
    """
    difficult = []
    for example, answers in zip(questions, samples, strict=True):
        answer, votes = Counter(" ".join(a.split()) for a in answers).most_common(1)[0]
        if votes * 2 <= len(answers):
            difficult.append(
                {
                    "question": example.question,
                    "answer": answer,
                    "gold": example.answer,
                    "skill": example.skill,
                    "agreement": f"{votes}/{len(answers)}",
                }
            )
    return difficult


def make_attributor(name: str, llm: Any = None) -> Attributor:
    """The attributor ``name`` names (:data:`ATTRIBUTORS`); ``llm`` is the endpoint of ``"llm"``."""
    if name == "label":
        return LabelAttributor()
    if name == "programmatic":
        return ProgrammaticAttributor()
    if name == "llm":
        return LLMAttributor(llm)
    raise unknown_name_error("attributor", name, ATTRIBUTORS)


def missing_skill_counts(attributions: Sequence[Sequence[str]], skills: Sequence[str]) -> np.ndarray:
    """How often each of ``skills`` is named across ``attributions`` (an error naming two skills counts for both)."""
    counts = Counter(skill for named in attributions for skill in named)
    return np.array([counts[skill] for skill in skills], dtype=np.float64)


def missing_skill_profile(attributions: Sequence[Sequence[str]], skills: Sequence[str]) -> np.ndarray:
    """The MSP: each skill's share of all attributions (float32, sums to 1; zeros when there are none).

    >>> [round(share, 3) for share in missing_skill_profile([("a",), ("a", "b")], ["a", "b", "c"]).tolist()]
    [0.667, 0.333, 0.0]
    """
    counts = missing_skill_counts(attributions, skills)
    total = counts.sum()
    return (counts / total if total else counts).astype(np.float32)
