"""Judges and refiners for SPaR (self-play with tree-search refinement, Cheng et al. 2024).

An actor's response that fails its instruction is refined step by step (:mod:`agents.tree_search`) until a judge
accepts it; the (refined, original) pair then becomes a DPO preference pair. Two plug-in points, both Protocols:

* :class:`Judge`: ``judge(prompt, response) -> Judgement``: how sure it is that the response follows every
  instruction (``value`` in [0, 1]) and why (``critique``, which the refiner reads).
* :class:`Refiner`: ``refine(prompt, response, critique, n, seed=...) -> list[str]``: up to ``n`` candidate
  refinements of the response (duplicates allowed).

Two implementations of each:

* :class:`ProgrammaticJudge` / :class:`ProgrammaticRefiner`: the task's own checkers (``task.check``) and minimal
  repairs (``task.repair``), so the whole pipeline runs on a CPU without an LLM.
* :class:`LLMJudge` / :class:`LLMRefiner`: SPaR's LLM judge (``n`` sampled judgements, majority vote, a tie is
  resampled) and refiner (the refined response between ``<refined>`` markers), through the shared
  :class:`~skills.llm.LLMClient`; prompts in ``skills/llm/prompts/spar_judge.jinja`` and ``spar_refine.jinja``.

The task contract the programmatic pair reads (duck-typed, see :class:`CheckingTask`): ``check(question, response)``
returns one :class:`CheckResult`-like object (``name``, ``passed``, ``description``) per constraint;
``critique(question, response)`` explains the failures; ``repair(question, response, name)`` is a minimal edit of
the response making check ``name`` pass.

Example:
    >>> class OneCheck:
    ...     def check(self, question, response):
    ...         return [CheckResult("ends_with_dot", response.endswith("."), "ends with a full stop")]
    ...     def critique(self, question, response):
    ...         return "" if response.endswith(".") else "The response must end with a full stop."
    ...     def repair(self, question, response, name):
    ...         return response + "."
    >>> ProgrammaticJudge(OneCheck()).judge("Say hi.", "hi").value
    0.0
    >>> ProgrammaticRefiner(OneCheck()).refine("Say hi.", "hi", "", 2, seed=0)
    ['hi.', 'hi.']
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from skills.errors import InvalidConfig
from skills.llm.client import LLMClient
from skills.llm.templates import render
from skills.task import CheckResult

__all__ = [
    "TIE_UNRESOLVED",
    "CheckResult",
    "CheckingTask",
    "Judge",
    "Judgement",
    "LLMJudge",
    "LLMRefiner",
    "ProgrammaticJudge",
    "ProgrammaticRefiner",
    "Refiner",
    "extract_refined",
    "parse_final_judgement",
]

# The note of an LLM judgement whose yes and no votes were still tied after every round.
TIE_UNRESOLVED = "tie_unresolved"
# Seeds sent to a server stay below 2**31: llama.cpp and vLLM read them as 32-bit integers.
_SEED_LIMIT = 2**31
_FINAL_JUDGEMENT = re.compile(r"[*_#\s]*final[ \t]*judge?ment[*_ \t]*[:：][*_ \t]*(yes|no)\b[*_ \t.!]*", re.IGNORECASE)
_OPEN, _CLOSE = "<refined>", "</refined>"


@dataclass(frozen=True)
class Judgement:
    """A judge's verdict on one response.

    Attributes:
        value: in [0, 1], the share of judgements saying the response follows every instruction (programmatic: 1.0
            when every check passes, else 0.0).
        critique: why, for the refiner (an LLM judge: the analysis of one reply agreeing with the majority).
        votes: ``{"yes": .., "no": .., "unparseable": ..}`` (programmatic: ``{"yes": 1}`` or ``{"no": 1}``).
        score: a finer grade for tie-breaking in the tree (programmatic: the share of checks passed; an LLM judge:
            ``value``); None when the judge has none.
        note: anything unusual, e.g. :data:`TIE_UNRESOLVED`.
    """

    value: float
    critique: str
    votes: dict[str, int] = field(default_factory=dict, hash=False)
    score: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("value", "score"):
            number = getattr(self, name)
            if number is None and name == "score":
                continue
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0.0 <= number <= 1.0:
                raise InvalidConfig(f"Expects a judgement's {name} to be a number in [0, 1]; actual {number!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgement:
        if not isinstance(data, Mapping) or "value" not in data:
            raise InvalidConfig(f"Expects a judgement dict with at least 'value'; actual {data!r:.200}.")
        score = data.get("score")
        return cls(
            value=float(data["value"]),
            critique=str(data.get("critique", "")),
            votes={str(key): int(count) for key, count in dict(data.get("votes") or {}).items()},
            score=None if score is None else float(score),
            note=str(data.get("note", "")),
        )


@runtime_checkable
class Judge(Protocol):
    """``judge(prompt, response)``: does ``response`` follow every instruction in ``prompt``?"""

    def judge(self, prompt: str, response: str) -> Judgement: ...


@runtime_checkable
class Refiner(Protocol):
    """``refine(prompt, response, critique, n, seed=...)``: up to ``n`` candidate refinements of ``response``
    towards ``prompt``'s instructions, guided by the judge's ``critique`` (duplicates allowed; fewer than ``n``
    when candidates had to be dropped). The same arguments and ``seed`` give the same candidates."""

    def refine(self, prompt: str, response: str, critique: str, n: int, *, seed: int) -> list[str]: ...


# -- programmatic ----------------------------------------------------------------------------------------------
@runtime_checkable
class CheckingTask(Protocol):
    """What :class:`ProgrammaticJudge` and :class:`ProgrammaticRefiner` need of a task."""

    def check(self, question: str, response: str) -> Sequence[Any]: ...

    def critique(self, question: str, response: str) -> str: ...

    def repair(self, question: str, response: str, name: str) -> str: ...


class ProgrammaticJudge:
    """The task's checkers: value 1.0 when every check passes, else 0.0; ``score`` the share of checks passed;
    the critique is ``task.critique``."""

    def __init__(self, task: Any) -> None:
        _require(task, ("check", "critique"), type(self).__name__)
        self.task = task

    def judge(self, prompt: str, response: str) -> Judgement:
        results = list(self.task.check(prompt, response))
        passed = sum(bool(result.passed) for result in results)
        ok = passed == len(results)
        return Judgement(
            value=1.0 if ok else 0.0,
            critique=str(self.task.critique(prompt, response)),
            votes={"yes": 1} if ok else {"no": 1},
            score=passed / len(results) if results else 1.0,
        )


class ProgrammaticRefiner:
    """Minimal edits towards the failed constraints: candidate ``i`` applies ``task.repair`` for one failed check,
    number ``i mod len(failed)`` of the failed checks in an order permuted by ``seed`` (so different seeds explore
    different orders). A response failing no check has nothing to refine: ``[]``."""

    def __init__(self, task: Any) -> None:
        _require(task, ("check", "repair"), type(self).__name__)
        self.task = task

    def refine(self, prompt: str, response: str, critique: str, n: int, *, seed: int) -> list[str]:
        _check_n(n)
        _check_seed(seed)
        failed = [str(result.name) for result in self.task.check(prompt, response) if not result.passed]
        if not failed:
            return []
        order = np.random.default_rng(_seed_sequence(seed, "refiner.seed")).permutation(len(failed))
        return [str(self.task.repair(prompt, response, failed[order[i % len(failed)]])) for i in range(n)]


# -- LLM-backed ----------------------------------------------------------------------------------------------
def parse_final_judgement(reply: str) -> tuple[str, str] | None:
    """``("yes" | "no", analysis)`` from the LAST ``Final Judgement: Yes/No`` line of an LLM judge's reply (any
    case, Markdown ``**`` tolerated, "Judgment" too); the analysis is the text before it. None when there is none.

    >>> parse_final_judgement("Has 3 bullets. Final Judgement: No.\\n**Final Judgement:** yes")
    ('yes', 'Has 3 bullets. Final Judgement: No.')
    >>> parse_final_judgement("Looks fine to me.") is None
    True
    """
    match = None
    for match in _FINAL_JUDGEMENT.finditer(reply):  # noqa: B007 - the last one is what counts
        pass
    if match is None:
        return None
    return match.group(1).lower(), reply[: match.start()].strip()


def extract_refined(reply: str) -> str | None:
    """The text between the LAST ``<refined>``/``</refined>`` pair of a reply (stripped), or None when the reply
    has no such pair or it is empty.

    >>> extract_refined("Draft: <refined>a</refined> Better: <refined>\\nb\\n</refined>")
    'b'
    >>> extract_refined("<refined>unterminated") is None
    True
    """
    close = reply.rfind(_CLOSE)
    if close < 0:
        return None
    start = reply.rfind(_OPEN, 0, close)
    if start < 0:
        return None
    text = reply[start + len(_OPEN) : close].strip()
    return text or None


class LLMJudge:
    """SPaR's LLM judge: ``n`` sampled judgements (``spar_judge.jinja``), each ending ``Final Judgement: Yes/No``;
    value = yes / (yes + no). Replies without a final judgement are dropped and counted (``votes["unparseable"]``).
    A tie (yes == no, 0/0 included) asks ``n`` more (votes accumulate) up to ``max_rounds`` rounds; a tie left
    after them gives value yes / (yes + no) (0.0 for 0/0) and the note :data:`TIE_UNRESOLVED`. The critique is the
    analysis of the first reply agreeing with the majority (with a tie left: the first "no").

    Each request's sampling seed derives from ``seed``, the prompt, the response, the round and the sample's
    position, so a judgement is reproducible and replays from the client's cache.

    Args:
        client: the endpoint (an :class:`~skills.llm.LLMClient`, its config, or a dict of its fields).
        n: judgements sampled per round.
        temperature: their sampling temperature.
        max_rounds: most rounds of ``n`` while the vote is tied.
        seed: mixed into every request's seed.
        max_tokens: most tokens per reply (None: the client's setting).
    """

    def __init__(
        self,
        client: Any,
        n: int = 5,
        temperature: float = 1.0,
        max_rounds: int = 3,
        *,
        seed: int = 0,
        max_tokens: int | None = None,
    ) -> None:
        self.client = client if isinstance(client, LLMClient) else LLMClient(client)
        _check_n(n)
        _check_positive("max_rounds", max_rounds)
        _check_seed(seed)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            raise InvalidConfig(f"Expects temperature to be a number >= 0; actual {temperature!r}.")
        self.n, self.temperature, self.max_rounds, self.seed = n, float(temperature), max_rounds, seed
        self.max_tokens = max_tokens

    def judge(self, prompt: str, response: str) -> Judgement:
        text = render("spar_judge.jinja", instruction=prompt, response=response)
        votes = {"yes": 0, "no": 0, "unparseable": 0}
        analyses: list[tuple[str, str]] = []
        for round_ in range(self.max_rounds):
            seeds = [_request_seed(self.seed, "judge", prompt, response, round_, i) for i in range(self.n)]
            replies = self.client.map(
                lambda s: self.client.complete(text, temperature=self.temperature, seed=s, max_tokens=self.max_tokens),
                seeds,
            )
            for reply in replies:
                parsed = parse_final_judgement(reply)
                if parsed is None:
                    votes["unparseable"] += 1
                else:
                    votes[parsed[0]] += 1
                    analyses.append(parsed)
            if votes["yes"] != votes["no"]:
                break
        counted = votes["yes"] + votes["no"]
        value = votes["yes"] / counted if counted else 0.0
        majority = "yes" if votes["yes"] > votes["no"] else "no"
        critique = next((analysis for verdict, analysis in analyses if verdict == majority), "")
        note = TIE_UNRESOLVED if votes["yes"] == votes["no"] else ""
        return Judgement(value=value, critique=critique, votes=votes, score=value, note=note)

    def close(self) -> None:
        self.client.close()


class LLMRefiner:
    """SPaR's LLM refiner: each candidate is one sampled reply to ``spar_refine.jinja`` (instruction, response,
    critique), the refined response being the text between its LAST ``<refined>``/``</refined>`` pair. A reply
    without markers is asked again (another seed) up to ``max_retries`` times, then that candidate is dropped, so
    :meth:`refine` may return fewer than ``n``. Counters: :attr:`format_failures` (candidates dropped) and
    :attr:`bad_replies` (replies without markers, retried or not).

    Args:
        client: the endpoint (an :class:`~skills.llm.LLMClient`, its config, or a dict of its fields).
        max_retries: extra requests for a candidate whose reply had no markers.
        temperature: the sampling temperature.
        max_tokens: most tokens per reply (None: the client's setting).
    """

    def __init__(
        self, client: Any, max_retries: int = 2, temperature: float = 1.0, *, max_tokens: int | None = None
    ) -> None:
        self.client = client if isinstance(client, LLMClient) else LLMClient(client)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidConfig(f"Expects max_retries to be an integer >= 0; actual {max_retries!r}.")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            raise InvalidConfig(f"Expects temperature to be a number >= 0; actual {temperature!r}.")
        self.max_retries, self.temperature, self.max_tokens = max_retries, float(temperature), max_tokens
        self.format_failures = 0
        self.bad_replies = 0

    def refine(self, prompt: str, response: str, critique: str, n: int, *, seed: int) -> list[str]:
        _check_n(n)
        _check_seed(seed)
        text = render("spar_refine.jinja", instruction=prompt, response=response, critique=critique)

        def candidate(index: int) -> tuple[str | None, int]:
            for attempt in range(self.max_retries + 1):
                request_seed = _request_seed(seed, "refine", index, attempt)
                reply = self.client.complete(
                    text, temperature=self.temperature, seed=request_seed, max_tokens=self.max_tokens
                )
                refined = extract_refined(reply)
                if refined is not None:
                    return refined, attempt
            return None, self.max_retries + 1

        out = []
        for refined, bad in self.client.map(candidate, range(n)):
            self.bad_replies += bad
            if refined is None:
                self.format_failures += 1
            else:
                out.append(refined)
        return out

    def close(self) -> None:
        self.client.close()


# -- helpers ---------------------------------------------------------------------------------------------------
def _seed_sequence(seed: int, *parts: Any) -> np.random.SeedSequence:
    """A SeedSequence from ``seed`` and any strings/ints (strings hashed with SHA-256, stable across runs)."""
    entropy = [int(seed)]
    for part in parts:
        if isinstance(part, str):
            entropy.append(int.from_bytes(hashlib.sha256(part.encode()).digest()[:16], "big"))
        else:
            entropy.append(int(part))
    return np.random.SeedSequence(entropy)


def _request_seed(seed: int, *parts: Any) -> int:
    return int(_seed_sequence(seed, *parts).generate_state(1, dtype=np.uint64)[0]) % _SEED_LIMIT


def _check_n(n: Any) -> None:
    _check_positive("n", n)


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfig(f"Expects {name} to be an integer >= 1; actual {value!r}.")


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidConfig(f"Expects seed to be an integer >= 0; actual {seed!r}.")


def _require(task: Any, methods: Sequence[str], who: str) -> None:
    missing = [name for name in methods if not callable(getattr(task, name, None))]
    if missing:
        raise InvalidConfig(
            f"Expects {who}'s task to define the methods {', '.join(methods)}; {type(task).__name__} lacks "
            f"{', '.join(missing)}."
        )
