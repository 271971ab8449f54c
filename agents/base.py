"""The `Teacher` plug-in point and shared helpers: budget allocation, the count plan, episode bookkeeping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from skills.errors import InvalidConfig, InvalidPlan


@runtime_checkable
class Teacher(Protocol):
    """Anything with ``act(observation, info) -> plan`` is a teacher.

    A plan is what ``env.step`` accepts: a ``{skill: count}`` dict (what the built-in teachers return), a plan
    object (``CountPlan``, ``ExamplesPlan``) or an array of per-skill budget shares. ``info["skills"]`` names the
    skills in observation order and ``info["budget_next"]`` is how many examples this step may spend.

    A teacher that learns from the episode (TSCL, Skill-It, ODM, DoReMi) also has ``state_dict() -> dict`` (plain
    JSON types) and ``load_state_dict(state)``: the runner saves the state in every checkpoint and restores it on
    resume, so the resumed teacher makes the same plans as an uninterrupted one.
    """

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Any: ...


def allocate(weights: Sequence[float] | np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` into whole counts proportional to ``weights`` (largest-remainder rounding).

    >>> allocate([1, 1, 2], 10).tolist()
    [3, 2, 5]
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if budget <= 0:
        return np.zeros(len(w), dtype=np.int64)
    if w.sum() <= 0:
        w = np.ones(len(w))
    exact = w / w.sum() * budget
    counts = np.floor(exact).astype(np.int64)
    remainder = budget - int(counts.sum())
    # Stable order: ties go to the earlier skill, so the same weights always give the same plan.
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


def counts_plan(weights: Sequence[float] | np.ndarray, info: Mapping[str, Any]) -> dict[str, int]:
    """The ``{skill: count}`` plan spending exactly ``info["budget_next"]`` in proportion to ``weights``
    (one per skill, in ``info["skills"]`` order; see :func:`allocate`).

    >>> counts_plan([1, 1, 2], {"skills": ["a", "b", "c"], "budget_next": 10})
    {'a': 3, 'b': 2, 'c': 5}
    """
    skills = list(info["skills"])
    if len(weights) != len(skills):
        raise InvalidPlan(f"Expects one weight per skill ({len(skills)}: {', '.join(skills)}); actual {len(weights)}.")
    counts = allocate(weights, int(info["budget_next"]))
    return dict(zip(skills, counts.tolist(), strict=True))


def skill_accuracy(observation: Mapping[str, Any], info: Mapping[str, Any]) -> np.ndarray:
    """``observation["accuracy"]`` as float64, one value per skill of ``info["skills"]``."""
    accuracy = np.asarray(observation["accuracy"], dtype=np.float64).reshape(-1)
    if len(accuracy) != len(info["skills"]):
        raise InvalidConfig(
            f"Expects observation['accuracy'] to hold one value per skill of info['skills'] "
            f"({len(info['skills'])}); actual {len(accuracy)}."
        )
    return accuracy


def episode_progress(step: int, skills: Sequence[str], last_step: int | None, last_skills: Sequence[str] | None) -> str:
    """How a stateful teacher's new observation relates to the last one it planned from.

    ``"start"``: step 0 or nothing seen yet, begin a new episode; ``"same"``: the step it last planned (``act``
    called again), so do not update twice; ``"next"``: a later step, update with it. Going back in steps, or other
    skills mid-episode (a state restored from another run), raises :class:`InvalidConfig`.

    >>> episode_progress(0, ["a"], 4, ["a"]), episode_progress(5, ["a"], 4, ["a"]), episode_progress(4, ["a"], 4, ["a"])
    ('start', 'next', 'same')
    """
    if last_step is None or step == 0:
        return "start"
    if list(skills) != list(last_skills or []):
        raise InvalidConfig(
            f"Expects the skills this teacher's state was built on ({', '.join(last_skills or [])}); "
            f"actual {', '.join(skills)} at step {step}. Use a fresh teacher for another environment."
        )
    if step < last_step:
        raise InvalidConfig(f"Expects steps in order; actual step {step} after step {last_step}.")
    return "same" if step == last_step else "next"


def check_state(state: Any, keys: Sequence[str], teacher: str) -> Mapping[str, Any]:
    """``state`` if it is a mapping holding ``keys`` (what a teacher's ``state_dict`` wrote); else InvalidConfig."""
    if not isinstance(state, Mapping) or not set(keys) <= set(state):
        have = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise InvalidConfig(f"Expects a {teacher} teacher state with keys {sorted(keys)}; actual {have}.")
    return state
