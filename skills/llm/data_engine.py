"""The LLM data engine: a count plan (skill -> n) or a free-form request becomes examples written by an LLM,
kept only once checked.

Each candidate ``{question, answer}`` is checked by the task's independent verifier where the task has one
(arithmetic re-solves the question). Where it cannot (``Verdict.UNVERIFIABLE``: word problems, most reasoning-gym
datasets), it is kept only by **self-consistency** (Wang et al. 2023): the LLM solves the question ``solves``
more times independently and at least ``min_agree`` solves must agree with the candidate's answer, as judged by the
task's own ``score``. The environment's referee still checks every example the engine returns (input limits,
verification, de-duplication, held-out questions), as for a teacher's.

An environment uses it with ``data_engine="llm"`` (``SkillList-v0``, ``OpenEnded-v0``) in place of the task's
procedural generator; the budget is charged per example planned, as always.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, create_model

from skills.llm.client import LLMClient, bounded_text
from skills.llm.templates import render
from skills.task import Example, Task, Verdict, skill_names, verify_example

# Metadata an engine-verified example carries (the referee honours it only for the engine's own plan kinds).
VERIFIED_BY = "verified_by"
SELF_CONSISTENCY = "self-consistency"


Question = bounded_text(2000)
Answer = bounded_text(200)


class GeneratedExample(BaseModel):
    question: Question
    answer: Answer


# STAT-Syn: reference examples shown in one prompt (the paper's 3).
SHOWN_REFERENCES = 3
# Most examples one reply may hold: a bound the schema carries, so constrained decoding cannot loop forever.
MAX_EXAMPLES_PER_REPLY = 16


class GeneratedExamples(BaseModel):
    examples: list[GeneratedExample] = Field(max_length=MAX_EXAMPLES_PER_REPLY)


class Solution(BaseModel):
    answer: Answer


class GeneratedQuestions(BaseModel):
    questions: list[Question] = Field(max_length=MAX_EXAMPLES_PER_REPLY)


class LLMDataEngine:
    """Write training examples with an LLM and keep the verified ones (see the module docstring).

    Args:
        task: the task whose skills, format and verifier the examples must fit.
        client: the LLM client (any OpenAI-compatible endpoint).
        examples_per_request: examples asked for in one request (at most ``MAX_EXAMPLES_PER_REPLY``).
        max_requests_per_skill: requests per skill and call at most, so an LLM that cannot write a skill's
            problems costs a bounded amount.
        solves: independent solves per unverifiable candidate; ``min_agree`` of them must match its answer.
        temperature: sampling temperature of generation and of the solves (each request has its own seed).
        shots: the task's own examples shown in a prompt, from its generator (never validation or test ones).
    """

    trusted = False  # its data goes through the full referee

    def __init__(
        self,
        task: Task,
        client: LLMClient,
        *,
        examples_per_request: int = 8,
        max_requests_per_skill: int = 4,
        solves: int = 3,
        min_agree: int = 2,
        temperature: float = 0.7,
        shots: int = 3,
    ) -> None:
        self.task = task
        self.client = client
        self.examples_per_request = examples_per_request
        self.max_requests_per_skill = max_requests_per_skill
        self.solves = solves
        self.min_agree = min_agree
        self.temperature = temperature
        self.shots = shots
        self.skills = skill_names(task)

    def close(self) -> None:
        self.client.close()

    def for_counts(self, counts: Mapping[str, int], rng: np.random.Generator) -> tuple[list[Example], dict[str, Any]]:
        """Up to ``counts[skill]`` verified examples per skill, and what it took (``stats``)."""
        before = self.client.usage.to_dict()
        stats: Counter[str] = Counter()
        out: list[Example] = []
        for skill, n in counts.items():
            if n <= 0:
                continue
            description = next(s.description for s in self.task.skills if s.name == skill)
            shots = self.task.generate(skill, self.shots, rng)
            kept: list[Example] = []
            for _ in range(self.max_requests_per_skill):
                if len(kept) >= n:
                    break
                prompt = render(
                    "generate_examples.jinja",
                    skill=skill,
                    description=description,
                    examples=shots,
                    n=min(self.examples_per_request, n - len(kept)),
                )
                reply = self.client.structured(prompt, GeneratedExamples, **self._sampling(rng))
                candidates = [] if reply.value is None else reply.value.examples
                kept += self._checked(
                    [Example(c.question.strip(), c.answer.strip(), skill) for c in candidates], rng, stats
                )
            out += kept[:n]
        return out, self._stats(stats, out, before)

    def for_request(self, text: str, n: int, rng: np.random.Generator) -> tuple[list[Example], dict[str, Any]]:
        """Up to ``n`` verified examples fitting the free-form ``text``; the LLM files each under a task skill."""
        before = self.client.usage.to_dict()
        stats: Counter[str] = Counter()
        schema = _request_schema(tuple(self.skills))
        shots = [ex for skill in self.skills for ex in self.task.generate(skill, 1, rng)]
        kept: list[Example] = []
        for _ in range(self.max_requests_per_skill):
            if len(kept) >= n:
                break
            prompt = render(
                "generate_from_request.jinja",
                request=text,
                skills=self.task.skills,
                examples=shots,
                n=min(self.examples_per_request, n - len(kept)),
            )
            reply = self.client.structured(prompt, schema, **self._sampling(rng))
            candidates = [] if reply.value is None else reply.value.examples
            kept += self._checked(
                [Example(c.question.strip(), c.answer.strip(), c.skill) for c in candidates], rng, stats
            )
        return kept[:n], self._stats(stats, kept[:n], before)

    def for_references(
        self, references: Sequence[Example], skill: str, n: int, rng: np.random.Generator
    ) -> tuple[list[Example], dict[str, Any]]:
        """STAT-Syn: up to ``n`` new questions of ``skill`` in the style of ``references``, each solved ``solves``
        times; a question is kept only when at least ``min_agree`` solutions agree on one final answer (equal up
        to case and spacing), with that answer. The referee then verifies it where the task can
        (an agreed wrong answer is rejected there), and accepts it by this consensus where it cannot."""
        before = self.client.usage.to_dict()
        stats: Counter[str] = Counter()
        description = next(s.description for s in self.task.skills if s.name == skill)
        kept: list[Example] = []
        seen: set[str] = set()
        for request in range(self.max_requests_per_skill):
            if len(kept) >= n:
                break
            start = request * SHOWN_REFERENCES % max(1, len(references))  # each request shows the next references
            prompt = render(
                "generate_like_references.jinja",
                skill=skill,
                description=description,
                examples=[*references[start:], *references[:start]][:SHOWN_REFERENCES],
                n=min(self.examples_per_request, n - len(kept)),
            )
            reply = self.client.structured(prompt, GeneratedQuestions, **self._sampling(rng))
            for question in [] if reply.value is None else reply.value.questions:
                question = question.strip()
                stats["generated"] += 1
                if question in seen:
                    stats["duplicate"] += 1
                    continue
                seen.add(question)
                example = self._consensus(question, skill, rng)
                if example is None:
                    stats["no_consensus"] += 1
                elif len(kept) < n:
                    kept.append(example)
        return kept, self._stats(stats, kept, before)

    def _consensus(self, question: str, skill: str, rng: np.random.Generator) -> Example | None:
        """``question`` with the answer at least ``min_agree`` of ``solves`` independent solutions agree on."""
        prompt = render("solve.jinja", question=question)
        seeds = [self._sampling(rng) for _ in range(self.solves)]
        replies = self.client.map(lambda sampling: self.client.structured(prompt, Solution, **sampling), seeds)
        answers = [" ".join(reply.value.answer.split()) for reply in replies if reply.value is not None]
        for answer in answers:
            agree = sum(other.casefold() == answer.casefold() for other in answers)
            if answer and agree >= self.min_agree:
                metadata = {VERIFIED_BY: SELF_CONSISTENCY, "agreeing_solves": f"{agree}/{self.solves}"}
                return Example(question, answer, skill, metadata)
        return None

    # -- checking --------------------------------------------------------------------------------------
    def _checked(self, candidates: Sequence[Example], rng: np.random.Generator, stats: Counter[str]) -> list[Example]:
        stats["generated"] += len(candidates)
        kept = []
        for example in candidates:
            verdict = verify_example(self.task, example).verdict
            if verdict is Verdict.CORRECT:
                kept.append(example)
            elif verdict is Verdict.UNVERIFIABLE:
                agree = self._agreeing_solves(example, rng)
                if agree >= self.min_agree:
                    metadata = {VERIFIED_BY: SELF_CONSISTENCY, "agreeing_solves": f"{agree}/{self.solves}"}
                    kept.append(Example(example.question, example.answer, example.skill, metadata))
                else:
                    stats["no_consensus"] += 1
            else:
                stats[verdict.value] += 1
        return kept

    def _agreeing_solves(self, example: Example, rng: np.random.Generator) -> int:
        prompt = render("solve.jinja", question=example.question)
        seeds = [self._sampling(rng) for _ in range(self.solves)]
        replies = self.client.map(lambda sampling: self.client.structured(prompt, Solution, **sampling), seeds)
        return sum(reply.value is not None and self.task.score(example, reply.value.answer) >= 1.0 for reply in replies)

    def _sampling(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"temperature": self.temperature, "seed": int(rng.integers(2**31))}

    def _stats(self, stats: Counter[str], kept: list[Example], before: Mapping[str, Any]) -> dict[str, Any]:
        failed = {key: value for key, value in sorted(stats.items()) if key != "generated"}
        return {
            "data_engine": {
                "engine": "llm",
                "generated": stats["generated"],
                "kept": len(kept),
                "failed": failed,
                "llm_usage": self.client.usage.since(before),
            }
        }


def _request_schema(skills: tuple[str, ...]) -> type[BaseModel]:
    """The reply schema of a free-form request: each example filed under one of the task's skills."""
    item = create_model(
        "RequestedExample",
        skill=(Literal[skills], ...),  # type: ignore[valid-type]
        question=(Question, ...),
        answer=(Answer, ...),
    )
    return create_model(
        "RequestedExamples",
        examples=(list[item], Field(max_length=MAX_EXAMPLES_PER_REPLY)),  # type: ignore[valid-type]
    )
