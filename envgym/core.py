"""The core every envgym environment shares: :class:`TeachingEnv`, as ``gymnasium.Env`` is Gymnasium's.

A teaching environment wraps a student. It owns the episode state machine (steps, per-step and total budget), the
data engines (plan handlers), the referee (budget, independent verification, held-out filtering, the student's
input limits), evaluation and the missing-skill profile, persistence (checkpoints, snapshots) and ``close()``. A
concrete environment only defines its spaces (:meth:`TeachingEnv._make_spaces`), its observation
(:meth:`TeachingEnv._observation`) and, if it needs to, how an action becomes a plan (:meth:`TeachingEnv._plan`)
and its reward (:meth:`TeachingEnv._reward`; default: the gain in macro-averaged validation accuracy). The
episode runner accepts any ``TeachingEnv``; :func:`envgym.check_teaching_env` checks the contract.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from agents.base import allocate
from envgym.files import jsonable, read_json
from envgym.plans import (
    CountPlan,
    ExamplesPlan,
    PreferencePlan,
    ReweightPlan,
    SynthesisPlan,
    validate_plan,
    validate_training_items,
)
from envgym.skill_list_config import SkillListConfig
from skills.attribution import CONSISTENCY_TEMPERATURE, consistency_difficult, make_attributor, missing_skill_profile
from skills.data_engine import DataEngine, ProceduralDataEngine
from skills.errors import DamagedCheckpoint, InvalidConfig, InvalidPlan, ResetNeeded, unknown_name_error
from skills.llm import LLMClient
from skills.llm.data_engine import SELF_CONSISTENCY, VERIFIED_BY, LLMDataEngine
from skills.pool import FixedPool
from skills.registry import make_task
from skills.splits import TaskSplits, TrainingPool
from skills.storage import read_examples_jsonl, write_examples_jsonl
from skills.task import (
    Example,
    PreferencePair,
    Verdict,
    prerequisite_edges,
    score_answers,
    skill_names,
    verify_examples,
)
from students.base import PreferenceStudent, SamplingStudent, SnapshotStudent
from students.factory import make_student

PlanHandler = Callable[[Any], tuple[list[Example], dict[str, Any]]]
# STAT-Syn: reference examples per new example's prompt (the paper's 3). A request for n examples of a skill draws
# max(3, n) distinct references, so the new data is spread like the pool's rather than bunched around 3 questions.
REFERENCES_PER_PROMPT = 3
RESET_OPTIONS = ("checkpoint",)


class TeachingEnv(gym.Env):
    """Base class of envgym's environments: a teacher improves a student through data, one budgeted step at a time.

    Subclasses set :attr:`env_id` and :attr:`config_class` and implement :meth:`_make_spaces` and
    :meth:`_observation`. ``reset(options={"checkpoint": dir})`` continues an episode from
    :meth:`save_checkpoint` output without evaluating the student again, and returns the observation and info
    the episode had there.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    env_id: ClassVar[str | None] = None  # the registered id, written to run directories
    config_class: ClassVar[Any] = SkillListConfig

    def __init__(self, **kwargs: Any) -> None:
        self.config = self.config_class.from_kwargs(kwargs)
        self.task = make_task(self.config.task)
        self.skills = skill_names(self.task)
        self._prerequisites = prerequisite_edges(self.task)
        self.splits = TaskSplits.build(
            self.task,
            n_val=self.config.n_val,
            n_test=self.config.n_test,
            split_seed=self.config.split_seed,
            heldout_fraction=self.config.heldout_fraction,
        )
        self.pool = TrainingPool(self.splits)
        # A task may need more generation room than a student's defaults give (a code task's answers are whole
        # functions): its student_defaults apply to a student built by name, under the caller's own fields.
        self.student = make_student(
            self.config.student, self.config.student_config, defaults=getattr(self.task, "student_defaults", None)
        )
        self._check_task_fits_student()
        total = int(self.config.total_budget)
        self.observation_space, self.action_space = self._make_spaces()
        self._plan_handlers: dict[str, PlanHandler] = {
            CountPlan.kind: self._data_for_counts,
            ExamplesPlan.kind: self._data_for_examples,
            ReweightPlan.kind: self._data_for_reweight,
            SynthesisPlan.kind: self._data_for_synthesis,
            PreferencePlan.kind: self._data_for_preferences,
        }
        # Checked once here, not at step time: a preference plan to a student that cannot learn from pairs is
        # refused with what to do, before anything is charged.
        self.learns_preferences = isinstance(self.student, PreferenceStudent)
        self.data_engine = self._make_data_engine()
        self.attributor = make_attributor(self.config.attributor, self.config.attributor_llm)
        if self.config.difficulty == "consistency" and not isinstance(self.student, SamplingStudent):
            raise InvalidConfig(
                f"Expects a student with sample_answers() for difficulty='consistency'; {type(self.student).__name__} "
                "has none. Use difficulty='ground_truth', or a students.HFStudent."
            )
        # STAT's fixed training pool: loaded once from a file, or drawn at every reset from the episode seed.
        self.fixed_pool: FixedPool | None = None
        self.pool_file_stats: dict[str, int] = {}
        if self.config.pool_file is not None:
            self.fixed_pool, self.pool_file_stats = FixedPool.load(self.config.pool_file, self.pool, self.skills)
        # Kinds whose data the environment's data engine makes. With the procedural engine they are task-generated
        # (gold by construction, held-out filtered by the pool); an LLM engine's go through the full referee,
        # which also honours the engine's self-consistency check for them (and never for a teacher's examples).
        # With a fixed pool, count and reweight plans select from it instead: task-generated if the task drew it,
        # verified like a teacher's examples if it came from a file.
        pool_kinds = {CountPlan.kind, ReweightPlan.kind}
        self._engine_kinds = {SynthesisPlan.kind} | (set() if self.has_fixed_pool else pool_kinds)
        self._task_generated_kinds = set(self._engine_kinds) if self.data_engine.trusted else set()
        if self.config.pool_size > 0:
            self._task_generated_kinds |= pool_kinds
        self._episode_seed = 0
        self._data_rng = np.random.default_rng(0)
        self.step_index = 0
        self.budget_left = total
        self.accuracy: dict[str, float] = {}
        self.accumulated: list[Example] = []
        self.last_training_data: list[Example] = []
        # The missing-skill profile and the reported errors (with their attributed skills) of the last evaluation.
        self._profile = np.zeros(len(self.skills), dtype=np.float32)
        self._reported: list[dict[str, Any]] = []
        # Wall-clock seconds of the last reset/step by phase; kept out of info so info is deterministic.
        self.timings: dict[str, float] = {}
        self._started = False
        # What the last reset/step returned (JSON-able), so a checkpoint can give it back without re-evaluating.
        self._last_observation: Any = None
        self._last_info: dict[str, Any] = {}

    # -- what a concrete environment defines ------------------------------------------------------------
    def _make_spaces(self) -> tuple[gym.Space, gym.Space]:
        """``(observation_space, action_space)``; called once the task, splits and student exist."""
        raise NotImplementedError

    def _observation(self, errors: Sequence[dict[str, str]]) -> Any:
        """The observation after a reset or step, from the current state and the validation ``errors``."""
        raise NotImplementedError

    def _plan(self, action: Any) -> Any:
        """Turn an action into a validated plan (see :func:`envgym.plans.validate_plan`) or raise InvalidPlan."""
        return validate_plan(
            action,
            self.skills,
            list(self._plan_handlers),
            allowed=self.budget_next,
            why=f" (budget={self.config.budget} per step, {self.budget_left} left in the episode)",
        )

    def _reward(self, before: dict[str, float], after: dict[str, float]) -> float:
        """Default: the step's gain in validation accuracy, macro-averaged over skills."""
        return float(np.mean(list(after.values()))) - float(np.mean(list(before.values())))

    def _start_episode(self) -> None:
        """Reset the env's own episode state (a skill tree); called by ``reset()`` before the first evaluation."""

    def _evaluated(self, errors: Sequence[dict[str, str]]) -> None:
        """Record a validation evaluation (``self.accuracy`` is already updated); called before
        :meth:`_observation` after every reset and step."""

    def write_report_files(self, out_dir: str | Path) -> list[Path]:
        """Write the env's own pictures or tables of a finished episode beside ``accuracy.png``; returns them."""
        return []

    # -- plug-in point ---------------------------------------------------------------------------------
    def register_plan_kind(self, kind: str, handler: PlanHandler) -> None:
        """Accept plans whose ``kind`` is ``kind``: ``handler(plan)`` returns (training examples, stats).

        ``plan.size`` is charged to the budget, and the handler may return at most that many examples. They are
        untrusted like a teacher's own: each is checked against the student's input limits, verified by the
        task and held-out filtered before training (see :meth:`step`)."""
        if not isinstance(kind, str) or not kind:
            raise InvalidConfig(f"Expects a non-empty string plan kind; actual {kind!r}.")
        if kind in self._plan_handlers:
            raise InvalidConfig(f"Expects a new plan kind; {kind!r} is already registered.")
        self._plan_handlers[kind] = handler

    # -- gymnasium API ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode (the student back to its base weights), or with ``options={"checkpoint": dir}``
        continue the one saved there, returning the observation and info it had when saved."""
        for key in options or {}:
            if key not in RESET_OPTIONS:
                raise unknown_name_error("reset option", str(key), RESET_OPTIONS)
        if options and options.get("checkpoint") is not None:
            super().reset(seed=None if seed is None else int(seed))
            self.load_checkpoint(options["checkpoint"])
            return copy.deepcopy(self._last_observation), copy.deepcopy(self._last_info)
        if seed is None and not self._started:
            seed = self.config.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise InvalidConfig(f"Expects a seed that is a whole number >= 0, or None; actual {seed!r}.")
        super().reset(seed=None if seed is None else int(seed))
        self._started = True
        self._episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31))
        self.action_space.seed(self._episode_seed)
        self._data_rng = np.random.default_rng([self._episode_seed, 7])
        self.step_index = 0
        self.budget_left = int(self.config.total_budget)
        self.accumulated = []
        self.last_training_data = []
        self.pool.dropped.clear()
        self._draw_fixed_pool()
        self.student.reset()
        self._start_episode()
        start = time.perf_counter()
        self.accuracy, errors = self.evaluate("val")
        self._attribute(errors)
        self._evaluated(errors)
        self.timings = {"generate_seconds": 0.0, "train_seconds": 0.0, "eval_seconds": time.perf_counter() - start}
        return self._remember(self._observation(errors), self._info())

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Validate the plan, build its data, referee it, train, evaluate. A refused plan changes nothing.

        Whatever the plan holds: its size is charged to the budget (rejected examples included, so a teacher
        cannot buy data with bad examples); the student only trains on examples it can represent within its
        context, that the task verified independently (or, for a plan kind whose data the task generated,
        produced), and whose held-out key is not reserved for validation/test.
        """
        if not self._started:
            raise ResetNeeded("Expects reset() before step(); call env.reset(seed=...) first.")
        if self.episode_over:
            raise ResetNeeded(
                f"Expects a running episode; this one ended at step {self.step_index} with "
                f"{self.budget_left} examples left. Call reset() to start a new one."
            )
        plan = self._plan(action)
        start = time.perf_counter()
        examples, data_stats = self._plan_handlers[plan.kind](plan)
        examples, referee_stats = self._referee(
            examples,
            plan,
            task_generated=plan.kind in self._task_generated_kinds,
            engine_made=plan.kind in self._engine_kinds,
        )
        generate_seconds = time.perf_counter() - start

        seed = int(np.random.SeedSequence([self._episode_seed, self.step_index]).generate_state(1)[0])
        if self.config.mode == "retrain":
            self.accumulated.extend(examples)
            self.student.reset()
            train_stats = self._train(self.accumulated, seed)
        else:
            train_stats = self._train(examples, seed)
        self.last_training_data = examples
        self.budget_left -= plan.size
        self.step_index += 1

        before = dict(self.accuracy)
        start = time.perf_counter()
        self.accuracy, errors = self.evaluate("val")
        self._attribute(errors)
        self._evaluated(errors)
        eval_seconds = time.perf_counter() - start
        reward = self._reward(before, self.accuracy)

        loss = train_stats.get("loss")
        info = self._info()
        info.update(
            # A plan's own JSON where it has one; a list of examples is summarised (the data is in the run's files).
            plan=plan.to_json()
            if callable(getattr(plan, "to_json", None)) and plan.kind != ExamplesPlan.kind
            else {"kind": plan.kind, "size": plan.size},
            examples_used=len(examples),
            budget_spent=plan.size,
            # None, not NaN, when nothing was trained: steps.jsonl must stay strict JSON.
            train_loss=float(loss) if loss is not None and math.isfinite(loss) else None,
            **({"preference_loss": train_stats["preference_loss"]} if "preference_loss" in train_stats else {}),
            **{
                **data_stats,
                **referee_stats,
                # The pool's drops while generating (task-generated kinds) and the referee's, together.
                "dropped_heldout": data_stats.get("dropped_heldout", 0) + referee_stats["dropped_heldout"],
            },
        )
        self.timings = {
            "generate_seconds": generate_seconds,
            "train_seconds": train_stats.get("seconds", 0.0),
            "eval_seconds": eval_seconds,
        }
        observation, info = self._remember(self._observation(errors), info)
        return observation, reward, self.episode_over, False, info

    def _train(self, data: Sequence[Example | PreferencePair], seed: int) -> dict[str, Any]:
        """SFT on the examples, then (a preference plan's) DPO on the pairs; the loss reported is the SFT loss, or
        the DPO loss for a step of pairs only (both are in ``info``: ``train_loss``, ``preference_loss``)."""
        examples = [item for item in data if isinstance(item, Example)]
        pairs = [item for item in data if isinstance(item, PreferencePair)]
        stats = self.student.train(examples, seed=seed) if examples else {"loss": None, "seconds": 0.0}
        if pairs:
            preference = self.student.train_preferences(pairs, seed=seed)
            stats = {
                "loss": stats.get("loss") if examples else preference.get("loss"),
                "preference_loss": preference.get("loss"),
                "seconds": stats.get("seconds", 0.0) + preference.get("seconds", 0.0),
            }
        return stats

    def _remember(self, observation: Any, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        self._last_observation = copy.deepcopy(observation)
        self._last_info = copy.deepcopy(info)
        return observation, info

    # -- the referee -----------------------------------------------------------------------------------
    def _referee(
        self, examples: Any, plan: Any, *, task_generated: bool, engine_made: bool = False
    ) -> tuple[list[Example | PreferencePair], dict[str, Any]]:
        """Keep only the examples (and preference pairs) that may be trained on, and say why each other one was not.

        One path for every plan kind's output, built-in or registered: at most the plan's size (what the budget is
        charged), within the student's input limits, passing the task's independent verifier, the first of its
        canonical question in the plan, and not held out. Unverifiable examples are rejected unless the task's own
        generator made them (``task_generated``), ``config.accept_unverifiable``, or (``engine_made``) the
        environment's own LLM data engine found them self-consistent.
        """
        examples = validate_training_items(examples, self.skills)
        if not self.learns_preferences and any(isinstance(item, PreferencePair) for item in examples):
            raise InvalidPlan(
                f"Expects training examples from the {plan.kind!r} plan handler: {type(self.student).__name__} "
                "cannot learn from preference pairs (no train_preferences()). Return examples, or use a "
                "students.HFStudent."
            )
        if len(examples) > plan.size:
            raise InvalidPlan(
                f"Expects the {plan.kind!r} plan handler to return at most the plan's size ({plan.size}) "
                f"examples, which is what the budget is charged; actual {len(examples)}."
            )
        rejections: Counter[str] = Counter()
        rejected: list[dict[str, Any]] = []
        accepted_unverifiable = 0
        accepted_by_consensus = 0
        kept: list[Example | PreferencePair] = []

        def reject(index: int, example: Example | PreferencePair, reason: str, detail: str) -> None:
            rejections[reason] += 1
            if len(rejected) < self.config.max_errors:
                rejected.append({"index": index, "skill": example.skill, "reason": reason, "detail": detail})

        check_inputs = getattr(self.student, "check_inputs", None)
        # A preference pair is checked as its chosen answer (the one it trains towards) and must fit with both.
        answers = [ex.chosen if isinstance(ex, PreferencePair) else ex.answer for ex in examples]
        problems = (
            check_inputs([ex.question for ex in examples], answers)
            if check_inputs is not None and examples
            else [None] * len(examples)
        )
        pair_indices = [i for i, ex in enumerate(examples) if isinstance(ex, PreferencePair)]
        if check_inputs is not None and pair_indices:
            rejected_problems = check_inputs(
                [examples[i].question for i in pair_indices], [examples[i].rejected for i in pair_indices]
            )
            for i, problem in zip(pair_indices, rejected_problems, strict=True):
                problems[i] = problems[i] or (problem and f"the rejected answer: {problem}")
        heldout = 0
        seen: set[tuple[str, ...]] = set()
        # What is refused before verification; the rest is verified together (a code task runs the programs in
        # parallel), then refereed one by one in the plan's order.
        refused: list[tuple[str, str] | None] = [
            ("unfit_for_student", problem)
            if problem is not None
            else ("not_a_preference", "its chosen and rejected answers are the same text")
            if isinstance(item, PreferencePair) and item.chosen == item.rejected
            else None
            for item, problem in zip(examples, problems, strict=True)
        ]
        checked = [index for index, reason in enumerate(refused) if reason is None]
        verified = verify_examples(self.task, [_as_example(examples[index]) for index in checked])
        verdicts = dict(zip(checked, verified, strict=True))
        for index, (item, reason) in enumerate(zip(examples, refused, strict=True)):
            if reason is not None:
                reject(index, item, *reason)
                continue
            is_pair = isinstance(item, PreferencePair)
            example = _as_example(item)
            verification = verdicts[index]
            unverifiable = verification.verdict is Verdict.UNVERIFIABLE
            produced = task_generated and unverifiable  # gold by construction: the task's generator wrote it
            consensus = engine_made and unverifiable and example.metadata.get(VERIFIED_BY) == SELF_CONSISTENCY
            unverifiable_ok = unverifiable and self.config.accept_unverifiable and not (consensus or produced)
            if not (verification.ok or produced or unverifiable_ok or consensus):
                reject(index, example, verification.verdict.value, verification.detail)
                continue
            # One training example per canonical question a plan: a verified repeat is dropped and counted, not
            # trained on twice (the canonical key of the held-out filter, so "47+38=" repeats "38+47=").
            # Pairs are distinct by their rejected answer too: SPaR refines several failing samples of one prompt.
            key = (
                (self.task.heldout_key(example.question), item.rejected)
                if is_pair
                else (self.task.heldout_key(example.question),)
            )
            if key in seen:
                what = "pair's question and rejected answer" if is_pair else "example's question"
                reject(index, item, "duplicate", f"repeats an earlier {what} ({example.question!r})")
                continue
            seen.add(key)
            accepted_unverifiable += unverifiable_ok
            accepted_by_consensus += consensus
            if self.splits.is_heldout(example.question):
                heldout += 1
                continue
            kept.append(item)
        stats: dict[str, Any] = {
            "rejected": sum(rejections.values()),
            "rejections": dict(sorted(rejections.items())),
            "rejected_examples": sorted(rejected, key=lambda row: row["index"]),
            "unverifiable_accepted": accepted_unverifiable,
            "dropped_heldout": heldout,
        }
        if engine_made and not task_generated:
            stats["self_consistent_accepted"] = accepted_by_consensus
        return kept, stats

    def _check_task_fits_student(self) -> None:
        """Refuse, before any episode, a task whose held-out questions the student cannot take, or whose answers
        are longer than the student may generate (every such question would be scored wrong whatever it learns)."""
        check_inputs = getattr(self.student, "check_inputs", None)
        if check_inputs is None:
            return
        questions = self.splits.all_questions("val") + self.splits.all_questions("test")
        self._check_answers_fit_generation(questions)
        eval_problems = check_inputs([ex.question for ex in questions])
        train_problems = check_inputs([ex.question for ex in questions], [ex.answer for ex in questions])
        failing: dict[str, list[str]] = {}
        for ex, eval_problem, train_problem in zip(questions, eval_problems, train_problems, strict=True):
            problem = eval_problem or train_problem
            if problem is not None:
                failing.setdefault(ex.skill, []).append(problem)
        if not failing:
            return
        per_skill = {skill: sum(ex.skill == skill for ex in questions) for skill in failing}
        details = "; ".join(
            f"{skill}: {len(problems)} of {per_skill[skill]} held-out questions (e.g. {problems[0]})"
            for skill, problems in failing.items()
        )
        fitting = [skill for skill in self.skills if skill not in failing]
        hint = (
            f"Drop those skills (keep {', '.join(fitting)}), or use a student with a longer context"
            if fitting
            else "Use a student with a longer context"
        )
        raise InvalidConfig(
            f"Task {self.task.name!r} does not fit the student: {details}. {hint}: a Hugging Face model directory "
            "as student= with a larger HFStudentConfig.max_length, e.g. the Gemma-3-270M student (students/gemma.py)."
        )

    def _check_answers_fit_generation(self, questions: Sequence[Example]) -> None:
        config, tokenizer = getattr(self.student, "config", None), getattr(self.student, "tokenizer", None)
        room = getattr(config, "max_new_tokens", None)
        if not isinstance(room, int) or tokenizer is None:
            return
        # What generation must produce before it may stop: the completion without its end token (an answer cut
        # off at max_new_tokens before the end token is still whole).
        eos = tokenizer.eos_token or ""
        answers = [self.student.format_completion(ex.answer).removesuffix(eos) for ex in questions]
        lengths = [len(ids) for ids in tokenizer(answers, add_special_tokens=False)["input_ids"]]
        longest = max(lengths, default=0)
        if longest > room:
            example = questions[lengths.index(longest)]
            raise InvalidConfig(
                f"Expects HFStudentConfig.max_new_tokens >= {longest} for task {self.task.name!r} (its longest "
                f"held-out answer, e.g. {example.answer!r}); actual {room}. Pass "
                f"student_config={{'max_new_tokens': {longest}}} (--student-max-new-tokens {longest})."
            )

    # -- data engines ----------------------------------------------------------------------------------
    def _make_data_engine(self) -> DataEngine:
        """The task's procedural generator, or with ``config.data_engine="llm"`` an :class:`LLMDataEngine`."""
        if self.config.data_engine == "llm":
            return LLMDataEngine(self.task, LLMClient(self.config.data_engine_llm))
        return ProceduralDataEngine(self.pool)

    def use_cache_dir(self, path: str | Path) -> None:
        """Cache the LLM data engine's replies in ``path`` (the runner passes ``<run dir>/llm_cache``), so a
        resumed run never asks twice; nothing for the procedural engine."""
        for part in (self.data_engine, self.attributor):
            client = getattr(part, "client", None)
            if client is not None:
                client.use_cache_dir(path)

    def _data_for_counts(self, plan: CountPlan) -> tuple[list[Example], dict[str, Any]]:
        return self._data_for_pool_counts(dict(plan.counts))

    def _data_for_examples(self, plan: ExamplesPlan) -> tuple[list[Example], dict[str, Any]]:
        return list(plan.examples), {}

    def _data_for_preferences(self, plan: PreferencePlan) -> tuple[list[Example | PreferencePair], dict[str, Any]]:
        if not self.learns_preferences:
            raise InvalidPlan(
                f"Expects a student with train_preferences() for a {plan.kind!r} plan; {type(self.student).__name__} "
                "has none. Use a students.HFStudent (or implement students.PreferenceStudent), or send SFT examples."
            )
        return [*plan.examples, *plan.pairs], {"pairs_planned": len(plan.pairs)}

    def _data_for_pool_counts(self, counts: dict[str, int]) -> tuple[list[Example], dict[str, Any]]:
        """A count plan's examples: from the fixed pool when there is one, else from the data engine."""
        if self.fixed_pool is None:
            return self.data_engine.for_counts(counts, self._data_rng)
        examples, short = self.fixed_pool.sample_counts(counts, self._data_rng)
        return examples, {"pool_short": short}

    def _data_for_reweight(self, plan: ReweightPlan) -> tuple[list[Example], dict[str, Any]]:
        if plan.skill_weights is not None:
            weights = [plan.skill_weights[skill] for skill in self.skills]
            counts = allocate(weights, plan.size) if sum(weights) > 0 else np.zeros(len(self.skills), dtype=np.int64)
            return self._data_for_pool_counts(dict(zip(self.skills, counts.tolist(), strict=True)))
        if self.fixed_pool is None:
            raise InvalidPlan(
                "Expects a fixed training pool for per-example weights; this environment draws fresh data. Make "
                "it with pool_size=N or pool_file=PATH, or weigh skills (ReweightPlan(size, skill_weights=...))."
            )
        beyond = sorted(i for i in plan.example_weights or {} if i >= len(self.fixed_pool))[:5]
        if beyond:
            raise InvalidPlan(f"Expects pool indices below the pool's size ({len(self.fixed_pool)}); actual {beyond}.")
        examples = self.fixed_pool.sample_weighted(plan.size, plan.example_weights or {}, self._data_rng)
        return examples, {"pool_short": plan.size - len(examples)}

    def _data_for_synthesis(self, plan: SynthesisPlan) -> tuple[list[Example], dict[str, Any]]:
        """Each request's references from the fixed pool (else fresh from the task's generator): ``max(3, n)`` of
        them, so that every new example has its own (the paper draws 3 per difficult question); then the data
        engine's new examples in their style."""
        examples: list[Example] = []
        engine_stats: list[dict[str, Any]] = []
        for skill, n in plan.requests:
            if n <= 0:
                continue
            wanted = max(REFERENCES_PER_PROMPT, n)
            if self.fixed_pool is not None:
                references = self.fixed_pool.references(skill, wanted, self._data_rng)
            else:
                references = self.pool.sample(skill, wanted, self._data_rng)
            made, stats = self.data_engine.for_references(references, skill, n, self._data_rng)
            examples += made[:n]
            engine_stats.append(stats)
        summed = _summed(engine_stats)
        return examples, {"synthesis": summed, "dropped_heldout": summed.get("dropped_heldout", 0)}

    # -- evaluation ------------------------------------------------------------------------------------
    def evaluate(self, split: str = "val") -> tuple[dict[str, float], list[dict[str, str]]]:
        """Per-skill accuracy of the student on ``split`` and its failures there."""
        questions = self.splits.all_questions(split)
        answers = self.student.answer([ex.question for ex in questions])
        if len(answers) != len(questions):  # a plug-in student's bug, named before any score pairs up wrongly
            raise InvalidConfig(
                f"Expects {type(self.student).__name__}.answer to return one answer per question "
                f"({len(questions)}); actual {len(answers)}."
            )
        scores: dict[str, list[float]] = {skill: [] for skill in self.skills}
        errors = []
        for ex, answer, score in zip(questions, answers, score_answers(self.task, questions, answers), strict=True):
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

    @property
    def has_fixed_pool(self) -> bool:
        """Whether plans select from a fixed training pool (``pool_size`` or ``pool_file``) instead of fresh data."""
        return self.config.pool_size > 0 or self.config.pool_file is not None

    def missing_skill_profile(self) -> np.ndarray:
        """The missing-skill profile of the last evaluation: each skill's share of the attributor's attributions
        over the validation errors (every error, or the reported sample for an LLM attributor); zeros when none."""
        return self._profile.copy()

    def reported_errors(self, errors: list[dict[str, str]]) -> list[dict[str, str]]:
        """The validation errors reported in ``info["errors"]``: at most ``max_errors``, a seeded sample."""
        return [errors[i] for i in self._reported_indices(len(errors))]

    def _reported_indices(self, n_errors: int) -> list[int]:
        if n_errors <= self.config.max_errors:
            return list(range(n_errors))
        picks = np.random.default_rng([self._episode_seed, self.step_index, 11]).choice(
            n_errors, self.config.max_errors, replace=False
        )
        return sorted(int(i) for i in picks)

    def _attribute(self, errors: list[dict[str, str]]) -> None:
        """Attribute the difficult validation questions to missing skills: the profile and the reported ones, each
        with its ``missing_skills``. Difficult: the ``errors`` (``difficulty="ground_truth"``), or the questions
        whose sampled answers disagree (``"consistency"``, label-free; reported with the most common answer)."""
        if self.config.difficulty == "consistency":
            questions = self.splits.all_questions("val")
            seed = int(np.random.SeedSequence([self._episode_seed, self.step_index, 17]).generate_state(1)[0])
            samples = self.student.sample_answers(
                [ex.question for ex in questions],
                self.config.consistency_samples,
                temperature=CONSISTENCY_TEMPERATURE,
                seed=seed,
            )
            errors = consistency_difficult(questions, samples)
        indices = self._reported_indices(len(errors))
        if self.attributor.attributes_all:
            attributions = self.attributor.attribute(self.task, errors)
            reported = [attributions[i] for i in indices]
        else:  # an LLM attributor: the reported sample only, one request per error
            reported = attributions = self.attributor.attribute(self.task, [errors[i] for i in indices])
        self._profile = missing_skill_profile(attributions, self.skills)
        self._reported = [
            {**errors[i], "missing_skills": list(named)} for i, named in zip(indices, reported, strict=True)
        ]

    def _draw_fixed_pool(self) -> None:
        if self.config.pool_size > 0:
            rng = np.random.default_rng([self._episode_seed, 13])
            self.fixed_pool = FixedPool.draw(self.pool, self.config.pool_size, rng)

    def _info(self) -> dict[str, Any]:
        profile = dict(zip(self.skills, self.missing_skill_profile().tolist(), strict=True))
        return {
            "task": self.task.name,
            "skills": list(self.skills),
            "skill_descriptions": {skill.name: skill.description for skill in self.task.skills},
            "prerequisites": [list(edge) for edge in self._prerequisites],
            "val_accuracy": dict(self.accuracy),
            "missing_skill_profile": profile,
            "attributor": self.attributor.name,
            "errors": copy.deepcopy(self._reported),
            "budget_next": self.budget_next,
            "step": self.step_index,
        }

    # -- persistence -----------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        """The environment's own episode state (JSON types), shared by checkpoints and snapshots."""
        return {
            "episode_seed": self._episode_seed,
            "step_index": self.step_index,
            "budget_left": self.budget_left,
            "accuracy": dict(self.accuracy),
            "data_rng": self._data_rng.bit_generator.state,
            "np_random": self.np_random.bit_generator.state,
            "dropped": dict(self.pool.dropped),
            "observation": None
            if self._last_observation is None
            else jsonable(self.observation_space.to_jsonable([self._last_observation])),
            "info": jsonable(self._last_info),
        }

    def _set_state(self, state: dict[str, Any], accumulated: list[Example]) -> None:
        self._started = True
        self._episode_seed = state["episode_seed"]
        self.step_index = state["step_index"]
        self.budget_left = state["budget_left"]
        self.accuracy = dict(state["accuracy"])
        self._data_rng = np.random.default_rng()
        self._data_rng.bit_generator.state = state["data_rng"]
        self.np_random.bit_generator.state = state["np_random"]
        self._draw_fixed_pool()
        self.pool.dropped.clear()
        self.pool.dropped.update(state["dropped"])
        self.accumulated = list(accumulated)
        saved = state["observation"]
        self._last_observation = None if saved is None else self.observation_space.from_jsonable(saved)[0]
        self._last_info = state["info"]

    def snapshot(self) -> EnvSnapshot:
        """An in-memory copy of the whole episode state: student weights and optimizer, every RNG, budget, step.
        :meth:`restore` returns to it, after which the same step gives identical numbers (lookahead teachers
        such as the oracle try candidate plans this way)."""
        if not self._started:
            raise ResetNeeded("Expects reset() before snapshot(); call env.reset(seed=...) first.")
        if isinstance(self.student, SnapshotStudent):
            student_state: Any = self.student.snapshot()
        else:  # any Student can round-trip through save/load
            student_state = tempfile.mkdtemp(prefix="envgym-snapshot-")
            self.student.save(student_state)
        snapshot = EnvSnapshot(
            state=copy.deepcopy(self._state()),
            accumulated=list(self.accumulated),
            last_training_data=list(self.last_training_data),
            student=student_state,
        )
        if isinstance(student_state, str):  # the temporary directory lives as long as the snapshot
            weakref.finalize(snapshot, shutil.rmtree, student_state, ignore_errors=True)
        return snapshot

    def restore(self, snapshot: EnvSnapshot) -> None:
        """Return to a :meth:`snapshot` of this environment exactly; the snapshot stays reusable."""
        if not isinstance(snapshot, EnvSnapshot):
            raise InvalidConfig(f"Expects an EnvSnapshot from env.snapshot(); actual {type(snapshot).__name__}.")
        if isinstance(self.student, SnapshotStudent) and not isinstance(snapshot.student, str):
            self.student.restore(snapshot.student)
        else:
            self.student.load(snapshot.student)
        self._set_state(copy.deepcopy(snapshot.state), snapshot.accumulated)
        self.last_training_data = list(snapshot.last_training_data)

    def save_checkpoint(self, directory: str | Path) -> None:
        """Write the student and all environment/RNG state needed to continue the episode exactly."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.student.save(directory / "student")
        (directory / "env_state.json").write_text(json.dumps(self._state()))
        write_examples_jsonl(directory / "accumulated.jsonl", self.accumulated)

    def load_checkpoint(self, directory: str | Path) -> None:
        """Restore what :meth:`save_checkpoint` wrote; a damaged file raises :class:`DamagedCheckpoint` naming it
        and leaves the environment as it was."""
        directory = Path(directory)
        state = read_json(directory / "env_state.json", "Checkpoint file")
        missing = sorted(set(self._state()) - set(state if isinstance(state, dict) else {}))
        if missing:
            raise DamagedCheckpoint(f"Checkpoint file {str(directory / 'env_state.json')!r} lacks {missing}.")
        accumulated_path = directory / "accumulated.jsonl"
        try:
            accumulated = read_examples_jsonl(accumulated_path)
        except (OSError, ValueError) as err:
            raise DamagedCheckpoint(f"Checkpoint file {str(accumulated_path)!r} is damaged ({err}).") from None
        self.student.load(directory / "student")
        self._set_state(state, accumulated)

    def close(self) -> None:
        """Release the student (and what it holds: model, optimizer) and the data engine's client; the env cannot be
        stepped afterwards."""
        for part in (self.student, self.data_engine, self.attributor):
            close_part = getattr(part, "close", None)
            if callable(close_part):
                close_part()
        self._started = False
        self.accumulated, self.last_training_data = [], []
        super().close()

    def config_kwargs(self) -> tuple[dict[str, Any], dict[str, str]]:
        """This env's configuration as ``(kwargs, objects)``: the fields that rebuild it with ``gym.make`` (JSON
        types), and, by name, the repr of any field given as a Python object (a Task or Student), which a run
        directory cannot hold."""
        return config_to_kwargs(self.config)


def config_to_kwargs(config: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """``(kwargs, objects)`` of an env config dataclass: see :meth:`TeachingEnv.config_kwargs`."""
    kwargs: dict[str, Any] = {}
    objects: dict[str, str] = {}
    for item in fields(config):
        value = getattr(config, item.name)
        if value is None or isinstance(value, (str, int, float, bool)):
            kwargs[item.name] = value
        elif isinstance(value, dict) and jsonable(value) == value:
            kwargs[item.name] = dict(value)
        elif hasattr(value, "__dataclass_fields__") and not hasattr(value, "generate"):  # e.g. HFStudentConfig
            kwargs[item.name] = jsonable({f.name: getattr(value, f.name) for f in fields(value)})
        else:
            objects[item.name] = repr(value)[:200]
    return kwargs, objects


def resolved_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every config field of a registered env given ``kwargs`` (defaults filled in), without building it: two
    kwargs dicts that make the same environment resolve equal (``{}`` and ``{"steps": 5}`` on the default)."""
    creator = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
    config_class = getattr(creator, "config_class", None)
    if config_class is None:
        return dict(kwargs)
    return config_to_kwargs(config_class.from_kwargs(dict(kwargs)))[0]


@dataclass(frozen=True)
class EnvSnapshot:
    """What :meth:`TeachingEnv.snapshot` returns: opaque to callers, reusable for any number of restores."""

    state: dict[str, Any]
    accumulated: list[Example]
    last_training_data: list[Example]
    student: Any


def _as_example(item: Example | PreferencePair) -> Example:
    """What the verifier checks: an example, or a preference pair's chosen answer (the one it trains towards)."""
    return item.chosen_example() if isinstance(item, PreferencePair) else item


def _summed(stats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-request data-engine statistics added up (numbers summed, nested dicts recursively)."""
    total: dict[str, Any] = {}
    for row in stats:
        for key, value in row.items():
            if isinstance(value, dict):
                total[key] = _summed([total.get(key, {}), value])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            else:
                total[key] = value
    return total
