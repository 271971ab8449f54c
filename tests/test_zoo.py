"""The curriculum-learning teacher zoo (TSCL, Skill-It, ODM, DoReMi): each update rule on numbers worked out by
hand, state round trips through JSON, valid plans, and a real episode per teacher that resumes identically."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import envgym
from agents import DoReMiTeacher, ODMTeacher, SkillItTeacher, TSCLTeacher, make_teacher
from agents.odm import exploration_rate
from skills.errors import InvalidConfig, UnknownName

SKILLS = ["a", "b", "c"]


def info(budget=300, **extra):
    return {"skills": SKILLS, "budget_next": budget, **extra}


def obs(step, accuracy):
    return {"accuracy": np.asarray(accuracy, dtype=np.float64), "step": step}


def run(teacher, trajectory, budget=300, **extra):
    """The plans ``teacher`` makes along ``trajectory`` (accuracies at steps 0, 1, ...)."""
    return [teacher.act(obs(step, acc), info(budget, **extra)) for step, acc in enumerate(trajectory)]


def plan_of(counts):
    return dict(zip(SKILLS, counts, strict=True))


def normalised(weights):
    weights = np.asarray(weights, dtype=np.float64)
    return weights / weights.sum()


# Skill a improves slowly, b improves then stalls, c is forgotten (0.5 -> 0.25 -> 0).
TRAJECTORY = [[0.5, 0.5, 0.5], [0.5, 0.75, 0.25], [0.625, 0.75, 0.0], [0.75, 0.75, 0.0]]


# --- TSCL ---------------------------------------------------------------------------------------------------------


def test_tscl_window_slopes_and_epsilon_greedy_by_hand():
    t = TSCLTeacher()  # window signal, epsilon-greedy, eps = 0.1, K = 10
    # Step 0: one point per skill, every slope unknown (1): a three-way tie shares 0.9, plus 0.1 / 3 each.
    assert t.act(obs(0, TRAJECTORY[0]), info()) == plan_of([100, 100, 100])
    # Step 1: slopes (0, 0.25, -0.25); |slope| ties b and c: 0.1/3 + 0.45 each, a gets 0.1/3.
    assert t.act(obs(1, TRAJECTORY[1]), info()) == plan_of([10, 145, 145])
    assert t.shares(1) == pytest.approx([0.1 / 3, 0.1 / 3 + 0.45, 0.1 / 3 + 0.45])
    # Step 2: least squares over steps 0..2 is (a(2) - a(0)) / 2 = (0.0625, 0.125, -0.25): c, being forgotten.
    assert t.act(obs(2, TRAJECTORY[2]), info()) == plan_of([10, 10, 280])
    assert t.progress_values(2) == pytest.approx([0.0625, 0.125, -0.25])
    assert t.shares(2) == pytest.approx([0.1 / 3, 0.1 / 3, 0.1 / 3 + 0.9])


def test_tscl_window_uses_only_the_last_k_points():
    t = TSCLTeacher(window=2)
    run(t, TRAJECTORY)
    # Step 3 with K = 2: slopes from steps 2..3 only: (0.125, 0, 0); a is the only one moving.
    assert t.progress_values(3) == pytest.approx([0.125, 0.0, 0.0])
    assert t.shares(3) == pytest.approx([0.1 / 3 + 0.9, 0.1 / 3, 0.1 / 3])


def test_tscl_picks_a_skill_that_is_being_forgotten():
    """|slope|: a falling skill is as interesting as a rising one, so forgetting is noticed and rehearsed."""
    trajectory = [[0.9, 0.2, 0.9], [0.9, 0.25, 0.8], [0.9, 0.3, 0.6], [0.9, 0.35, 0.4]]
    for signal in ("window", "online", "sampling"):
        plan = run(TSCLTeacher(signal=signal, window=3), trajectory)[-1]
        assert max(plan, key=plan.get) == "c", signal
    # Without |.| (absolute=False) the falling skill would get only the exploration share; b, rising, is picked.
    plan = run(TSCLTeacher(absolute=False), trajectory)[-1]
    assert max(plan, key=plan.get) == "b"


def test_tscl_boltzmann_by_hand():
    t = TSCLTeacher(policy="boltzmann", temperature=0.1)
    run(t, TRAJECTORY[:2])
    # |slope| = (0, 0.25, 0.25): p ∝ exp(v / 0.1) = (e^0, e^2.5, e^2.5).
    e = math.exp(2.5)
    assert t.shares(1) == pytest.approx([1 / (1 + 2 * e), e / (1 + 2 * e), e / (1 + 2 * e)])


def test_tscl_online_and_naive_by_hand():
    online = TSCLTeacher(signal="online")  # alpha = 0.1, Q = 0 at step 0
    plans = run(online, TRAJECTORY[:3])
    assert plans[0] == plan_of([100, 100, 100])  # Q = 0: a tie
    # Step 1: Q = 0.1 * (0, 0.25, -0.25). Step 2: Q += 0.1 * ((0.125, 0, -0.25) - Q).
    q1 = np.array([0.0, 0.025, -0.025])
    q2 = q1 + 0.1 * (np.array([0.125, 0.0, -0.25]) - q1)
    assert online.progress_values(2) == pytest.approx(q2)
    assert q2 == pytest.approx([0.0125, 0.0225, -0.0475])
    assert plans[2] == plan_of([10, 10, 280])

    naive = TSCLTeacher(signal="naive", window=2)
    plans = run(naive, TRAJECTORY)
    assert plans[1] == plan_of([100, 100, 100])  # only one score under the first plan: no update yet
    # After steps 1 and 2 (K = 2 scores): slope = a(2) - a(1) = (0.125, 0, -0.25); Q = 0.1 * slope.
    assert naive.progress_values(2) == pytest.approx([0.0125, 0.0, -0.025])
    assert plans[2] == plan_of([10, 10, 280])
    assert naive.progress_values(3) == pytest.approx([0.0125, 0.0, -0.025])  # step 3 opens the next window


def test_tscl_sampling_draws_from_the_last_k_deltas_and_is_seeded():
    t = TSCLTeacher(signal="sampling", window=2)
    plans = run(t, TRAJECTORY)
    assert plans[0] == plan_of([100, 100, 100])  # no delta yet: every value 1
    # With one delta the draw is that delta: (0, 0.25, -0.25), the window/step-1 tie.
    assert plans[1] == plan_of([10, 145, 145])
    # Step 3: the last K = 2 deltas are steps 1->2 and 2->3.
    deltas = np.array([[0.125, 0.0, -0.25], [0.125, 0.0, 0.0]])
    draws = {tuple(t.progress_values(3)) for _ in range(3)}
    assert len(draws) == 1  # the same (seed, step) draws the same
    (draw,) = draws
    assert all(draw[i] in deltas[:, i] for i in range(3))
    draws = set()
    for seed in range(8):
        other = TSCLTeacher(signal="sampling", seed=seed)
        run(other, TRAJECTORY)
        draws.add(tuple(other.progress_values(3)))
    assert len(draws) > 1  # other seeds draw differently


def test_tscl_rejects_bad_arguments():
    with pytest.raises(UnknownName, match="Did you mean 'window'"):
        TSCLTeacher(signal="windw")
    with pytest.raises(UnknownName, match="boltzmann"):
        TSCLTeacher(policy="softmax")
    for kwargs in ({"window": 1}, {"window": 2.5}, {"epsilon": 1.5}, {"temperature": 0}, {"alpha": 0}, {"seed": -1}):
        with pytest.raises(InvalidConfig, match="Expects"):
            TSCLTeacher(**kwargs)


# --- Skill-It -----------------------------------------------------------------------------------------------------

PREREQUISITES = [["a", "b"], ["b", "c"]]  # a before b before c: A = [[1, .5, 0], [0, 1, .5], [0, 0, 1]]


def test_skill_it_weights_prerequisites_by_the_loss_of_the_skills_they_help():
    t = SkillItTeacher()  # eta = 0.5, window 3, edge 0.5
    trajectory = [[1.0, 0.5, 0.0], [1.0, 0.75, 0.0], [1.0, 0.75, 0.5], [1.0, 1.0, 0.5]]
    plans = run(t, trajectory, budget=1000, prerequisites=PREREQUISITES)
    # Step 0: L = (0, 0.5, 1); A L = (0 + 0.5 * 0.5, 0.5 + 0.5 * 1, 1) = (0.25, 1, 1); p ∝ exp(0.5 * A L).
    assert plans[0] == plan_of([256, 372, 372])  # exp(.125, .5, .5) / sum = (.2558, .3721, .3721)
    # Step 1: ΣL = (0, 0.75, 2); A ΣL = (0.375, 1.75, 2); exp(.1875, .875, 1) / sum = (.1908, .3794, .4299).
    assert plans[1] == plan_of([191, 379, 430])
    # Step 3: the window holds steps 1..3 only: ΣL = (0, 0.25 + 0.25 + 0, 1 + 0.5 + 0.5) = (0, 0.5, 2);
    # A ΣL = (0.25, 1.5, 2); p ∝ exp(0.125, 0.75, 1).
    shares = normalised(np.exp([0.125, 0.75, 1.0]))
    assert shares == pytest.approx([0.18986, 0.35470, 0.45544], abs=1e-5)
    assert t.shares(t.skills_graph(info(prerequisites=PREREQUISITES))) == pytest.approx(shares)
    assert plans[3] == plan_of([190, 355, 455])


def test_skill_it_identity_graph_and_missing_prerequisites():
    # Own loss only: p ∝ exp(0.5 * (0, 0.5, 1)) = (1, e^.25, e^.5) / 3.9327 = (.2543, .3265, .4192).
    identity = SkillItTeacher(graph="identity").act(obs(0, [1.0, 0.5, 0.0]), info(1000, prerequisites=PREREQUISITES))
    absent = SkillItTeacher().act(obs(0, [1.0, 0.5, 0.0]), info(1000))  # no prerequisites key: no edges
    empty = SkillItTeacher().act(obs(0, [1.0, 0.5, 0.0]), info(1000, prerequisites=[]))
    assert identity == absent == empty == plan_of([254, 327, 419])
    with pytest.raises(InvalidConfig, match="'z'"):
        SkillItTeacher().act(obs(0, [1.0, 0.5, 0.0]), info(prerequisites=[["a", "z"]]))
    with pytest.raises(UnknownName):
        SkillItTeacher(graph="tree")
    for kwargs in ({"eta": -1}, {"window": 0}, {"edge_weight": math.inf}):
        with pytest.raises(InvalidConfig, match="Expects"):
            SkillItTeacher(**kwargs)


# --- ODM ----------------------------------------------------------------------------------------------------------


def test_odm_exploration_schedule():
    assert exploration_rate(0, 3) == 1 / 3
    assert [exploration_rate(t, 3) for t in (1, 2, 3)] == [1 / 3] * 3  # t <= K ln K = 3.3: uniform plans
    assert exploration_rate(4, 3) == pytest.approx(math.sqrt(math.log(3) / 12))
    assert math.sqrt(math.log(3) / 12) == pytest.approx(0.3026, abs=1e-4)
    plans = run(ODMTeacher(), TRAJECTORY)
    assert all(plan == plan_of([100, 100, 100]) for plan in plans[:3])


def test_odm_smoothed_importance_weighted_reward_by_hand():
    skills = ["a", "b"]
    teacher = ODMTeacher()  # alpha = 0.9
    plans = [
        teacher.act({"accuracy": acc, "step": step}, {"skills": skills, "budget_next": 1000})
        for step, acc in enumerate([[0.5, 0.5], [0.75, 0.25], [1.0, 0.25]])
    ]
    assert plans[0] == {"a": 500, "b": 500}  # t = 1: eps_1 = 1/2, so 1 - K eps = 0
    # Step 1: r = (0.25, -0.25), pi = (0.5, 0.5): R = 0.1 * r / 0.5 = (0.05, -0.05).
    # t = 2: eps_2 = sqrt(ln 2 / 4) = 0.416277, eps_1 = 0.5: softmax(0.5 * R)_a = 1 / (1 + e^-0.05) = 0.512497.
    eps2 = math.sqrt(math.log(2) / 4)
    pi_a = (1 - 2 * eps2) * (1 / (1 + math.exp(-0.05))) + eps2
    assert pi_a == pytest.approx(0.502092, abs=1e-6)
    assert plans[1] == {"a": 502, "b": 498}
    # Step 2: r = (0.25, 0); the plan was (502, 498) examples, made with pi = (pi_a, 1 - pi_a).
    r_a, r_b = 0.9 * 0.05 + 0.1 * 0.25 / pi_a, 0.9 * -0.05 + 0.1 * 0.0
    assert teacher.state_dict()["reward"] == pytest.approx([r_a, r_b])
    assert [r_a, r_b] == pytest.approx([0.094792, -0.045], abs=1e-6)
    eps3 = math.sqrt(math.log(2) / 6)
    pi_a3 = (1 - 2 * eps3) / (1 + math.exp(-eps2 * (r_a - r_b))) + eps3
    assert teacher.policy(3) == pytest.approx([pi_a3, 1 - pi_a3])
    assert [pi_a3, 1 - pi_a3] == pytest.approx([0.504657, 0.495343], abs=1e-6)
    assert plans[2] == {"a": 505, "b": 495}


def test_odm_updates_only_skills_the_plan_played():
    teacher = ODMTeacher()
    teacher.act(obs(0, [0.5, 0.5, 0.5]), info(budget=1))  # one example: only skill a is played
    teacher.act(obs(1, [0.75, 0.75, 0.75]), info(budget=1))
    # a: 0.1 * 0.25 / (1/3); b and c got no example, so their estimates stay 0 although their accuracy moved.
    assert teacher.state_dict()["reward"] == pytest.approx([0.075, 0.0, 0.0])
    with pytest.raises(InvalidConfig, match="alpha"):
        ODMTeacher(alpha=1.0)


# --- DoReMi -------------------------------------------------------------------------------------------------------

REFERENCE = [{"a": 0.5, "b": 0.5, "c": 0.5}, {"a": 0.75, "b": 0.5, "c": 0.5}]


def _doremi_by_hand():
    """alpha_0 and alpha_1 for the student (0.5, 0.25, 0.5) -> (0.5, 0.5, 0.75) against REFERENCE."""
    # Step 0: excess = max(ref - acc, 0) = (0, 0.25, 0); from uniform, softmax(log u + lambda) ∝ (1, e^.25, 1).
    alpha0 = 0.999 * normalised([1, math.exp(0.25), 1]) + 0.001 / 3
    # Step 1: excess = (0.75 - 0.5, 0, 0) = (0.25, 0, 0) applied to the smoothed alpha_0.
    alpha1 = 0.999 * normalised(alpha0 * np.exp([0.25, 0, 0])) + 0.001 / 3
    return alpha0, alpha1


def test_doremi_excess_error_update_by_hand():
    teacher = DoReMiTeacher(reference=REFERENCE, reference_point="trajectory")  # eta = 1, c = 1e-3
    plans = run(teacher, [[0.5, 0.25, 0.5], [0.5, 0.5, 0.75]], budget=1000)
    alpha0, alpha1 = _doremi_by_hand()
    # alpha_0 = 0.999 * (1, e^.25, 1) / (2 + e^.25) + 0.001 / 3
    assert alpha0 == pytest.approx([0.304533, 0.390934, 0.304533], abs=1e-6)
    assert plans[0] == plan_of([305, 391, 304])  # largest remainder: the tie of .533s goes to the earlier skill
    assert teacher.weights == pytest.approx(alpha1)
    assert alpha1 == pytest.approx([0.359872, 0.359785, 0.280343], abs=1e-6)
    assert plans[1] == plan_of([360, 360, 280])
    assert teacher.average_weights == pytest.approx((alpha0 + alpha1) / 2)
    # Beyond the reference's last step its last entry is used: the student now matches it, no excess.
    teacher.act(obs(2, [0.75, 0.5, 0.5]), info(1000))
    assert teacher.weights == pytest.approx(0.999 * alpha1 + 0.001 / 3)


def test_doremi_final_reference_point_is_where_the_reference_run_ended():
    teacher = DoReMiTeacher(reference=REFERENCE)  # the default reference_point="final": REFERENCE[-1] every step
    final = np.asarray([REFERENCE[-1][s] for s in "abc"])
    run(teacher, [[0.5, 0.25, 0.5]], budget=1000)
    excess = np.maximum(final - np.asarray([0.5, 0.25, 0.5]), 0.0)
    assert teacher.weights == pytest.approx(0.999 * normalised(np.exp(excess)) + 0.001 / 3)
    with pytest.raises(InvalidConfig, match="reference_point"):
        DoReMiTeacher(reference=REFERENCE, reference_point="start")


def test_doremi_default_reference_is_the_student_at_step_0():
    teacher = DoReMiTeacher()
    plans = run(teacher, [[0.5, 0.5, 0.5], [0.75, 0.75, 0.75], [0.75, 0.5, 0.75]], budget=1000)
    assert plans[0] == plans[1] == plan_of([334, 333, 333])  # gains are not excess: uniform
    # Step 2: b is back at its start (0.5), no excess; nothing forgotten below the start, still uniform.
    assert plans[2] == plan_of([334, 333, 333])
    teacher.act(obs(3, [0.75, 0.25, 0.75]), info(1000))  # b forgotten below its start by 0.25
    assert teacher.weights == pytest.approx(0.999 * normalised([1, math.exp(0.25), 1]) + 0.001 / 3)


def test_doremi_reads_a_reference_run_directory(tmp_path):
    run_dir = tmp_path / "reference-run"
    run_dir.mkdir()
    (run_dir / "report.json").write_text(json.dumps({"val_accuracy_start": REFERENCE[0]}))
    (run_dir / "steps.jsonl").write_text(json.dumps({"step": 1, "val_accuracy": REFERENCE[1], "plan": {}}) + "\n")
    from_dir = DoReMiTeacher(reference=run_dir)
    from_list = DoReMiTeacher(reference=REFERENCE)
    trajectory = [[0.5, 0.25, 0.5], [0.5, 0.5, 0.75], [0.25, 0.5, 0.75]]
    assert run(from_dir, trajectory) == run(from_list, trajectory)
    assert from_dir.weights.tolist() == from_list.weights.tolist()
    with pytest.raises(InvalidConfig, match=r"steps\.jsonl"):
        DoReMiTeacher(reference=tmp_path)
    with pytest.raises(InvalidConfig, match="every skill"):
        DoReMiTeacher(reference=[{"a": 0.5}]).act(obs(0, [0.5, 0.5, 0.5]), info())
    for kwargs in ({"reference": [{"a": 2.0}]}, {"reference": []}, {"eta": -1}, {"smoothing": 2}):
        with pytest.raises(InvalidConfig, match="Expects"):
            DoReMiTeacher(**kwargs)


# --- All four -----------------------------------------------------------------------------------------------------

ZOO = {
    "tscl-window": lambda: TSCLTeacher(),
    "tscl-sampling": lambda: TSCLTeacher(signal="sampling", seed=5),
    "tscl-online-boltzmann": lambda: TSCLTeacher(signal="online", policy="boltzmann", temperature=0.05),
    "tscl-naive": lambda: TSCLTeacher(signal="naive", window=2),
    "skill-it": lambda: SkillItTeacher(),
    "odm": lambda: ODMTeacher(),
    "doremi": lambda: DoReMiTeacher(),
    "doremi-reference": lambda: DoReMiTeacher(reference=REFERENCE),
}


def _random_trajectory(seed, steps=8):
    rng = np.random.default_rng(seed)
    return np.clip(np.cumsum(rng.normal(0.0, 0.15, size=(steps, 3)), axis=0) + 0.5, 0.0, 1.0).tolist()


@pytest.mark.parametrize("name", ZOO)
def test_state_round_trips_through_json_and_continues_identically(name):
    trajectory = _random_trajectory(1, steps=12)
    extra = {"prerequisites": PREREQUISITES}
    straight = ZOO[name]()
    straight_plans = run(straight, trajectory, **extra)
    for cut in (0, 1, 5):
        first = ZOO[name]()
        run(first, trajectory[:cut], **extra)
        restored = ZOO[name]()
        restored.load_state_dict(json.loads(json.dumps(first.state_dict())))
        later = [restored.act(obs(step, trajectory[step]), info(**extra)) for step in range(cut, len(trajectory))]
        assert later == straight_plans[cut:], (name, cut)
    # The restored state is itself plain JSON and round trips unchanged.
    assert json.loads(json.dumps(straight.state_dict())) == straight.state_dict()


@pytest.mark.parametrize("name", ZOO)
def test_plans_are_whole_non_negative_counts_that_spend_the_budget(name):
    for seed, budget in [(0, 0), (1, 1), (2, 7), (3, 300), (4, 1025)]:
        teacher = ZOO[name]()
        for step, accuracy in enumerate(_random_trajectory(seed)):
            plan = teacher.act(obs(step, accuracy), info(budget, prerequisites=PREREQUISITES))
            assert list(plan) == SKILLS
            assert all(type(n) is int and n >= 0 for n in plan.values())
            assert sum(plan.values()) == budget


@pytest.mark.parametrize("name", ZOO)
def test_repeated_act_does_not_update_twice_and_step_0_starts_a_new_episode(name):
    trajectory = _random_trajectory(2)
    once, twice = ZOO[name](), ZOO[name]()
    for step, accuracy in enumerate(trajectory):
        plan = once.act(obs(step, accuracy), info())
        twice.act(obs(step, accuracy), info())
        assert twice.act(obs(step, accuracy), info()) == plan
    assert once.state_dict() == twice.state_dict()
    fresh = ZOO[name]()
    assert once.act(obs(0, trajectory[0]), info()) == fresh.act(obs(0, trajectory[0]), info())
    once.act(obs(3, trajectory[3]), info())
    with pytest.raises(InvalidConfig, match="in order"):
        once.act(obs(2, trajectory[2]), info())
    with pytest.raises(InvalidConfig, match="skills"):
        once.act(obs(4, [0.5, 0.5]), {"skills": ["x", "y"], "budget_next": 10})


def test_zoo_teachers_are_registered_by_name():
    assert isinstance(make_teacher("tscl", seed=3), TSCLTeacher) and make_teacher("tscl", seed=3).seed == 3
    assert isinstance(make_teacher("skill-it"), SkillItTeacher)
    assert isinstance(make_teacher("odm"), ODMTeacher)
    assert isinstance(make_teacher("doremi"), DoReMiTeacher)


# --- Real episodes ------------------------------------------------------------------------------------------------


def _episode_env():
    return gym.make("envgym/SkillList-v0", steps=2, budget=32, n_val=10, n_test=10, student_config={"num_threads": 1})


def _plans(run_dir):
    return [json.loads(line)["plan"] for line in (run_dir / "steps.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tscl", "skill-it", "odm", "doremi"])
def test_real_episode_resumes_identically_after_a_crash(tmp_path, name):
    factory = type(make_teacher(name))

    class Crashing(factory):
        def act(self, observation, info):
            if observation["step"] == 1:
                raise KeyboardInterrupt
            return super().act(observation, info)

    with pytest.raises(KeyboardInterrupt):
        envgym.run_episode(_episode_env(), Crashing(), tmp_path / "killed", seed=0, progress=False)
    resumed_teacher, straight_teacher = factory(), factory()
    resumed = envgym.run_episode(
        _episode_env(), resumed_teacher, tmp_path / "killed", seed=0, resume=True, progress=False
    )
    straight = envgym.run_episode(_episode_env(), straight_teacher, tmp_path / "straight", seed=0, progress=False)
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    assert _plans(tmp_path / "killed") == _plans(tmp_path / "straight")
    assert all(sum(plan["counts"].values()) == 32 for plan in _plans(tmp_path / "straight"))
    # The resumed teacher continued from the checkpointed state: it ends where the uninterrupted one does.
    assert resumed_teacher.state_dict() == straight_teacher.state_dict()
    assert straight_teacher.state_dict()["last_step"] == 1
