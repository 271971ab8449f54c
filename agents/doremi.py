"""DoReMi-style domain reweighting: exponentiated-gradient steps on each skill's excess validation error."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import check_state, counts_plan, episode_progress, skill_accuracy
from skills.errors import InvalidConfig

Reference = Sequence[Mapping[str, float]]


class DoReMiTeacher:
    """DoReMi's domain-weight update (Xie, Pham, Dong, Du, Liu, Lu, Liang, Le, Ma, Yu 2023, "DoReMi: Optimizing
    Data Mixtures Speeds Up Language Model Pretraining", arXiv:2305.10429, Algorithm 1; reference code
    sangmichaelxie/doremi ``doremi/trainer.py``), with skills as domains and validation error as the loss.

    At every step ``t``, with ``err_i = 1 − accuracy_i`` of the student and ``err_ref_i`` of the reference:

        ``λ_i = max(err_i(t) − err_ref_i(t), 0)``             (excess error, clipped at 0)
        ``α' = softmax(log α_{t−1} + η λ)``                    (exponentiated gradient step, η = 1)
        ``α_t = (1 − c) α' + c / K``                            (smoothing towards uniform, c = 1e-3)

    starting from ``α_{-1}`` uniform. As in the reference code the update is applied to the smoothed weights of
    the previous step. The plan spends the budget in proportion to the *current* ``α_t``, as DoReMi's proxy
    training does (it reweights the proxy's loss by ``α_t``; here the data itself is drawn in proportion to it).
    DoReMi's *output* mixture, meant for training a final model, is the average ``ᾱ = mean_t α_t``:
    :attr:`average_weights`.

    DoReMi clips the per-token excess loss before averaging per domain; with one accuracy per skill, the clip is
    per skill. ``reference`` gives ``err_ref``:

    * ``None`` (default): the student's own accuracy at step 0. This is DoReMi's fixed reference model taken to be
      the student before teaching, so only *forgetting* (a skill falling below where it started) is excess: a
      skill that is forgotten gets more data; while nothing is forgotten the plan stays uniform.
    * a run directory (``str`` or path): a reference run, read from its ``steps.jsonl`` (``"step"`` and
      ``"val_accuracy"`` per line) plus step 0 from ``report.json``'s ``val_accuracy_start`` (or the checkpoint's)
      when present.
    * a list of per-step ``{skill: accuracy}`` dicts (entry ``k`` is step ``k``).

    With a reference run, ``reference_point`` says which of its accuracies is ``err_ref``:

    * ``"final"`` (default): where the reference run *ended*, as in DoReMi, whose reference model is fully trained
      on the uniform mixture before the proxy starts. A skill on which the student is still behind where uniform
      training ends up gets more data.
    * ``"trajectory"``: where the reference run was at the same step. Beware: against the same seed's uniform run
      in a deterministic environment this is a fixed point (the first plan is uniform, so the student *is* the
      reference, so the excess stays 0 and every plan is uniform; measured: identical to uniform on 16 seeds).

    At a step the reference does not reach, its last step is used (before its first, its first).

    Example (reference = the student at step 0; skill ``b`` then drops from 0.75 to 0.25, an excess of 0.5):
        >>> t = DoReMiTeacher()
        >>> info = {"skills": ["a", "b"], "budget_next": 1000}
        >>> t.act({"accuracy": [0.5, 0.75], "step": 0}, info)
        {'a': 500, 'b': 500}
        >>> t.act({"accuracy": [0.5, 0.25], "step": 1}, info)  # α' ∝ [1, e^0.5]; 0.999 α' + 0.0005
        {'a': 378, 'b': 622}
    """

    def __init__(
        self,
        reference: str | os.PathLike[str] | Reference | None = None,
        eta: float = 1.0,
        smoothing: float = 1e-3,
        reference_point: str = "final",
    ) -> None:
        if reference_point not in ("final", "trajectory"):
            raise InvalidConfig(f"Expects reference_point 'final' or 'trajectory'; actual {reference_point!r}.")
        self.reference_point = reference_point
        if not (eta >= 0 and math.isfinite(eta)):
            raise InvalidConfig(f"Expects a finite eta >= 0; actual {eta!r}.")
        if not 0.0 <= smoothing <= 1.0:
            raise InvalidConfig(f"Expects 0 <= smoothing <= 1; actual {smoothing!r}.")
        self.eta, self.smoothing = float(eta), float(smoothing)
        self.reference = _load_reference(reference)  # sorted (step, {skill: accuracy}) or None
        self._skills: list[str] | None = None
        self._last_step: int | None = None
        self._start: list[float] = []  # the student's step-0 accuracy (the reference when reference=None)
        self._weights: list[float] = []  # α_t
        self._average: list[float] = []  # mean of α over the updates so far
        self._updates = 0

    @property
    def weights(self) -> np.ndarray:
        """The current domain weights ``α_t`` (what the plan uses)."""
        return np.asarray(self._weights)

    @property
    def average_weights(self) -> np.ndarray:
        """DoReMi's output mixture: the average of ``α_t`` over the steps so far."""
        return np.asarray(self._average)

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, int]:
        step, accuracy = int(observation["step"]), skill_accuracy(observation, info)
        progress = episode_progress(step, info["skills"], self._last_step, self._skills)
        k = len(accuracy)
        if progress == "start":
            self._skills, self._start = list(info["skills"]), accuracy.tolist()
            self._weights, self._average, self._updates = [1.0 / k] * k, [0.0] * k, 0
        if progress != "same":
            excess = np.maximum(self.reference_accuracy(step, info["skills"]) - accuracy, 0.0)  # err − err_ref
            logits = np.log(np.asarray(self._weights)) + self.eta * excess
            stepped = np.exp(logits - logits.max())
            weights = (1.0 - self.smoothing) * stepped / stepped.sum() + self.smoothing / k
            self._updates += 1
            average = np.asarray(self._average)
            self._weights = weights.tolist()
            self._average = (average + (weights - average) / self._updates).tolist()
        self._last_step = step
        return counts_plan(np.asarray(self._weights), info)

    def reference_accuracy(self, step: int, skills: Sequence[str]) -> np.ndarray:
        """The reference's per-skill accuracy used at ``step`` (its final one, or the same step's)."""
        if self.reference is None:
            return np.asarray(self._start)
        if self.reference_point == "final":
            entry = self.reference[-1][1]
        else:
            earlier = [entry for at, entry in self.reference if at <= step]
            entry = earlier[-1] if earlier else self.reference[0][1]
        missing = [skill for skill in skills if skill not in entry]
        if missing:
            raise InvalidConfig(
                f"Expects the DoReMi reference to hold an accuracy for every skill; it has none for "
                f"{', '.join(missing)} (it has {', '.join(sorted(entry)) or 'none'})."
            )
        return np.asarray([entry[skill] for skill in skills], dtype=np.float64)

    def state_dict(self) -> dict[str, Any]:
        return {
            "skills": self._skills,
            "last_step": self._last_step,
            "start": list(self._start),
            "weights": list(self._weights),
            "average": list(self._average),
            "updates": self._updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        state = check_state(state, ("skills", "last_step", "start", "weights", "average", "updates"), "DoReMi")
        self._skills = None if state["skills"] is None else [str(s) for s in state["skills"]]
        self._last_step = None if state["last_step"] is None else int(state["last_step"])
        self._start = [float(x) for x in state["start"]]
        self._weights = [float(x) for x in state["weights"]]
        self._average = [float(x) for x in state["average"]]
        self._updates = int(state["updates"])


def _accuracy_entry(entry: Any, where: str) -> dict[str, float]:
    if not isinstance(entry, Mapping) or not entry:
        raise InvalidConfig(f"Expects {where} to be a non-empty {{skill: accuracy}} mapping; actual {entry!r}.")
    values = {}
    for skill, value in entry.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise InvalidConfig(f"Expects accuracies in [0, 1] in {where}; actual {value!r} for {skill!r}.")
        values[str(skill)] = float(value)
    return values


def _load_reference(reference: Any) -> list[tuple[int, dict[str, float]]] | None:
    if reference is None:
        return None
    if isinstance(reference, (str, os.PathLike)):
        return _read_run(Path(reference))
    if isinstance(reference, Sequence) and not isinstance(reference, (bytes, bytearray)) and reference:
        return [(step, _accuracy_entry(entry, f"reference[{step}]")) for step, entry in enumerate(reference)]
    raise InvalidConfig(
        "Expects reference=None, a run directory or a non-empty list of per-step {skill: accuracy} dicts; "
        f"actual {reference!r}."
    )


def _read_run(run: Path) -> list[tuple[int, dict[str, float]]]:
    steps_file = run / "steps.jsonl"
    if not steps_file.is_file():
        raise InvalidConfig(f"Expects a run directory with steps.jsonl as the DoReMi reference; {str(run)!r} has none.")
    entries: dict[int, dict[str, float]] = {}
    for name in ("report.json", "checkpoint/runner.json"):  # step 0: the run's starting accuracy, when recorded
        path = run / name
        if 0 not in entries and path.is_file():
            try:
                start = json.loads(path.read_text()).get("val_accuracy_start")
            except (ValueError, AttributeError):
                start = None
            if start is not None:
                entries[0] = _accuracy_entry(start, f"{str(path)!r} val_accuracy_start")
    for number, line in enumerate(steps_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{str(steps_file)!r} line {number}"
        try:
            row = json.loads(line)
        except ValueError as err:
            raise InvalidConfig(f"Expects one JSON object per line in {where}; it does not parse ({err}).") from None
        if not isinstance(row, Mapping) or isinstance(row.get("step"), bool) or not isinstance(row.get("step"), int):
            raise InvalidConfig(f"Expects a whole-number 'step' in {where}.")
        entries[row["step"]] = _accuracy_entry(row.get("val_accuracy"), f"{where} val_accuracy")
    if not entries:
        raise InvalidConfig(f"Expects at least one step in {str(steps_file)!r} as the DoReMi reference; it is empty.")
    return sorted(entries.items())
