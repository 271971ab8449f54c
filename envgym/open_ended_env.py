"""``envgym/OpenEnded-v0``: DataEnvGym's least structured environment. The state is the student's errors, the
action is data."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from envgym.core import TeachingEnv
from envgym.open_ended_config import OpenEndedConfig
from envgym.plans import CountPlan, ExamplesPlan, _describe, whole_count
from skills.errors import InvalidPlan, did_you_mean
from skills.task import Example, Verdict, verify_example

# The observation's text alphabet: printable ASCII. Any other character of a question or answer shows as '?'.
TEXT_CHARSET = string.printable
_QUESTION_CHARS = 64
_ANSWER_CHARS = 16


@dataclass(frozen=True)
class DataRequest:
    """Ask the environment's data engine for ``n`` examples described by ``text`` (a skill's name, or words from
    its description: ``"subtraction with borrowing"``). The procedural engine matches the words to skills and
    generates gold data; an LLM engine (``data_engine="llm"``) writes examples for the text, then verified."""

    text: str
    n: int
    kind: ClassVar[str] = "request"

    @property
    def size(self) -> int:
        return self.n


class ExampleListSpace(spaces.Sequence):
    """Lists of ``{"question", "answer"}`` examples; samples hold at most ``max_examples`` of them (a step's
    budget), so a sampled action is always a legal plan."""

    def __init__(self, max_examples: int, seed: int | None = None) -> None:
        item = spaces.Dict(
            {
                "question": spaces.Text(_QUESTION_CHARS, min_length=1, charset=string.digits + "+-*?="),
                "answer": spaces.Text(_ANSWER_CHARS, min_length=1, charset=string.digits + "<>=-"),
            }
        )
        super().__init__(item, seed=seed)
        self.max_examples = max_examples

    def sample(self, mask: Any = None, probability: Any = None) -> tuple[Any, ...]:
        if mask is None and probability is None:
            length = int(self.np_random.integers(0, min(self.max_examples, 8) + 1))
            return super().sample(mask=(length, None))
        return super().sample(mask=mask, probability=probability)


class OpenEndedEnv(TeachingEnv):
    """DataEnvGym's open-ended structure: no skill list in the state or the action.

    * Observation (``spaces.Dict``): ``accuracy`` (overall validation accuracy, shape ``(1,)``), ``errors`` (the
      first ``error_window`` validation errors of ``info["errors"]`` as text, one per line:
      ``question -> answer (gold gold)``; printable ASCII, cut at ``error_text_chars`` on a line end with
      ``...``), ``budget_left`` and ``step``. The full error records are in ``info["errors"]``.
    * Action: a list of explicit examples ``{"question", "answer", "skill"?}`` (``Example`` objects too; a missing
      skill is inferred by the task's verifier), or a data request ``{"request": text, "n": count}`` /
      :class:`DataRequest`. Teacher examples are refereed as in every envgym env: verified independently,
      de-duplicated by canonical question, dropped if they equal a validation or test question; every drop is
      counted in ``info["rejections"]`` / ``info["dropped_heldout"]``.
    * Reward: the gain in validation accuracy, macro-averaged over the task's skills.

    Example:
        >>> import gymnasium as gym, envgym
        >>> env = gym.make("envgym/OpenEnded-v0", steps=1, budget=8, n_val=5, n_test=5)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step([{"question": "47+38=", "answer": "84"}])
        >>> info["rejections"]
        {'wrong_answer': 1}
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention
    env_id = "envgym/OpenEnded-v0"
    config_class = OpenEndedConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._plan_handlers[DataRequest.kind] = self._data_for_request
        self._engine_kinds.add(DataRequest.kind)
        # A request the procedural engine serves from a pool file is the file's data, verified like a teacher's.
        if self.data_engine.trusted and self.config.pool_file is None:
            self._task_generated_kinds.add(DataRequest.kind)

    def _make_spaces(self) -> tuple[spaces.Dict, ExampleListSpace]:
        observation_space = spaces.Dict(
            {
                "accuracy": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
                "errors": spaces.Text(self.config.error_text_chars, min_length=0, charset=TEXT_CHARSET),
                "budget_left": spaces.Box(0, int(self.config.total_budget), shape=(1,), dtype=np.int64),
                "step": spaces.Discrete(self.config.steps + 1),
            }
        )
        return observation_space, ExampleListSpace(self.config.budget)

    def _observation(self, errors: Sequence[dict[str, str]]) -> dict[str, Any]:
        shown = self.reported_errors(list(errors))[: self.config.error_window]
        return {
            "accuracy": np.array([np.mean(list(self.accuracy.values()))], dtype=np.float32),
            "errors": error_text(shown, self.config.error_text_chars),
            "budget_left": np.array([self.budget_left], dtype=np.int64),
            "step": self.step_index,
        }

    # -- actions -----------------------------------------------------------------------------------------
    def _plan(self, action: Any) -> Any:
        if isinstance(action, Mapping) and "request" in action:
            unknown = sorted(set(action) - {"request", "n"})
            if unknown:
                raise InvalidPlan(f"Expects a data request with keys request and n; actual extra keys {unknown}.")
            if not isinstance(action["request"], str) or not action["request"].strip():
                raise InvalidPlan(f"Expects the request as non-empty text; actual {_describe(action['request'])}.")
            action = DataRequest(action["request"], whole_count(action.get("n"), "the data request"))
        elif isinstance(action, (list, tuple)):
            action = ExamplesPlan([self._with_skill(item) for item in action])
        elif not isinstance(action, (DataRequest, ExamplesPlan)):
            raise InvalidPlan(
                'Expects a list of examples {"question", "answer", "skill"?} or a data request '
                f'{{"request": text, "n": count}}; actual {_describe(action)}.'
            )
        return super()._plan(action)

    def _with_skill(self, item: Any) -> Any:
        """A dict example without a skill gets the one the task's verifier files it under: the skill it is
        correct for, else one it belongs to with a wrong answer, else the first (the referee then rejects it)."""
        if not isinstance(item, Mapping) or "skill" in item:
            return item
        question, answer = item.get("question"), item.get("answer")
        if not isinstance(question, str) or not isinstance(answer, str):
            return {**item, "skill": self.skills[0]}  # validate_plan names the bad field
        verdicts = {skill: verify_example(self.task, Example(question, answer, skill)).verdict for skill in self.skills}
        for wanted in (Verdict.CORRECT, Verdict.WRONG_ANSWER):
            owner = next((skill for skill, verdict in verdicts.items() if verdict is wanted), None)
            if owner is not None:
                return {**item, "skill": owner}
        return {**item, "skill": self.skills[0]}

    def _data_for_request(self, request: DataRequest) -> tuple[list[Example], dict[str, Any]]:
        for_request = getattr(self.data_engine, "for_request", None)
        if for_request is not None:  # an LLM engine reads the request itself
            return for_request(request.text, request.n, self._data_rng)
        matched = self.match_request(request.text)
        counts = dict.fromkeys(self.skills, 0)
        for i, skill in enumerate(matched):
            counts[skill] = request.n // len(matched) + (1 if i < request.n % len(matched) else 0)
        examples, stats = self._data_for_counts(CountPlan(counts))
        return examples, {"request_skills": matched, **stats}

    def match_request(self, text: str) -> list[str]:
        """The skills a free-form request names: a skill name in the text, else the skills whose name and
        description share the most words with it. Raises InvalidPlan when nothing matches."""
        lowered = text.lower()
        named = [skill for skill in self.skills if skill.lower() in lowered]
        if named:
            return named
        words = _stems(text)
        overlap = {
            skill.name: len(words & _stems(f"{skill.name} {skill.description}"))
            for skill in self.task.skills
            if skill.name in self.skills
        }
        best = max(overlap.values(), default=0)
        if best == 0:
            raise InvalidPlan(
                f"Expects a data request naming or describing a skill; actual {text!r} matches none."
                f"{did_you_mean(text, self.skills)} Skills: {', '.join(self.skills)}."
            )
        return [skill for skill, score in overlap.items() if score == best]


_STOP_WORDS = frozenset(
    (
        "a",
        "an",
        "the",
        "of",
        "and",
        "or",
        "to",
        "with",
        "without",
        "at",
        "least",
        "one",
        "two",
        "three",
        "by",
        "from",
        "for",
        "in",
        "on",
        "is",
        "are",
        "numbers",
        "number",
    )
)


def _stems(text: str) -> set[str]:
    """Content words of ``text`` cut to 5 letters, so "borrowing" meets "borrow" and "subtraction" "subtract"."""
    words = re.findall(r"[a-z0-9]+", text.lower().replace("_", " "))
    return {word[:5] for word in words if word not in _STOP_WORDS}


def error_text(errors: Sequence[Mapping[str, str]], limit: int) -> str:
    """Validation errors as lines ``question -> answer (gold gold)``, printable ASCII only, at most ``limit``
    characters: whole lines, then ``...`` when some were cut."""
    allowed = set(TEXT_CHARSET) - set("\r\x0b\x0c")
    lines = []
    for error in errors:
        line = f"{error['question']} -> {error['answer']!r} (gold {error['gold']!r})"
        lines.append("".join(char if char in allowed and char != "\n" else "?" for char in line))
    text = ""
    for line in lines:
        candidate = f"{text}{line}\n"
        if len(candidate) > limit - 3:
            return text + "..."
        text = candidate
    return text
