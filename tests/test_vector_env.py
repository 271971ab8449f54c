"""`gym.make_vec(..., vectorization_mode="vector_entry_point")`: N teaching envs stepped in parallel on Ray actors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envgym
from envgym.error import ResetNeeded

KWARGS = {"steps": 1, "budget": 16, "n_val": 10, "n_test": 10}


@pytest.mark.slow
def test_make_vec_steps_envs_in_parallel_on_ray_with_the_single_envs_numbers():
    envs = gym.make_vec("envgym/SkillList-v0", num_envs=2, vectorization_mode="vector_entry_point", **KWARGS)
    try:
        assert envs.metadata["autoreset_mode"] is gym.vector.AutoresetMode.DISABLED
        observations, infos = envs.reset(seed=5)
        assert observations["accuracy"].shape == (2, 8) and envs.action_space.shape == (2, 8)
        actions = np.zeros((2, 8), dtype=np.float32)
        actions[0, 5] = actions[1, 0] = 1.0  # all of env 0's budget to sub_borrow, env 1's to add_no_carry
        observations, rewards, terminated, truncated, infos = envs.step(actions)
        assert terminated.tolist() == [True, True] and truncated.tolist() == [False, False]
        assert infos["examples_used"].tolist() == [16, 16]
        with pytest.raises(ResetNeeded):  # autoreset disabled: the caller resets
            envs.step(actions)
    finally:
        envs.close()

    # Env 1 of the vector is the single env seeded 5 + 1.
    single = gym.make("envgym/SkillList-v0", **KWARGS)
    single.reset(seed=6)
    _, reward, _, _, _ = single.step(actions[1])
    assert rewards[1] == pytest.approx(reward, abs=1e-12)
    single.close()


def test_a_bad_num_envs_is_refused():
    with pytest.raises(envgym.error.InvalidConfig, match="num_envs"):
        gym.make_vec("envgym/SkillList-v0", num_envs=0, vectorization_mode="vector_entry_point")
