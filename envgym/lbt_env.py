"""``envgym/LbT-v0``: learning by teaching ("Can LLMs Learn by Teaching?", Ning et al., 2024).

The usual direction turned around: the *teacher* is scored. Each step shows the teacher a teaching problem (a
validation question of the task, never its answer) and takes its rationale and final answer. The environment
builds an exam of ``exam_size`` similar problems (training-side questions of the same skill: never the teaching
problem, never a validation or test question), has every exam student answer each of them with the teacher's
rationale as its one in-context example, scores the answers with the task's verifier, and returns

    reward = LbT score = mean over students of (mean exam score of that student)   in [0, 1]

The paper sums correct exam answers; the mean is that sum divided by ``students x exam_size``, so rewards compare
across exam sizes and student counts. ``info["student_scores"]`` has each student's exam accuracy.

This environment trains nobody, so it is not a :class:`~envgym.TeachingEnv` (no budget, no training data, no
student weights): it keeps the rest of the contract. Spaces are typed text (explicit charset and lengths; a
structured :class:`Rationale` is accepted as the action too), every random choice is seeded by the episode seed,
a refused action changes nothing, and ``save_checkpoint`` + ``reset(options={"checkpoint": dir})`` continue the
episode exactly (the exam students are frozen; an endpoint student's replies are cached by request).

Example:
    >>> import gymnasium as gym, envgym
    >>> env = gym.make("envgym/LbT-v0", students=[{"base_url": "http://127.0.0.1:8000/v1"}])  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
    >>> obs["problem"], info["skill"]  # doctest: +SKIP
    ('echo owl cake |upper', 'upper')
    >>> obs, reward, terminated, truncated, info = env.step({"rationale": "", "answer": "OWL CAKE"})  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envgym.files import read_json
from envgym.lbt_config import LbTConfig
from skills.errors import DamagedCheckpoint, InvalidConfig, InvalidPlan, ResetNeeded, unknown_name_error
from skills.rationale import (
    CHARSET,
    STOP,
    Rationale,
    extract_answer,
    render_prompt,
    render_shot,
    to_charset,
)
from skills.registry import make_task
from skills.splits import TaskSplits, TrainingPool
from skills.storage import write_text_atomic
from skills.task import Example, score_answers, skill_names
from students.exam_students import make_exam_students

RESET_OPTIONS = ("checkpoint",)
ACTION_KEYS = ("rationale", "answer")
STATE_FILE = "lbt_state.json"


@dataclass(frozen=True)
class ExamResult:
    """One LbT scoring: the exam, each student's answers and scores, and the LbT score (their mean accuracy)."""

    exam: tuple[Example, ...]
    answers: dict[str, list[str]]
    scores: dict[str, list[float]]

    @property
    def student_scores(self) -> dict[str, float]:
        return {name: float(np.mean(values)) for name, values in self.scores.items()}

    @property
    def score(self) -> float:
        return float(np.mean(list(self.student_scores.values())))


