"""Train a teacher *policy* with reinforcement learning (Stable-Baselines3 PPO) on envgym/SkillList-v0.

Install the optional extra first: ``pip install -e ".[rl]"``. Then:
    python examples/ppo_teacher.py --timesteps 8

What the RL agent sees and does:
- observation: a ``Dict`` of per-skill validation accuracy (``Box(0, 1)``), the missing-skill profile (each
  skill's share of the validation failures), ``budget_left`` and ``step`` (``Discrete``); SB3's
  ``MultiInputPolicy`` flattens it.
- action: a float ``Box(0, 1, (n_skills,))`` of budget shares. The env normalises them and allocates the step's
  budget by largest remainder, so every action PPO samples (clipped to the box) is a valid plan.
- reward: the step's gain in mean validation accuracy; an episode is ``steps`` env steps.

What one env step costs: a real fine-tuning of the student on ``budget`` examples plus a validation pass. With the
default student on 2 CPU cores, about 3-4 s at budget 1024 (train ~3 s, 1,600 validation questions ~1 s), about
0.3 s at this example's budget 64 with 20 validation questions per skill. RL needs thousands of steps to learn a
policy, so on a CPU this example only shows the loop; real training wants small budgets, many envs (Ray) or a GPU.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import envgym  # noqa: F401 - registers the environments


def train_ppo(timesteps: int = 8, seed: int = 0, **env_kwargs):
    """Train PPO for ``timesteps`` env steps; returns the model (its ``predict`` gives budget shares)."""
    try:
        from stable_baselines3 import PPO
    except ImportError as err:  # an optional extra: say how to get it
        raise SystemExit('This example needs Stable-Baselines3: pip install -e ".[rl]"') from err
    kwargs = {"steps": 2, "budget": 64, "n_val": 20, "n_test": 20, "student_config": {"num_threads": 1}}
    env = gym.make("envgym/SkillList-v0", **{**kwargs, **env_kwargs})
    model = PPO("MultiInputPolicy", env, n_steps=4, batch_size=4, n_epochs=2, seed=seed, verbose=0, device="cpu")
    model.learn(total_timesteps=timesteps)
    return model, env


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=8, help="PPO env steps (each trains the student once).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, env = train_ppo(args.timesteps, args.seed)
    obs, info = env.reset(seed=args.seed)
    shares, _ = model.predict(obs, deterministic=True)
    print("PPO teacher's budget shares at the start of an episode:")
    for skill, share in zip(info["skills"], shares, strict=True):
        print(f"  {skill:>14}: {float(share):.3f}")
