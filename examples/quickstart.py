"""The Python API in a dozen lines: a targeted teacher improves the built-in student."""

import gymnasium as gym

import envgym  # noqa: F401 - registers the environments
from agents import TargetedTeacher

env = gym.make("envgym/SkillList-v0")  # default: arithmetic skills, tiny local student, procedural data
obs, info = env.reset(seed=0)
teacher = TargetedTeacher()
terminated = truncated = False
while not (terminated or truncated):
    plan = teacher.act(obs, info)
    obs, reward, terminated, truncated, info = env.step(plan)
    print(f"step {obs['step']}: reward {reward:+.3f}, validation accuracy {dict(info['val_accuracy'])}")
