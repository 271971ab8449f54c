"""Learning by teaching's teacher side: M1's answer selection by exam scores, and M2's preference pairs.

M1 picks a teacher's answer by how well students learn from its rationale.
For each teaching problem the teacher samples ``n`` (rationale, answer) solutions. Each is scored by LbT on one
exam (the same exam for all of a problem's candidates, so scores compare): the students' exam accuracy with that
solution as their in-context example (:meth:`envgym.lbt_env.LbTEnv.score`). An answer is then selected by

* ``maj``: self-consistency, the most frequent answer (no LbT score);
* ``max``: the answer of the single best-scored solution;
* ``sum``: the answer whose solutions' scores add up highest (frequency and quality);
* ``avg``: the answer whose solutions score highest on average (quality only).

Ties go to the answer seen first. Each rule's accuracy on the teaching problems is compared with the teacher's
greedy answer.

M2 trains the teacher (a :class:`ModelSolver`, a model in this process) with DPO on pairs of its own solutions:
each solution scores ``lbt_weight`` x LbT score + (1 - ``lbt_weight``) x correctness (:func:`solution_score`), and
:func:`preference_pairs` keeps the pairs whose scores differ by more than the gap (0.3), widest first, at most 8
per problem; the baseline scores by correctness alone.

Example:
    >>> from envgym.lbt_env import Rationale
    >>> from agents.lbt import select_answer
    >>> sols = [Rationale("", "85"), Rationale("", "86"), Rationale("", "86")]
    >>> select_answer(sols, [0.9, 0.2, 0.3], "maj"), select_answer(sols, [0.9, 0.2, 0.3], "max")
    ('86', '85')
    >>> select_answer(sols, [0.9, 0.2, 0.3], "sum"), select_answer(sols, [0.9, 0.2, 0.3], "avg")
    ('85', '85')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from skills.errors import InvalidConfig, unknown_name_error
from skills.llm import LLMClient
from skills.llm.client_config import LLMClientConfig
from skills.rationale import (
    STOP,
    Rationale,
    cut_at_stop,
    render_prompt,
    render_shot,
    render_solution,
    split_solution,
    to_charset,
)
from skills.task import Example, PreferencePair

SELECTION_RULES = ("maj", "max", "sum", "avg")
# A solution's continuation stops at a blank line or the next question, like an exam student's.
SOLVER_STOP = list(STOP)
# Scores are float means (0.8 - 0.5 is 0.30000000000000004): a gap must exceed the threshold by more than this.
GAP_TOLERANCE = 1e-9


def select_answer(solutions: Sequence[Rationale], scores: Sequence[float], rule: str) -> str:
    """The answer ``rule`` picks from ``solutions`` and their LbT ``scores`` (see the module docstring)."""
    if rule not in SELECTION_RULES:
        raise unknown_name_error("selection rule", rule, SELECTION_RULES)
    if not solutions or len(solutions) != len(scores):
        raise InvalidConfig(
            f"Expects one LbT score per solution and at least one solution; actual {len(solutions)} solutions, "
            f"{len(scores)} scores."
        )
    if rule == "max":
        return solutions[int(np.argmax(scores))].answer  # argmax: the first of equal maxima
    grouped: dict[str, list[float]] = {}
    for solution, score in zip(solutions, scores, strict=True):
        grouped.setdefault(solution.answer, []).append(float(score))
    value = {"maj": len, "sum": sum, "avg": lambda s: sum(s) / len(s)}[rule]
    return max(grouped, key=lambda answer: value(grouped[answer]))  # max keeps the first of equals (dict order)


@runtime_checkable
class Solver(Protocol):
    """A teacher that solves teaching problems: ``n`` sampled solutions, and its greedy one."""

    def sample(self, problem: str, shots: str, n: int, *, seed: int) -> list[Rationale]: ...

    def greedy(self, problem: str, shots: str) -> Rationale: ...


class EndpointSolver:
    """A teacher behind an OpenAI-compatible completions endpoint, prompted with worked examples (``shots``: a
    few training problems and their gold answers in the exam format) and the teaching problem.

    Args:
        llm: the endpoint (``LLMClientConfig`` fields); ``api`` is forced to ``"completions"``.
        temperature: sampling temperature of :meth:`sample` (greedy is 0).
    """

    def __init__(self, llm: LLMClientConfig | Mapping[str, Any], *, temperature: float = 1.0) -> None:
        fields = llm.to_dict() if isinstance(llm, LLMClientConfig) else dict(llm)
        fields.setdefault("max_tokens", 160)
        self.client = LLMClient({**fields, "api": "completions"})
        self.temperature = float(temperature)

    def sample(self, problem: str, shots: str, n: int, *, seed: int) -> list[Rationale]:
        prompt = render_prompt(shots, problem)
        replies = self.client.map(
            lambda k: self.client.complete(prompt, temperature=self.temperature, seed=seed + k, stop=SOLVER_STOP),
            range(n),
        )
        return [_solution(reply) for reply in replies]

    def greedy(self, problem: str, shots: str) -> Rationale:
        return _solution(self.client.complete(render_prompt(shots, problem), temperature=0.0, stop=SOLVER_STOP))

    def use_cache_dir(self, path: Any) -> None:
        self.client.use_cache_dir(path)

    def close(self) -> None:
        self.client.close()


def _solution(reply: str) -> Rationale:
    """A reply as a valid action: printable ASCII, and a reply without an ``Answer:`` line is all answer."""
    solution = split_solution(to_charset(reply))
    return solution if solution.answer else Rationale("", solution.rationale.split("\n")[0].strip())


def worked_examples(examples: Sequence[Example]) -> str:
    """The solver's in-context examples: training problems with their gold answers, in the exam format."""
    return "".join(render_shot(ex.question, "", ex.answer) for ex in examples)


