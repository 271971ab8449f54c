"""Teacher-Student Curriculum Learning (TSCL): spend the budget where the student's accuracy changes fastest."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import check_state, counts_plan, episode_progress, skill_accuracy
from skills.errors import InvalidConfig, unknown_name_error

SIGNALS = ("window", "sampling", "online", "naive")
POLICIES = ("epsilon-greedy", "boltzmann")


class TSCLTeacher:
    """Teacher-Student Curriculum Learning (Matiisen, Oliver, Cohen, Schulman 2017, "Teacher-Student Curriculum
    Learning", arXiv:1707.00183; reference code tambetm/TSCL ``addition/addition_rnn_teacher.py``).

    Each skill is a bandit arm whose value is the student's *learning progress* on it, measured on the validation
    accuracy ``a_i(t)`` of every step ``t`` (the observation's ``step``). With ``absolute=True`` (the paper's
    choice) the arm value is ``|progress|``: a skill whose accuracy *drops* (forgetting) has a large value too and
    is picked again. ``signal`` chooses the progress estimate (K = ``window``):

    * ``"window"`` (Window TSCL): the slope of a least-squares line through the last K points ``(t, a_i(t))``,
      ``slope_i = Σ (t − t̄)(a_i(t) − ā_i) / Σ (t − t̄)²``. With fewer than 2 points the slope is unknown and
      taken as 1, the largest an accuracy slope can be (as the reference code does), so every skill is tried.
    * ``"sampling"`` (Sampling TSCL, Thompson sampling): for each skill one of its last K accuracy changes
      ``a_i(t) − a_i(t−1)`` is drawn uniformly at random; before any change is seen every value is 1. The draws
      use a generator derived from ``(seed, step)`` (like ``RandomTeacher``), so they need no saved RNG state
      and a resumed or repeated ``act`` draws the same.
    * ``"online"`` (Online TSCL): ``Q_i ← Q_i + α (Δa_i − Q_i)`` with ``Δa_i`` the change since the previous step,
      ``Q = 0`` at step 0 (the reference starts from an accuracy of 0 instead, an artefact of having no initial
      evaluation).
    * ``"naive"`` (Naive TSCL): the plan is held for K steps, then ``Q_i ← Q_i + α (slope_i − Q_i)`` with the slope
      through the K accuracies measured during them.

    ``policy`` turns the values ``v`` into budget shares ``p``:

    * ``"epsilon-greedy"``: ``p_i = ε/N + (1 − ε)·[i is the argmax]``, i.e. ``1 − ε`` of the budget to the best
      skill and ``ε`` spread uniformly (the distribution the reference's policy produces). Ties (within 1e-12)
      share the greedy part equally; the reference breaks them at random, sharing is its expectation and keeps
      plans deterministic.
    * ``"boltzmann"``: ``p_i ∝ exp(v_i / τ)``. The default τ = 0.0004 is the reference's, tuned for the tiny
      per-minibatch slopes of its addition task; envgym's steps move accuracy by ~0.01–0.3, so that τ is
      practically greedy here and a τ of about 0.05 makes a softer choice.

    Defaults are the reference code's (the paper's addition experiments): K = 10, α = 0.1, ε = 0.1, τ = 0.0004.

    Example (window signal; skill ``b`` is being forgotten, so its |slope| is the largest):
        >>> t = TSCLTeacher()
        >>> info = {"skills": ["a", "b"], "budget_next": 100}
        >>> t.act({"accuracy": [0.5, 0.5], "step": 0}, info)  # one point: both slopes unknown (1), a tie
        {'a': 50, 'b': 50}
        >>> t.act({"accuracy": [0.6, 0.25], "step": 1}, info)  # slopes 0.1 and -0.25
        {'a': 5, 'b': 95}
    """

    def __init__(
        self,
        signal: str = "window",
        policy: str = "epsilon-greedy",
        window: int = 10,
        epsilon: float = 0.1,
        temperature: float = 0.0004,
        alpha: float = 0.1,
        absolute: bool = True,
        seed: int = 0,
    ) -> None:
        if signal not in SIGNALS:
            raise unknown_name_error("TSCL signal", str(signal), SIGNALS)
        if policy not in POLICIES:
            raise unknown_name_error("TSCL policy", str(policy), POLICIES)
        least = 2 if signal in ("window", "naive") else 1
        if isinstance(window, bool) or not isinstance(window, int) or window < least:
            raise InvalidConfig(f"Expects a whole-number window >= {least} for signal {signal!r}; actual {window!r}.")
        if not 0.0 <= epsilon <= 1.0:
            raise InvalidConfig(f"Expects 0 <= epsilon <= 1; actual {epsilon!r}.")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise InvalidConfig(f"Expects a finite temperature > 0; actual {temperature!r}.")
        if not 0.0 < alpha <= 1.0:
            raise InvalidConfig(f"Expects 0 < alpha <= 1; actual {alpha!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidConfig(f"Expects a seed that is a whole number >= 0; actual {seed!r}.")
        self.signal, self.policy, self.window = signal, policy, window
        self.epsilon, self.temperature, self.alpha = float(epsilon), float(temperature), float(alpha)
        self.absolute, self.seed = bool(absolute), seed
        self._reset_state()

    def _reset_state(self) -> None:
        self._skills: list[str] | None = None
        self._last_step: int | None = None
        self._steps: list[int] = []  # the last window + 1 observed steps ...
        self._history: list[list[float]] = []  # ... and their per-skill accuracies
        self._q: list[float] = []  # online / naive arm values
        self._pending: list[tuple[int, list[float]]] = []  # naive: (step, accuracy) seen under the current plan

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        step, accuracy = int(observation["step"]), skill_accuracy(observation, info)
        progress = episode_progress(step, info["skills"], self._last_step, self._skills)
        if progress == "start":
            self._reset_state()
            self._skills, self._q = list(info["skills"]), [0.0] * len(accuracy)
        if progress != "same":
            self._observe(step, accuracy)
        self._last_step = step
        return counts_plan(self.shares(step), info)

    def _observe(self, step: int, accuracy: np.ndarray) -> None:
        if self._history and self.signal == "online":
            q = np.asarray(self._q)
            self._q = (q + self.alpha * (accuracy - np.asarray(self._history[-1]) - q)).tolist()
        if self._history and self.signal == "naive":
            self._pending.append((step, accuracy.tolist()))
            if len(self._pending) == self.window:
                steps = [s for s, _ in self._pending]
                slope = window_slope(np.asarray(steps, dtype=np.float64), np.asarray([a for _, a in self._pending]))
                q = np.asarray(self._q)
                self._q = (q + self.alpha * (slope - q)).tolist()
                self._pending = []
        self._steps = [*self._steps, step][-(self.window + 1) :]
        self._history = [*self._history, accuracy.tolist()][-(self.window + 1) :]

    def progress_values(self, step: int) -> np.ndarray:
        """The per-skill learning-progress estimate the policy reads (before taking ``|·|``)."""
        n = len(self._history[-1])
        if self.signal in ("online", "naive"):
            return np.asarray(self._q)
        if self.signal == "window":
            if len(self._history) < 2:
                return np.ones(n)
            last = slice(-self.window, None)
            return window_slope(np.asarray(self._steps[last], dtype=np.float64), np.asarray(self._history[last]))
        deltas = np.diff(np.asarray(self._history), axis=0)[-self.window :]  # sampling
        if len(deltas) == 0:
            return np.ones(n)
        rng = np.random.default_rng([self.seed, step])
        return deltas[rng.integers(len(deltas), size=n), np.arange(n)]

    def shares(self, step: int) -> np.ndarray:
        """The budget share of each skill at ``step`` (sums to 1), from the state after observing ``step``."""
        values = self.progress_values(step)
        if self.absolute:
            values = np.abs(values)
        n = len(values)
        if self.policy == "boltzmann":
            weights = np.exp((values - values.max()) / self.temperature)
            return weights / weights.sum()
        best = np.abs(values - values.max()) <= 1e-12
        return self.epsilon / n + (1.0 - self.epsilon) * best / best.sum()

    def state_dict(self) -> dict[str, Any]:
        return {
            "skills": self._skills,
            "last_step": self._last_step,
            "steps": list(self._steps),
            "history": [list(a) for a in self._history],
            "q": list(self._q),
            "pending": [[s, list(a)] for s, a in self._pending],
            "seed": self.seed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        state = check_state(state, ("skills", "last_step", "steps", "history", "q", "pending", "seed"), "TSCL")
        self._skills = None if state["skills"] is None else [str(s) for s in state["skills"]]
        self._last_step = None if state["last_step"] is None else int(state["last_step"])
        self._steps = [int(s) for s in state["steps"]]
        self._history = [[float(x) for x in a] for a in state["history"]]
        self._q = [float(x) for x in state["q"]]
        self._pending = [(int(s), [float(x) for x in a]) for s, a in state["pending"]]
        self.seed = int(state["seed"])


def window_slope(steps: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Least-squares slope of accuracy (rows: points, columns: skills) against steps; 1 with < 2 points."""
    if len(steps) < 2:
        return np.ones(accuracy.shape[1])
    x = steps - steps.mean()
    return (x[:, None] * (accuracy - accuracy.mean(axis=0))).sum(axis=0) / (x**2).sum()