class LbTEnv(gym.Env):
    """Learning by teaching: the reward of a rationale is the students' exam accuracy with it in context."""

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention
    env_id: ClassVar[str] = "envgym/LbT-v0"
    config_class: ClassVar[type] = LbTConfig

    def __init__(self, **kwargs: Any) -> None:
        self.config = LbTConfig.from_kwargs(kwargs)
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
        self.teaching_problems = self.splits.all_questions("val")
        self._check_problems_fit()
        self.students = make_exam_students(self.config.students)
        self.observation_space = spaces.Dict(
            {
                "problem": spaces.Text(self.config.max_problem_chars, min_length=1, charset=CHARSET),
                "skill": spaces.Discrete(len(self.skills)),
            }
        )
        self.action_space = spaces.Dict(
            {
                "rationale": spaces.Text(self.config.max_rationale_chars, min_length=0, charset=CHARSET),
                "answer": spaces.Text(self.config.max_answer_chars, min_length=0, charset=CHARSET),
            }
        )
        self._started = False
        self._episode_seed = 0
        self.step_index = 0
        self._order: list[int] = []
        self._last: tuple[Any, dict[str, Any]] = (None, {})

    # -- the LbT score, usable without stepping (M1 scores many candidates of one problem) ----------------
    def exam_for(self, problem: Example, seed: int) -> tuple[Example, ...]:
        """``exam_size`` training-side problems of ``problem``'s skill, distinct by held-out key, none of them the
        teaching problem (the pool never gives a validation or test question); seeded."""
        rng = np.random.default_rng([seed, 23])
        own = self.task.heldout_key(problem.question)
        drawn = self.pool.sample(problem.skill, self.config.exam_size + 1, rng)
        exam = tuple(ex for ex in drawn if self.task.heldout_key(ex.question) != own)[: self.config.exam_size]
        if len(exam) < self.config.exam_size:
            raise InvalidConfig(
                f"Expects {self.config.exam_size} training problems of skill {problem.skill!r} for an exam; the task "
                f"has {len(exam)} outside the held-out share. Lower exam_size."
            )
        return exam

    def score(self, problem: Example, solution: Rationale, exam: Sequence[Example], seed: int) -> ExamResult:
        """Every student answers every exam problem with ``problem`` solved by ``solution`` as its in-context
        example; answers are scored by the task's verifier."""
        return self.exam_result(render_shot(problem.question, solution.rationale, solution.answer), exam, seed)

    def exam_result(
        self, shots: str, exam: Sequence[Example], seed: int, students: Sequence[Any] | None = None
    ) -> ExamResult:
        """Each of ``students`` (default: all) answers each exam problem after the in-context ``shots``."""
        prompts = [render_prompt(shots, ex.question) for ex in exam]
        answers: dict[str, list[str]] = {}
        scores: dict[str, list[float]] = {}
        for student in self.students if students is None else students:
            replies = student.complete(prompts, stop=STOP, seed=seed)
            answers[student.name] = [extract_answer(reply) for reply in replies]
            # A code task scores exam answers on the tests its questions show (LbT's code setting).
            scores[student.name] = score_answers(self.task, exam, answers[student.name], visible=True)
        return ExamResult(tuple(exam), answers, scores)

    # -- gymnasium API ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        for key in options or {}:
            if key not in RESET_OPTIONS:
                raise unknown_name_error("reset option", str(key), RESET_OPTIONS)
        if options and options.get("checkpoint") is not None:
            super().reset(seed=None if seed is None else int(seed))
            self.load_checkpoint(options["checkpoint"])
            return copy.deepcopy(self._last)
        if seed is None and not self._started:
            seed = self.config.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise InvalidConfig(f"Expects a seed that is a whole number >= 0, or None; actual {seed!r}.")
        super().reset(seed=None if seed is None else int(seed))
        self._episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31))
        self.action_space.seed(self._episode_seed)
        rng = np.random.default_rng([self._episode_seed, 29])
        count = min(self.config.problems, len(self.teaching_problems))
        self._order = sorted(rng.choice(len(self.teaching_problems), size=count, replace=False).tolist())
        rng.shuffle(self._order)
        self._order = [int(i) for i in self._order]
        self.step_index = 0
        self._started = True
        self._last = (self._observation(), self._info())
        return copy.deepcopy(self._last)

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise ResetNeeded("Expects reset() before step(); call env.reset(seed=...) first.")
        if self.episode_over:
            raise ResetNeeded(
                f"Expects a running episode; this one ended after {self.step_index} teaching problems. Call reset()."
            )
        solution = self.validate_action(action)
        problem = self.problem
        seed = int(np.random.SeedSequence([self._episode_seed, self.step_index]).generate_state(1)[0])
        exam = self.exam_for(problem, seed)
        result = self.score(problem, solution, exam, seed)
        self.step_index += 1
        info = self._info()
        info.update(
            taught={"problem": problem.question, "skill": problem.skill, **solution.to_json()},
            lbt_score=result.score,
            student_scores=result.student_scores,
            exam=[{"question": ex.question, "gold": ex.answer} for ex in result.exam],
            exam_answers=result.answers,
            # Whether the teacher's own answer is right: the teaching problem is a validation question, whose
            # answer the teacher never sees; M1 and M2 report it, they do not select by it.
            answer_score=float(self.task.score(problem, solution.answer)),
        )
        self._last = (self._observation(), info)
        return copy.deepcopy(self._last[0]), result.score, self.episode_over, False, copy.deepcopy(info)

    def close(self) -> None:
        for student in self.students:
            close = getattr(student, "close", None)
            if callable(close):
                close()
        self._started = False
        super().close()

    # -- the referee of actions ------------------------------------------------------------------------
    def validate_action(self, action: Any) -> Rationale:
        """The action as a :class:`Rationale`, or :class:`~envgym.error.InvalidPlan` saying what was expected."""
        if isinstance(action, Rationale):
            fields = action.to_json()
        elif isinstance(action, Mapping):
            unknown = [str(key) for key in action if key not in ACTION_KEYS]
            if unknown:
                raise unknown_name_error("LbT action key", unknown[0], ACTION_KEYS)
            if "answer" not in action:
                raise InvalidPlan(
                    f"Expects an action with an 'answer' (and optionally a 'rationale'); actual keys {sorted(action)}."
                )
            fields = {"rationale": action.get("rationale", ""), "answer": action["answer"]}
        else:
            raise InvalidPlan(
                "Expects an action {'rationale': str, 'answer': str} or a skills.rationale.Rationale; actual "
                f"{type(action).__name__}."
            )
        limits = {"rationale": self.config.max_rationale_chars, "answer": self.config.max_answer_chars}
        for key, value in fields.items():
            if not isinstance(value, str):
                raise InvalidPlan(f"Expects the action's {key!r} to be a string; actual {type(value).__name__}.")
            if len(value) > limits[key]:
                raise InvalidPlan(
                    f"Expects the action's {key!r} to be at most {limits[key]} characters; actual {len(value)}."
                )
            bad = next((i for i, ch in enumerate(value) if ch not in CHARSET), None)
            if bad is not None:
                raise InvalidPlan(
                    f"Expects the action's {key!r} in printable ASCII (the action space's charset); actual "
                    f"{value[bad]!r} at position {bad}. env.fit(solution) or skills.rationale.to_charset(text) "
                    "drops such characters."
                )
        return Rationale(fields["rationale"], fields["answer"])

    def fit(self, solution: Rationale) -> Rationale:
        """``solution`` made a valid action: characters outside the charset dropped, the rationale and the answer cut
        to their limits. For callers that turn a model's free text into actions (M1, M2); the environment itself
        refuses, rather than fixes, an action that does not fit."""
        return Rationale(
            to_charset(solution.rationale)[: self.config.max_rationale_chars],
            to_charset(solution.answer)[: self.config.max_answer_chars],
        )

    # -- state -----------------------------------------------------------------------------------------
    @property
    def episode_over(self) -> bool:
        return self.step_index >= len(self._order)

    @property
    def episode_problems(self) -> list[Example]:
        """The episode's teaching problems in order (drawn from the validation questions at reset)."""
        return [self.teaching_problems[i] for i in self._order]

    @property
    def problem(self) -> Example:
        """The current teaching problem (the last one once the episode is over)."""
        return self.teaching_problems[self._order[min(self.step_index, len(self._order) - 1)]]

    def _observation(self) -> dict[str, Any]:
        problem = self.problem
        return {"problem": problem.question, "skill": self.skills.index(problem.skill)}

    def _info(self) -> dict[str, Any]:
        return {
            "task": self.task.name,
            "skills": list(self.skills),
            "skill": self.problem.skill,
            "step": self.step_index,
            "students": [student.name for student in self.students],
        }

    def _state(self) -> dict[str, Any]:
        return {
            "episode_seed": self._episode_seed,
            "step_index": self.step_index,
            "order": list(self._order),
            "np_random": self.np_random.bit_generator.state,
            "last": json.loads(json.dumps(list(self._last))),
        }

    def save_checkpoint(self, directory: str | Path) -> None:
        """Write the episode state (the students are frozen: nothing of theirs needs saving)."""
        if not self._started:
            raise ResetNeeded("Expects reset() before save_checkpoint(); call env.reset(seed=...) first.")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_text_atomic(directory / STATE_FILE, json.dumps(self._state()))

    def load_checkpoint(self, directory: str | Path) -> None:
        """Continue from :meth:`save_checkpoint` output; a damaged file raises ``DamagedCheckpoint`` and changes
        nothing."""
        path = Path(directory) / STATE_FILE
        state = read_json(path, "Checkpoint file")
        expected = {"episode_seed", "step_index", "order", "np_random", "last"}
        if not isinstance(state, dict) or not expected <= set(state):
            raise DamagedCheckpoint(f"Checkpoint file {str(path)!r} lacks {sorted(expected - set(state or {}))}.")
        order = state["order"]
        if not all(isinstance(i, int) and 0 <= i < len(self.teaching_problems) for i in order) or not (
            isinstance(state["step_index"], int) and 0 <= state["step_index"] <= len(order)
        ):
            raise DamagedCheckpoint(
                f"Checkpoint file {str(path)!r} does not fit this environment's teaching problems (another config?)."
            )
        self._episode_seed = state["episode_seed"]
        self.step_index = state["step_index"]
        self._order = list(order)
        self.np_random.bit_generator.state = state["np_random"]
        observation, info = state["last"]
        self._last = (observation, info)
        self._started = True

    def _check_problems_fit(self) -> None:
        for example in self.teaching_problems:
            if len(example.question) > self.config.max_problem_chars or any(
                ch not in CHARSET for ch in example.question
            ):
                raise InvalidConfig(
                    f"Expects teaching problems of at most {self.config.max_problem_chars} printable-ASCII characters; "
                    f"task {self.task.name!r} has {example.question[:80]!r}. Raise max_problem_chars."
                )
