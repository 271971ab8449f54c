"""Environment ids registered with Gymnasium."""

from __future__ import annotations

from functools import partial

import gymnasium as gym

from envgym.vector import RayVectorEnv

ENV_IDS = {
    "envgym/SkillList-v0": "envgym.skill_list_env:SkillListEnv",
    "envgym/OpenEnded-v0": "envgym.open_ended_env:OpenEndedEnv",
    "envgym/SkillTree-v0": "envgym.skill_tree_env:SkillTreeEnv",
    "envgym/InstructionFollowing-v0": "envgym.skill_list_env:SkillListEnv",
}
# Environments that score the teacher instead of training a student: not TeachingEnvs (no budget, no training),
# so the runner, the bench and check_teaching_env do not take them; gymnasium's check_env does.
LBT_ENV_IDS = {"envgym/LbT-v0": "envgym.lbt_env:LbTEnv"}
# Defaults of an id beyond its entry point's (gym.make's kwargs override them). InstructionFollowing-v0 is the
# skill-list structure on the ifeval-like task (skills = constraint types); the task itself asks for room for its
# longest answer (InstructionTask.student_defaults).
ENV_DEFAULTS: dict[str, dict] = {"envgym/InstructionFollowing-v0": {"task": "ifeval-like"}}


def register_envs() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            # The env enforces reset-before-step itself (envgym.error.ResetNeeded, a RuntimeError), so gymnasium's
            # OrderEnforcing wrapper, which raises its own error type first, is left out.
            gym.register(
                id=env_id,
                entry_point=entry_point,
                kwargs=ENV_DEFAULTS.get(env_id, {}),
                order_enforce=False,
                # gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point"): N envs on Ray actors.
                vector_entry_point=partial(RayVectorEnv, env_id=env_id),
            )
    for env_id, entry_point in LBT_ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, order_enforce=False)
