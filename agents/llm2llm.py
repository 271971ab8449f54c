"""``llm2llm``: LLM2LLM (Lee et al. 2024, "LLM2LLM: Boosting LLMs with Novel Iterative Data Enhancement").

Each iteration, the teacher LLM looks at the examples the student gets wrong and writes new examples *similar* to
each one; the student trains on them and the loop repeats. Here the wrong answers are the validation errors the
environment reports (``info["errors"]``, a seeded sample), and the new examples go to the environment as an
``ExamplesPlan``: the referee verifies each independently, drops duplicates and anything equal to a held-out
question (a copy of the wrong question itself is dropped there), and charges the budget per example sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agents.llm_teacher import PROMPTS, LLMBackedTeacher
from skills.llm.data_engine import GeneratedExamples
from skills.llm.templates import render


class LLM2LLMTeacher(LLMBackedTeacher):
    """Write ``per_error`` new problems like each wrong validation answer (at most the step's budget in all).

    Args:
        llm: the endpoint (see :class:`~agents.llm_teacher.LLMBackedTeacher`).
        seed: request seeds derive from it, the step and the error's position.
        per_error: new problems asked for per wrong answer (the paper generates a few per seed error).
        max_errors: wrong answers used per step (the first of ``info["errors"]``).
        temperature: sampling temperature (the paper samples; each request has its own seed).
    """

    def __init__(
        self,
        llm: Any = None,
        *,
        seed: int = 0,
        per_error: int = 4,
        max_errors: int = 16,
        temperature: float = 0.7,
    ) -> None:
        super().__init__(llm, seed=seed)
        self.per_error = per_error
        self.max_errors = max_errors
        self.temperature = temperature

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> list[dict[str, str]]:
        budget = int(info["budget_next"])
        errors = list(info.get("errors", []))[: self.max_errors]
        # Enough errors to fill the budget: ceil(budget / per_error) of them at most.
        errors = errors[: math.ceil(budget / self.per_error)] if budget else []
        descriptions = info.get("skill_descriptions", {})
        prompts = [
            render(
                "llm2llm_similar.jinja",
                PROMPTS,
                question=error["question"],
                gold=error["gold"],
                skill=error["skill"],
                description=descriptions.get(error["skill"], error["skill"]),
                n=self.per_error,
            )
            for error in errors
        ]
        seeds = [self._request_seed(info, index) for index in range(len(prompts))]
        replies = self.client.map(
            lambda job: self.client.structured(job[0], GeneratedExamples, seed=job[1], temperature=self.temperature),
            list(zip(prompts, seeds, strict=True)),
        )
        examples: list[dict[str, str]] = []
        seen: set[str] = set()
        for error, reply in zip(errors, replies, strict=True):
            for item in [] if reply.value is None else reply.value.examples[: self.per_error]:
                question = item.question.strip()
                if question in seen or question == error["question"]:
                    continue
                seen.add(question)
                examples.append({"question": question, "answer": item.answer.strip(), "skill": error["skill"]})
        examples = examples[:budget]
        self.last_decision = {
            "errors_used": len(errors),
            "replies": len(replies),
            "invalid_replies": sum(not reply.ok for reply in replies),
            "examples": len(examples),
        }
        return examples
