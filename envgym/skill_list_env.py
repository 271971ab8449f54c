"""``envgym/SkillList-v0``: a teacher allocates a per-step data budget over a list of skills."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envgym.plans import CountPlan, ExamplesPlan, coerce_plan
from envgym.skill_list_config import SkillListConfig
from skills.errors import did_you_mean
from skills.registry import make_task
from skills.splits import TaskSplits, TrainingPool
from skills.task import Example, skill_names
from students.base import Student

PlanHandler = Callable[[Any], tuple[list[Example], dict[str, Any]]]


class BudgetBox(spaces.Box):
    """Non-negative integer counts per skill whose sum is at most ``budget``.

    ``sample()`` draws a random allocation of the whole budget, so RL libraries and ``check_env`` only ever
    produce valid plans.
    """

    def __init__(self, n_skills: int, budget: int, seed: int | None = None) -> None:
        super().__init__(low=0, high=budget, shape=(n_skills,), dtype=np.int64, seed=seed)
        self.budget = budget

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        n = self.shape[0]
        return self.np_random.multinomial(self.budget, np.full(n, 1.0 / n)).astype(np.int64)

    def contains(self, x: Any) -> bool:
        return bool(super().contains(x) and np.asarray(x).sum() <= self.budget)

    def __repr__(self) -> str:
        return f"BudgetBox(n_skills={self.shape[0]}, budget={self.budget})"


def _make_student(config: SkillListConfig) -> Student:
    from students.hf_student import HFStudent
    from students.hf_student_config import HFStudentConfig

    if not isinstance(config.student, str):
        return config.student
    student_config = config.student_config
    if isinstance(student_config, dict):
        student_config = HFStudentConfig(**student_config)
    if config.student == "default":
        from students.default_student import default_student_dir

        return HFStudent(default_student_dir(), student_config)
    return HFStudent(config.student, student_config)


class SkillListEnv(gym.Env):
    """DataEnvGym's skill-list structure: each step the teacher spends a data budget over named skills.

    * Observation (``spaces.Dict``): ``accuracy`` (per-skill validation accuracy), ``missing_skill_profile``
      (share of the student's validation failures that fall in each skill; zeros when there are none),
      ``budget_left`` and ``step``.
    * Action: a :class:`BudgetBox` array of per-skill example counts, a ``{skill: count}`` dict, a
      :class:`~envgym.plans.CountPlan` or an :class:`~envgym.plans.ExamplesPlan`.
    * Reward: ``mean_k acc_val_k(after) - mean_k acc_val_k(before)``, the gain in macro-averaged validation
      accuracy over the skills caused by this step.
    * ``terminated`` is True once the step count or the total budget is used up (both are part of the
      observed state); ``truncated`` is always False (wrap with ``TimeLimit`` for an external cut-off).
    * ``info``: ``skills``, ``errors`` (validation failures: question, answer, gold, skill), ``budget_next``
      (what the next step may spend) and, after a step, data statistics. It is deterministic given the seed;
      wall-clock seconds per phase are in ``env.unwrapped.timings``. Test questions never
      appear in observations or info; the episode runner calls :meth:`evaluate` with ``"test"`` itself.

    Example:
        >>> import gymnasium as gym, envgym
        >>> env = gym.make("envgym/SkillList-v0", steps=1, budget=64)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step({"sub_borrow": 64})
        >>> terminated
        True
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(self, **kwargs: Any) -> None:
        self.config = SkillListConfig.from_kwargs(kwargs)
        self.task = make_task(self.config.task)
        self.skills = skill_names(self.task)
        self.splits = TaskSplits.build(
            self.task,
            n_val=self.config.n_val,
            n_test=self.config.n_test,
            split_seed=self.config.split_seed,
            heldout_fraction=self.config.heldout_fraction,
        )
        self.pool = TrainingPool(self.splits)
        self.student = _make_student(self.config)
        k = len(self.skills)
        total = int(self.config.total_budget)
        self.observation_space = spaces.Dict(
            {
                "accuracy": spaces.Box(0.0, 1.0, shape=(k,), dtype=np.float32),
                "missing_skill_profile": spaces.Box(0.0, 1.0, shape=(k,), dtype=np.float32),
                "budget_left": spaces.Box(0, total, shape=(1,), dtype=np.int64),
                "step": spaces.Discrete(self.config.steps + 1),
            }
        )
        self.action_space = BudgetBox(k, self.config.budget)
        self._plan_handlers: dict[str, PlanHandler] = {
            CountPlan.kind: self._data_for_counts,
            ExamplesPlan.kind: self._data_for_examples,
        }
        self._episode_seed = 0
        self._data_rng = np.random.default_rng(0)
        self.step_index = 0
        self.budget_left = total
        self.accuracy: dict[str, float] = {}
        self.accumulated: list[Example] = []
        self.last_training_data: list[Example] = []
        # Wall-clock seconds of the last reset/step by phase; kept out of info so info is deterministic.
        self.timings: dict[str, float] = {}
        self._started = False

    # -- plug-in point ---------------------------------------------------------------------------------
    def register_plan_kind(self, kind: str, handler: PlanHandler) -> None:
        """Accept plans whose ``kind`` is ``kind``: ``handler(plan)`` returns (training examples, stats)."""
        self._plan_handlers[kind] = handler

    # -- gymnasium API ---------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is None and not self._started:
            seed = self.config.seed
        super().reset(seed=seed)
        self._started = True
        self._episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31))
        self.action_space.seed(self._episode_seed)
        self._data_rng = np.random.default_rng([self._episode_seed, 7])
        self.step_index = 0
        self.budget_left = int(self.config.total_budget)
        self.accumulated = []
        self.last_training_data = []
        self.pool.dropped.clear()
        self.student.reset()
        start = time.perf_counter()
        self.accuracy, errors = self.evaluate("val")
        self.timings = {"generate_seconds": 0.0, "train_seconds": 0.0, "eval_seconds": time.perf_counter() - start}
        return self._observation(errors), self._info(errors)

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("Expects reset() before step(); call env.reset(seed=...) first.")
        if self.episode_over:
            raise RuntimeError(
                f"Expects a running episode; this one ended at step {self.step_index} with "
                f"{self.budget_left} examples left. Call reset() to start a new one."
            )
        plan = coerce_plan(action, self.skills)
        handler = self._plan_handlers.get(getattr(plan, "kind", None))
        if handler is None:
            raise ValueError(
                f"Expects a plan kind among {sorted(self._plan_handlers)}; actual {getattr(plan, 'kind', None)!r}."
                " Register new kinds with env.register_plan_kind(kind, handler)."
            )
        allowed = self.budget_next
        if plan.size > allowed:
            raise ValueError(
                f"Expects a plan of at most {allowed} examples this step (budget={self.config.budget} per step, "
                f"{self.budget_left} left in the episode); actual {plan.size}. Scale the counts down."
            )
        start = time.perf_counter()
        examples, data_stats = handler(plan)
        generate_seconds = time.perf_counter() - start

        seed = int(np.random.SeedSequence([self._episode_seed, self.step_index]).generate_state(1)[0])
        if self.config.mode == "retrain":
            self.accumulated.extend(examples)
            self.student.reset()
            train_stats = self.student.train(self.accumulated, seed=seed)
        else:
            train_stats = self.student.train(examples, seed=seed) if examples else {"loss": float("nan")}
        self.last_training_data = examples
        self.budget_left -= plan.size
        self.step_index += 1

        before = float(np.mean(list(self.accuracy.values())))
        start = time.perf_counter()
        self.accuracy, errors = self.evaluate("val")
        eval_seconds = time.perf_counter() - start
        reward = float(np.mean(list(self.accuracy.values()))) - before

        info = self._info(errors)
        info.update(
            plan=plan.to_json() if plan.kind == CountPlan.kind else {"kind": plan.kind, "size": plan.size},
            examples_used=len(examples),
            budget_spent=plan.size,
            train_loss=train_stats.get("loss"),
            **data_stats,
        )
        self.timings = {
            "generate_seconds": generate_seconds,
            "train_seconds": train_stats.get("seconds", 0.0),
            "eval_seconds": eval_seconds,
        }
        return self._observation(errors), reward, self.episode_over, False, info

    # -- data engines ----------------------------------------------------------------------------------
    def _data_for_counts(self, plan: CountPlan) -> tuple[list[Example], dict[str, Any]]:
        dropped_before = sum(self.pool.dropped.values())
        examples = self.pool.sample_plan(plan.counts, self._data_rng)
        return examples, {"dropped_heldout": sum(self.pool.dropped.values()) - dropped_before, "rejected": 0}

    def _data_for_examples(self, plan: ExamplesPlan) -> tuple[list[Example], dict[str, Any]]:
        unknown = [ex.skill for ex in plan.examples if ex.skill not in self.skills]
        if unknown:
            raise ValueError(
                f"Example names unknown skill {unknown[0]!r}.{did_you_mean(unknown[0], self.skills)} "
                f"Expects skills from: {', '.join(self.skills)}."
            )
        verified = [ex for ex in plan.examples if self.task.score(ex, ex.answer) >= 1.0]
        kept, dropped = self.splits.filter_training(verified)
        return kept, {"dropped_heldout": dropped, "rejected": len(plan.examples) - len(verified)}

    # -- evaluation ------------------------------------------------------------------------------------
    def evaluate(self, split: str = "val") -> tuple[dict[str, float], list[dict[str, str]]]:
        """Per-skill accuracy of the student on ``split`` and its failures there."""
        questions = self.splits.all_questions(split)
        answers = self.student.answer([ex.question for ex in questions])
        scores: dict[str, list[float]] = {skill: [] for skill in self.skills}
        errors = []
        for ex, answer in zip(questions, answers, strict=True):
            score = self.task.score(ex, answer)
            scores[ex.skill].append(score)
            if score < 1.0:
                errors.append({"question": ex.question, "answer": answer, "gold": ex.answer, "skill": ex.skill})
        return {skill: float(np.mean(values)) for skill, values in scores.items()}, errors

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def budget_next(self) -> int:
        return min(self.config.budget, self.budget_left)

    @property
    def episode_over(self) -> bool:
        """True once the step count or the total budget is used up."""
        return self.step_index >= self.config.steps or self.budget_left <= 0

    def missing_skill_profile(self, errors: Sequence[dict[str, str]]) -> np.ndarray:
        counts = np.array([sum(e["skill"] == s for e in errors) for s in self.skills], dtype=np.float32)
        return counts / counts.sum() if counts.sum() else counts

    def _observation(self, errors: Sequence[dict[str, str]]) -> dict[str, Any]:
        return {
            "accuracy": np.array([self.accuracy[s] for s in self.skills], dtype=np.float32),
            "missing_skill_profile": self.missing_skill_profile(errors),
            "budget_left": np.array([self.budget_left], dtype=np.int64),
            "step": self.step_index,
        }

    def _info(self, errors: list[dict[str, str]]) -> dict[str, Any]:
        if len(errors) > self.config.max_errors:
            picks = np.random.default_rng([self._episode_seed, self.step_index, 11]).choice(
                len(errors), self.config.max_errors, replace=False
            )
            errors = [errors[i] for i in sorted(picks)]
        return {
            "skills": list(self.skills),
            "val_accuracy": dict(self.accuracy),
            "errors": errors,
            "budget_next": self.budget_next,
            "step": self.step_index,
        }

    # -- persistence -----------------------------------------------------------------------------------
    def save_checkpoint(self, directory: str | Path) -> None:
        """Write the student and all environment/RNG state needed to continue the episode exactly."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.student.save(directory / "student")
        state = {
            "episode_seed": self._episode_seed,
            "step_index": self.step_index,
            "budget_left": self.budget_left,
            "accuracy": self.accuracy,
            "data_rng": self._data_rng.bit_generator.state,
            "np_random": self.np_random.bit_generator.state,
            "dropped": dict(self.pool.dropped),
        }
        (directory / "env_state.json").write_text(json.dumps(state))
        with open(directory / "accumulated.jsonl", "w") as f:
            for ex in self.accumulated:
                f.write(json.dumps(ex.to_dict()) + "\n")

    def load_checkpoint(self, directory: str | Path) -> None:
        directory = Path(directory)
        path = directory / "env_state.json"
        if not path.is_file():
            raise ValueError(f"Expects an environment checkpoint at {str(path)!r}; none found.")
        state = json.loads(path.read_text())
        self._started = True
        self._episode_seed = state["episode_seed"]
        self.step_index = state["step_index"]
        self.budget_left = state["budget_left"]
        self.accuracy = state["accuracy"]
        self._data_rng = np.random.default_rng()
        self._data_rng.bit_generator.state = state["data_rng"]
        self.np_random.bit_generator.state = state["np_random"]
        self.pool.dropped.clear()
        self.pool.dropped.update(state["dropped"])
        with open(directory / "accumulated.jsonl") as f:
            self.accumulated = [Example.from_dict(json.loads(line)) for line in f]
        self.student.load(directory / "student")
