"""A custom teacher in 20 lines: focus the budget on the two weakest skills that are already partly learned.

Run it from the repository root with the CLI:
    envgym run --teacher examples.custom_teacher:TwoWeakestTeacher --steps 3
or as a script:
    python examples/custom_teacher.py
"""

import numpy as np


class TwoWeakestTeacher:
    """Half the budget to every skill, the other half to the two weakest skills above 5% accuracy."""

    def act(self, observation, info):
        accuracy = np.asarray(observation["accuracy"])
        shares = np.full(len(accuracy), 0.5 / len(accuracy))
        learnable = [i for i in np.argsort(accuracy) if accuracy[i] > 0.05][:2]
        shares[learnable] += 0.5 / max(1, len(learnable))
        # Budget shares: the env normalises them and allocates this step's budget by largest remainder
        # (return a {skill: count} dict instead for exact counts).
        return shares


if __name__ == "__main__":
    import gymnasium as gym

    import envgym

    env = gym.make("envgym/SkillList-v0", steps=3, budget=256)
    report = envgym.run_episode(env, TwoWeakestTeacher(), "runs/custom-teacher", seed=0)
    print(report["test_accuracy"]["before"], "->", report["test_accuracy"]["after"])
