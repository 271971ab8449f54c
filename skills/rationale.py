"""Rationales in prompts: how a worked solution reads as an in-context example, and how an answer is read back.

The one text format of learning by teaching (``envgym/LbT-v0`` and ``agents.lbt``): an example is ``Question: <q>``,
the rationale's lines, and ``Answer: <a>``, ending in a blank line; a model continues after ``Question: <q>``, stops
at a blank line or the next question, and its answer is what follows its last ``Answer:``. It sits on the bottom
floor so that environments and teachers share it.

Example:
    >>> from skills.rationale import extract_answer, render_shot
    >>> render_shot("47+38=", "7+8=15, carry 1", "85")
    'Question: 47+38=\\n7+8=15, carry 1\\nAnswer: 85\\n\\n'
    >>> extract_answer(" 5+6=11, carry 1\\nAnswer: 91")
    '91'
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

# Printable ASCII with newline and tab: what problems, rationales and answers are written in.
CHARSET = "".join(ch for ch in string.printable if ch not in "\x0b\x0c\r")
# The in-context format: the teaching problem and the teacher's solution, then the exam question. A student's
# continuation stops at a blank line or the next question; its answer is what follows its last "Answer:".
STOP = ("\n\n", "\nQuestion:")
_ANSWER = re.compile(r"Answer:[ \t]*(.*)")


@dataclass(frozen=True)
class Rationale:
    """A teacher's solution of a teaching problem: the reasoning (may be empty) and the final answer."""

    rationale: str
    answer: str

    def to_json(self) -> dict[str, str]:
        return {"rationale": self.rationale, "answer": self.answer}


def render_solution(rationale: str, answer: str) -> str:
    """How a solution reads in a prompt: the rationale's lines (blank lines dropped: a blank line ends an example),
    then ``Answer: <answer>`` (on one line)."""
    rationale = re.sub(r"\n\s*\n", "\n", rationale.strip())
    answer = " ".join(answer.split())
    return f"{rationale}\nAnswer: {answer}" if rationale else f"Answer: {answer}"


def render_shot(question: str, rationale: str, answer: str) -> str:
    """One in-context example: a question and its solution, ending in a blank line."""
    return f"Question: {question}\n{render_solution(rationale, answer)}\n\n"


def render_prompt(shots: str, question: str) -> str:
    """What a student or teacher continues: in-context examples, then the question to solve."""
    return f"{shots}Question: {question}\n"


def extract_answer(text: str) -> str:
    """The final answer in a continuation: what follows its last ``Answer:`` on that line; ``""`` if none."""
    found = _ANSWER.findall(text)
    return found[-1].strip() if found else ""


def split_solution(text: str) -> Rationale:
    """A continuation as (rationale, answer): the text before its last ``Answer:`` line, and that answer."""
    matches = list(_ANSWER.finditer(text))
    if not matches:
        return Rationale(text.strip(), "")
    last = matches[-1]
    return Rationale(text[: last.start()].strip(), last.group(1).strip())


def to_charset(text: str) -> str:
    """``text`` with every character outside :data:`CHARSET` dropped (an LLM's stray unicode), for callers that
    want a valid action from free text; the environment itself refuses such characters."""
    return "".join(ch for ch in text if ch in CHARSET)


def cut_at_stop(text: str, stop: tuple[str, ...] | list[str] = STOP) -> str:
    """``text`` up to the first of ``stop`` (what a server's stop sequences do, for models answering in process)."""
    positions = [text.find(s) for s in stop if s and s in text]
    return text[: min(positions)] if positions else text
