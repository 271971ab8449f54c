"""Real learning: the taught weak skill improves by a clear margin over an equal-budget untaught baseline."""

import numpy as np
import pytest


def _test_accuracy_after(make_env, plan):
    env = make_env(steps=3, budget=512, n_test=200)
    env.reset(seed=0)
    for _ in range(3):
        env.step(plan)
    accuracy, _ = env.unwrapped.evaluate("test")
    return accuracy


@pytest.mark.slow
def test_teaching_a_weak_skill_raises_its_test_accuracy(make_env):
    env = make_env(n_test=200)
    env.reset(seed=0)
    before, _ = env.unwrapped.evaluate("test")
    taught = _test_accuracy_after(make_env, {"sub_borrow": 512})
    baseline = _test_accuracy_after(make_env, {"compare": 512})  # same budget, another skill
    assert before["sub_borrow"] < 0.6
    assert taught["sub_borrow"] - baseline["sub_borrow"] > 0.2
    assert taught["sub_borrow"] - before["sub_borrow"] > 0.2
    assert np.isfinite(list(taught.values())).all()