class ModelSolver:
    """A teacher that is a model in this process (an :class:`~students.hf_student.HFStudent`, e.g. Gemma-3-270M with
    LoRA), so M2 can train it. The solver prompt is its question, formatted as it formats every question (a base
    model reads it as raw text with ``HFStudentConfig(prompt_template="{question}")``); its continuations are cut
    where an exam student's would be."""

    def __init__(self, model: Any, *, temperature: float = 1.0) -> None:
        self.model = model
        self.temperature = float(temperature)

    def sample_many(self, prompts: Sequence[str], n: int, *, seed: int) -> list[list[Rationale]]:
        """``n`` sampled solutions per prompt (one batched generation)."""
        texts = self.model.sample_answers(list(prompts), n, temperature=self.temperature, seed=seed)
        return [[_solution(cut_at_stop(text, SOLVER_STOP)) for text in row] for row in texts]

    def greedy_many(self, prompts: Sequence[str]) -> list[Rationale]:
        return [_solution(cut_at_stop(text, SOLVER_STOP)) for text in self.model.answer(list(prompts))]

    def sample(self, problem: str, shots: str, n: int, *, seed: int) -> list[Rationale]:
        return self.sample_many([render_prompt(shots, problem)], n, seed=seed)[0]

    def greedy(self, problem: str, shots: str) -> Rationale:
        return self.greedy_many([render_prompt(shots, problem)])[0]


def solution_score(correct: float, lbt_score: float, lbt_weight: float) -> float:
    """M2's score of a solution: ``lbt_weight`` x LbT score + (1 - ``lbt_weight``) x correctness."""
    return lbt_weight * lbt_score + (1.0 - lbt_weight) * correct


def preference_pairs(
    prompt: str,
    skill: str,
    solutions: Sequence[Rationale],
    scores: Sequence[float],
    *,
    gap: float,
    cap: int,
) -> list[PreferencePair]:
    """M2's pairs of one problem: every (better, worse) solution whose scores differ by more than ``gap``, the
    widest gaps first, at most ``cap``; a pair of identical texts, or one repeated, is skipped."""
    texts = [render_solution(s.rationale, s.answer) for s in solutions]
    candidates = sorted(
        (
            (scores[i] - scores[j], i, j)
            for i in range(len(solutions))
            for j in range(len(solutions))
            if scores[i] - scores[j] > gap + GAP_TOLERANCE
        ),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    pairs: list[PreferencePair] = []
    seen: set[tuple[str, str]] = set()
    for difference, i, j in candidates:
        if len(pairs) >= cap:
            break
        if texts[i] == texts[j] or (texts[i], texts[j]) in seen:
            continue
        seen.add((texts[i], texts[j]))
        pairs.append(PreferencePair(prompt, texts[i], texts[j], skill, metadata={"score_gap": difference}))
    return pairs


# -- M3: iterative refinement of in-context examples ------------------------------------------------------------
_EXAMPLE_BLOCK = re.compile(r"Question:[ \t]*(?P<question>[^\n]+)\n(?P<body>(?:(?!Question:)[^\n]*\n?)*)")


def render_examples(examples: Sequence[Rationale | Example]) -> str:
    """An in-context example set as shots: each a question, its rationale and ``Answer:`` line."""
    shots = []
    for example in examples:
        rationale = getattr(example, "metadata", {}).get("rationale", "") if isinstance(example, Example) else ""
        shots.append(render_shot(example.question, rationale, example.answer))
    return "".join(shots)


def parse_examples(text: str, limit: int) -> list[Example]:
    """The ``Question: ... Answer: ...`` blocks of a teacher's rewrite, at most ``limit``, as examples (skill unset:
    the caller files them); a block without an answer line is skipped."""
    found: list[Example] = []
    for block in _EXAMPLE_BLOCK.finditer(text):
        solution = split_solution(block["body"])
        if solution.answer:
            found.append(Example(block["question"].strip(), solution.answer, "", {"rationale": solution.rationale}))
        if len(found) == limit:
            break
    return found


def rewrite_prompt(examples: Sequence[Example], failures: Sequence[dict[str, str]]) -> str:
    """M3's request to the teacher: the current examples, the students' failures with them in context, reasons for
    failure, then a rewritten example set in the same format."""
    lines = ["Students studied these worked examples:", "", render_examples(examples).rstrip(), ""]
    lines += ["With them, the students got these questions wrong:"]
    for failure in failures:
        lines.append(
            f"- {failure['question']} (the students wrote {failure['answer']!r}; correct: {failure['gold']!r})"
        )
    lines += [
        "",
        "First state in one line why the examples misled the students. Then write improved worked examples in the "
        "same format (Question: ... then Answer: ...).",
        "Reason:",
    ]
    return "\n".join(lines)
