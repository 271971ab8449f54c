"""LLM teachers behind any OpenAI-compatible endpoint: the ``llm`` policy teacher and what they share.

An LLM teacher is untrusted like any other: its plans go through the environment's referee. A reply that does not
parse or validate never crashes the episode: it is counted (``client.usage.invalid_replies``), logged, and the
teacher falls back to a stated default plan for that step.

Point one at a server with the ``--teacher-*`` flags (``envgym run --teacher llm --teacher-base-url URL
--teacher-model NAME``) or ``LLMTeacher(llm={"base_url": ..., "model": ...})``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, create_model

from agents.base import check_state, counts_plan
from skills.errors import InvalidConfig
from skills.llm import LLMClient, LLMClientConfig, StructuredReply, bounded_text
from skills.llm.templates import render

PROMPTS = Path(__file__).parent / "prompts"
# Errors quoted in a prompt: enough to show the pattern, few enough for a small model's context.
MAX_ERRORS_IN_PROMPT = 8


class LLMBackedTeacher:
    """Shared behaviour of the LLM teachers: the client, the per-step decision log, and state for resume.

    Args:
        llm: the endpoint, an :class:`~skills.llm.LLMClientConfig`, a dict of its fields, or a ready
            :class:`~skills.llm.LLMClient`.
        seed: the sampling seed of each request is derived from it and the step.
    """

    def __init__(self, llm: LLMClient | LLMClientConfig | Mapping[str, Any] | None = None, *, seed: int = 0) -> None:
        self.client = llm if isinstance(llm, LLMClient) else LLMClient(llm)
        self.seed = int(seed)
        # What the teacher decided at its last act(): prompt size, raw reply, validity, the plan (runner logs it).
        self.last_decision: dict[str, Any] = {}

    def _request_seed(self, info: Mapping[str, Any], *extra: int) -> int:
        return int(np.random.SeedSequence([self.seed, int(info.get("step", 0)), *extra]).generate_state(1)[0])

    def _decide(self, prompt: str, reply: StructuredReply[Any], plan_summary: Any, fallback: str | None) -> None:
        self.last_decision = {
            "prompt_chars": len(prompt),
            "reply": reply.raw,
            "valid": reply.ok,
            "error": reply.error,
            "fallback": fallback,
            "plan": plan_summary,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"client": self.client.state_dict(), "last_decision": self.last_decision}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        state = check_state(state, ["client"], type(self).__name__)
        self.client.load_state_dict(state["client"])
        self.last_decision = dict(state.get("last_decision") or {})


class LLMTeacher(LLMBackedTeacher):
    """The ``llm`` policy teacher: an LLM reads the observation and returns the step's plan.

    * **SkillList-v0**: the prompt (``agents/prompts/plan_skill_list.jinja``) lists each skill's description,
      validation accuracy and share of the errors (the missing-skill profile), and some of ``info["errors"]``; the
      reply is a weight per skill, turned into ``{skill: count}`` over the step's budget. An invalid reply, or
      weights that are all zero, fall back to uniform (``last_decision["fallback"]``).
    * **OpenEnded-v0**: the prompt shows the errors text; the reply is a data request ``{"request": text}`` for the
      whole budget, which the environment's data engine fulfils. An invalid reply falls back to a request for the
      skill with the lowest accuracy.
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Any:
        if "errors" in observation and isinstance(observation["errors"], str):
            return self._open_ended(observation, info)
        if "accuracy" in observation and len(np.atleast_1d(observation["accuracy"])) == len(info["skills"]):
            return self._skill_list(observation, info)
        raise InvalidConfig(
            "Expects a SkillList-v0 or OpenEnded-v0 observation (the llm teacher plans for those); actual keys "
            f"{sorted(observation)}."
        )

    def _skill_list(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        skills = list(info["skills"])
        accuracy = np.asarray(observation["accuracy"], dtype=np.float64).reshape(-1)
        missing = info.get("missing_skill_profile", {})
        descriptions = info.get("skill_descriptions", {})
        rows = [
            {
                "name": skill,
                "description": descriptions.get(skill, skill),
                "accuracy": float(accuracy[i]),
                "missing": float(missing.get(skill, 0.0)),
            }
            for i, skill in enumerate(skills)
        ]
        prompt = render(
            "plan_skill_list.jinja",
            PROMPTS,
            skills=rows,
            errors=list(info.get("errors", []))[:MAX_ERRORS_IN_PROMPT],
            budget=int(info["budget_next"]),
            step=int(info.get("step", 0)),
            budget_left=int(np.asarray(observation["budget_left"]).reshape(-1)[0]),
        )
        reply = self.client.structured(prompt, _weights_schema(tuple(skills)), seed=self._request_seed(info))
        weights = np.zeros(len(skills))
        if reply.value is not None:
            for item in reply.value.weights:
                weights[skills.index(item.skill)] += item.weight
        fallback = None
        if reply.value is None:
            fallback = "uniform (invalid reply)"
        elif weights.sum() <= 0:
            fallback = "uniform (all weights zero)"
        plan = counts_plan(np.ones(len(skills)) if fallback else weights, info)
        self._decide(prompt, reply, plan, fallback)
        return plan

    def _open_ended(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        descriptions = info.get("skill_descriptions", {})
        skills = [{"name": s, "description": descriptions.get(s, s)} for s in info["skills"]]
        accuracy = info.get("val_accuracy", {})
        weakest = min(info["skills"], key=lambda skill: accuracy.get(skill, 0.0))
        prompt = render(
            "plan_open_ended.jinja",
            PROMPTS,
            # A concrete reply to imitate: small models copy a "<placeholder>" literally.
            example=descriptions.get(weakest, weakest),
            accuracy=float(np.asarray(observation["accuracy"]).reshape(-1)[0]),
            errors=observation["errors"],
            skills=skills,
            budget=int(info["budget_next"]),
        )
        reply = self.client.structured(prompt, RequestReply, seed=self._request_seed(info))
        fallback = None
        if reply.value is not None:
            text = reply.value.request.strip()
        else:
            text = weakest
            fallback = f"request the weakest skill ({text}; invalid reply)"
        plan = {"request": text, "n": int(info["budget_next"])}
        self._decide(prompt, reply, plan, fallback)
        return plan


class RequestReply(BaseModel):
    request: bounded_text(500)  # type: ignore[valid-type]


def _weights_schema(skills: tuple[str, ...]) -> type[BaseModel]:
    item = create_model(
        "SkillWeight",
        skill=(Literal[skills], ...),  # type: ignore[valid-type]
        weight=(float, Field(ge=0.0, le=1e6)),
    )
    # At most one entry per skill: a grammar-constrained small model otherwise repeats the list until max_tokens.
    return create_model(
        "SkillWeights",
        weights=(list[item], Field(min_length=1, max_length=len(skills))),  # type: ignore[valid-type]
    )
