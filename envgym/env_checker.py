"""``check_teaching_env``: the contract every envgym environment keeps, in the spirit of Gymnasium's
``gymnasium.utils.env_checker.check_env`` (which it runs first).

It trains the student, so give it a small configuration (a budget of tens of examples, a few validation
questions per skill). Raises :class:`~envgym.error.InvalidConfig` naming the first broken promise.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from envgym.core import TeachingEnv
from envgym.files import dumps
from skills.errors import Error, InvalidConfig, InvalidPlan

INFO_KEYS = ("skills", "val_accuracy", "missing_skill_profile", "errors", "budget_next", "step")
STEP_INFO_KEYS = ("plan", "examples_used", "budget_spent", "rejected", "rejections", "dropped_heldout", "train_loss")


def _same(a: Any, b: Any) -> bool:
    return dumps(a, sort_keys=True) == dumps(b, sort_keys=True)


def _fail(message: str) -> None:
    raise InvalidConfig(f"check_teaching_env: {message}")


def check_teaching_env(env: gym.Env, *, seed: int = 0, plan: Any = None) -> None:
    """Check ``env`` (a ``TeachingEnv``, wrapped or not) against the envgym contract.

    * Gymnasium's own ``check_env`` passes (spaces, seeding, reset/step signatures).
    * ``info`` has the documented keys; observations lie in the observation space.
    * The same seed gives the same observation, info and reward (a seeded rollout of two steps).
    * Held-out test questions never appear in observations or info.
    * A refused plan raises ``InvalidPlan`` and changes nothing.
    * The budget is charged what the plan costs; ``terminated`` matches ``episode_over``.
    * ``snapshot``/``restore`` and ``save_checkpoint`` + ``reset(options={"checkpoint": dir})`` continue exactly.
    * The env survives ``copy.deepcopy`` (pickling, for worker processes and Ray).

    ``plan``: the action to step with (default: a sample of the action space, seeded).

    Example:
        >>> import gymnasium as gym, envgym
        >>> envgym.check_teaching_env(gym.make("envgym/SkillList-v0", steps=2, budget=16, n_val=5, n_test=5))
    """
    base = env.unwrapped
    if not isinstance(base, TeachingEnv):
        _fail(f"expects an envgym TeachingEnv; actual {type(base).__name__}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # check_env's advice on non-image spaces is not a failure
        try:
            check_env(base, skip_render_check=True)
        except AssertionError as err:  # gymnasium reports a broken promise as an assertion: name it as ours
            _fail(f"gymnasium's check_env failed: {err}")
    base.action_space.seed(seed)
    action = base.action_space.sample() if plan is None else plan

    def rollout() -> list[Any]:
        observation, info = env.reset(seed=seed)
        trace = [observation, info]
        for _ in range(2):
            if base.episode_over:
                break
            observation, reward, terminated, truncated, info = env.step(copy.deepcopy(action))
            trace.append(truncated)
            trace += [observation, reward, terminated, info]
        return trace

    first, again = rollout(), rollout()
    if not _same(first, again):
        _fail("the same seed and plans gave different observations, rewards or info; seed every random choice.")

    observation, info = env.reset(seed=seed)
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        _fail(f"reset() info lacks {missing}.")
    if not base.observation_space.contains(observation):
        _fail("reset() returned an observation outside observation_space.")
    test_questions = {ex.question for ex in base.splits.all_questions("test")}
    text = dumps([observation, info])
    leaked = [q for q in test_questions if json.dumps(q) in text]
    if leaked:
        _fail(f"test questions appear in the observation or info (e.g. {leaked[0]!r}); they are for reporting only.")

    state = dumps(base._state())
    try:
        env.step({"no_such_skill": 1})
    except InvalidPlan:
        pass
    else:
        _fail("a plan naming an unknown skill was accepted; validate every plan (envgym.plans.validate_plan).")
    if dumps(base._state()) != state:
        _fail("a refused plan changed the episode state.")

    snapshot = base.snapshot()
    budget_before = base.budget_left
    observation, reward, terminated, _, info = env.step(copy.deepcopy(action))
    missing = [key for key in (*INFO_KEYS, *STEP_INFO_KEYS) if key not in info]
    if missing:
        _fail(f"step() info lacks {missing}.")
    if base.budget_left != budget_before - info["budget_spent"]:
        _fail(f"the budget went from {budget_before} to {base.budget_left}, not down by {info['budget_spent']}.")
    if terminated != base.episode_over:
        _fail(f"step() returned terminated={terminated} while episode_over is {base.episode_over}.")
    if not np.isfinite(reward):
        _fail(f"step() returned a non-finite reward {reward!r}.")
    after_step = dumps([observation, reward, info])
    base.restore(snapshot)
    observation, reward, _, _, info = env.step(copy.deepcopy(action))
    if dumps([observation, reward, info]) != after_step:
        _fail("restore(snapshot) and the same step gave different numbers.")

    with tempfile.TemporaryDirectory(prefix="envgym-check-") as directory:
        base.save_checkpoint(directory)
        clone = copy.deepcopy(base)
        try:
            resumed = clone.reset(options={"checkpoint": directory})
        except Error as err:
            _fail(f"reset(options={{'checkpoint': ...}}) failed on a fresh checkpoint: {err}")
        if not _same(resumed, [observation, info]):
            _fail("reset(options={'checkpoint': dir}) did not return the observation and info saved there.")
        if not base.episode_over:
            expected = env.step(copy.deepcopy(action))
            if not _same(clone.step(copy.deepcopy(action)), expected):
                _fail("a resumed checkpoint and the original took the same step to different numbers.")
