"""A Gymnasium vector env on Ray: N teaching environments stepped in parallel, one Ray actor each.

    import gymnasium as gym, envgym
    envs = gym.make_vec("envgym/SkillList-v0", num_envs=4, vectorization_mode="vector_entry_point", budget=256)
    observations, infos = envs.reset(seed=0)          # env i is seeded seed + i
    observations, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())

Each actor holds a whole environment (its student trains in the actor, on ``cpus_per_env`` CPUs and as many torch
threads). Ray runs where it already runs (``ray.init()`` or ``$RAY_ADDRESS``), else a private local instance is
started for the vector env and stopped by ``close()``.

**Autoreset is disabled** (``metadata["autoreset_mode"] = AutoresetMode.DISABLED``): every episode trains a model
from its base weights, so a reset is costly and is the caller's decision. Once an env's episode has ended,
stepping it raises :class:`~envgym.error.ResetNeeded`; call ``reset()`` when all have terminated (every env of a
vector has the same number of steps, so they end together).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from skills.errors import InvalidConfig


class _EnvActor:
    """Runs in a Ray actor: one envgym environment."""

    def __init__(self, env_id: str, kwargs: dict[str, Any]) -> None:
        import envgym  # noqa: F401 - registers the environments in the actor's process

        self.env = gym.make(env_id, **kwargs)

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        return self.env.observation_space, self.env.action_space

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self.env.step(action)

    def close(self) -> None:
        self.env.close()


class RayVectorEnv(VectorEnv):
    """``num_envs`` copies of ``env_id`` on Ray actors (see the module docstring).

    Args:
        num_envs: how many environments.
        env_id: which registered envgym environment.
        cpus_per_env: CPUs each actor requests (and its torch threads).
        gpus_per_env: GPUs each actor requests (its student trains there).
        **kwargs: the environment's ``gym.make`` keyword arguments, the same for all.
    """

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        num_envs: int,
        env_id: str = "envgym/SkillList-v0",
        *,
        cpus_per_env: float = 1,
        gpus_per_env: float = 0,
        **kwargs: Any,
    ) -> None:
        import ray

        from envgym.bench import WORKER_ENV, ray_session

        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise InvalidConfig(f"Expects num_envs to be a whole number >= 1; actual {num_envs!r}.")
        kwargs.pop("max_episode_steps", None)  # gymnasium passes its spec's; the episode length is `steps`
        self.num_envs = num_envs
        self.env_id = env_id
        threads = str(max(1, int(cpus_per_env)))
        env_vars = {**WORKER_ENV, "ENVGYM_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        self._session = ray_session(num_envs, os.environ.get("RAY_ADDRESS"), env_vars)
        runtime_env = self._session.__enter__()
        options: dict[str, Any] = {"num_cpus": cpus_per_env, "num_gpus": gpus_per_env, "max_restarts": 0}
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        actor = ray.remote(_EnvActor).options(**options)
        self._actors = [actor.remote(env_id, dict(kwargs)) for _ in range(num_envs)]
        try:
            self.single_observation_space, self.single_action_space = ray.get(self._actors[0].spaces.remote())
        except Exception:
            self.close_extras()
            raise
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._observations = create_empty_array(self.single_observation_space, n=num_envs)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env; an int ``seed`` seeds env ``i`` with ``seed + i``."""
        import ray

        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise InvalidConfig(f"Expects one seed per env ({self.num_envs}); actual {len(seeds)}.")
        results = ray.get([a.reset.remote(s, options) for a, s in zip(self._actors, seeds, strict=True)])
        infos: dict[str, Any] = {}
        for index, (_, info) in enumerate(results):
            infos = self._add_info(infos, info, index)
        observations = concatenate(self.single_observation_space, [obs for obs, _ in results], self._observations)
        return observations, infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step env ``i`` with ``actions[i]``, all in parallel."""
        import ray

        per_env = list(iterate(self.action_space, actions))
        results = ray.get([a.step.remote(act) for a, act in zip(self._actors, per_env, strict=True)])
        infos: dict[str, Any] = {}
        for index, result in enumerate(results):
            infos = self._add_info(infos, result[4], index)
        observations = concatenate(self.single_observation_space, [r[0] for r in results], self._observations)
        rewards = np.array([r[1] for r in results], dtype=np.float64)
        terminated = np.array([r[2] for r in results], dtype=np.bool_)
        truncated = np.array([r[3] for r in results], dtype=np.bool_)
        return observations, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        import ray

        for actor in getattr(self, "_actors", []):
            with contextlib.suppress(Exception):  # an actor that already died has nothing left to release
                ray.get(actor.close.remote())
            ray.kill(actor)
        self._actors = []
        session = getattr(self, "_session", None)
        if session is not None:
            self._session = None
            session.__exit__(None, None, None)
