"""The teacher comparison protocol: statistics checked by hand on synthetic numbers, then `envgym bench` end to end
on a tiny grid through a real local Ray, a resumed bench, and `envgym leaderboard` rebuilding the same files."""

import json
import math
import time

import pytest

from envgym.bench import parse_seeds, parse_teachers, plan_episodes, run_bench, teacher_dir
from envgym.cli import main
from envgym.core import resolved_env_kwargs
from envgym.error import InvalidConfig, InvalidRunDirectory, UnknownName
from envgym.leaderboard import (
    EpisodeResult,
    build_leaderboard,
    curve_auc,
    examples_to_reach,
    mean_ci,
    mean_curve,
    normalized_scores,
    paired_difference,
    plot_leaderboard,
    render_markdown,
    write_leaderboard,
)

# Two-sided 95% Student-t quantiles, from tables.
T975 = {1: 12.706205, 2: 4.302653, 3: 3.182446}

# ---------------------------------------------------------------------------------------- statistics, by hand


def test_mean_ci_is_the_student_t_interval():
    summary = mean_ci([0.1, 0.2, 0.3, 0.4])
    sd = math.sqrt((0.15**2 + 0.05**2 + 0.05**2 + 0.15**2) / 3)  # 0.129099
    half = T975[3] * sd / math.sqrt(4)  # 0.205426
    assert summary["n"] == 4 and summary["mean"] == pytest.approx(0.25)
    assert summary["ci"] == pytest.approx([0.25 - half, 0.25 + half], abs=1e-6)
    assert summary["ci"] == pytest.approx([0.044574, 0.455426], abs=1e-6)
    assert mean_ci([0.3]) == {"n": 1, "mean": 0.3, "ci": None}
    assert mean_ci([]) == {"n": 0, "mean": None, "ci": None}
    assert mean_ci([0.2, 0.2, 0.2])["ci"] == pytest.approx([0.2, 0.2])  # no spread: a zero-width interval, not NaN


def test_paired_difference_pairs_by_seed_with_hand_interval_and_p_value():
    teacher = {0: 0.30, 1: 0.25, 2: 0.40, 3: 0.10}  # seed 3: the baseline failed there
    baseline = {0: 0.20, 1: 0.20, 2: 0.25, 4: 0.00}  # seed 4: the teacher failed there
    result = paired_difference(teacher, baseline)
    # differences 0.10, 0.05, 0.15: mean 0.10, sd 0.05, sem 0.05/sqrt(3)
    assert result["n"] == 3 and result["seeds"] == [0, 1, 2]
    assert result["mean"] == pytest.approx(0.10)
    half = T975[2] * 0.05 / math.sqrt(3)  # 0.124208
    assert result["ci"] == pytest.approx([0.10 - half, 0.10 + half], abs=1e-6)
    # t = 0.10 / (0.05/sqrt 3) = 2 sqrt 3; with 2 degrees of freedom the two-sided p is 1 - t/sqrt(t^2 + 2).
    assert result["p_value"] == pytest.approx(1 - math.sqrt(6 / 7), rel=1e-9)  # 0.0742
    same = paired_difference({0: 0.5, 1: 0.6}, {0: 0.4, 1: 0.5})
    assert same["ci"] == pytest.approx([0.1, 0.1]) and same["p_value"] is None  # identical differences
    one = paired_difference({0: 0.5, 1: 0.6}, {1: 0.5})
    assert (one["n"], one["ci"], one["p_value"]) == (1, None, None)
    assert paired_difference({0: 0.5}, {1: 0.5})["n"] == 0


def test_normalized_score_is_the_gap_recovered_per_seed():
    teacher = {0: 0.3, 1: 0.2, 2: 0.5, 3: 0.9}
    uniform = {0: 0.1, 1: 0.1, 2: 0.1, 3: 0.1}
    oracle = {0: 0.5, 1: 0.1, 2: 0.3}  # seed 1: oracle = uniform, no gap to recover; seed 3: no oracle run
    result = normalized_scores(teacher, uniform, oracle)
    # seed 0: (0.3-0.1)/(0.5-0.1) = 0.5; seed 2: (0.5-0.1)/(0.3-0.1) = 2.0
    assert result["seeds"] == [0, 2] and result["excluded_seeds"] == [1] and result["n"] == 2
    assert result["mean"] == pytest.approx(1.25)
    half = T975[1] * (1.5 / math.sqrt(2)) / math.sqrt(2)  # sd of (0.5, 2.0) = 1.06066, sem 0.75
    assert result["ci"] == pytest.approx([1.25 - half, 1.25 + half], abs=1e-5)
    # of means over the shared seeds 0, 1, 2: (1.0/3 - 0.1) / (0.9/3 - 0.1)
    assert result["of_means"] == pytest.approx((1.0 / 3 - 0.1) / (0.3 - 0.1))
    assert normalized_scores(uniform, uniform, oracle)["mean"] == 0.0
    assert normalized_scores(oracle, uniform, oracle)["mean"] == 1.0


def test_auc_and_examples_to_reach():
    assert curve_auc([0.2, 0.4, 0.9]) == pytest.approx(0.5)  # mean over steps 0..T
    assert curve_auc([0.3]) == pytest.approx(0.3)
    examples = [0, 100, 200, 300]
    assert examples_to_reach([0.2, 0.4, 0.6, 0.5], examples, 0.55) == 200  # the first step at the target
    assert examples_to_reach([0.2, 0.4, 0.6, 0.5], examples, 0.1) == 0  # already there at the start
    assert examples_to_reach([0.2, 0.4, 0.6, 0.5], examples, 0.61) is None  # never
    assert examples_to_reach([0.1 + 0.2], [0], 0.3) == 0  # within float rounding counts as reached
    with pytest.raises(InvalidConfig):
        examples_to_reach([0.1, 0.2], [0], 0.1)
    with pytest.raises(InvalidConfig):
        curve_auc([])


def test_mean_curve_averages_each_step_over_the_seeds_that_reach_it():
    curve = mean_curve([[0.2, 0.4, 0.6], [0.4, 0.6]])
    assert curve["step"] == [0, 1, 2] and curve["n"] == [2, 2, 1]
    assert curve["mean"] == pytest.approx([0.3, 0.5, 0.6])
    assert curve["ci_low"][0] == pytest.approx(0.3 - T975[1] * 0.1, abs=1e-5)  # sem of (0.2, 0.4) = 0.1
    assert curve["ci_low"][2] is None and curve["ci_high"][2] is None


def _episode(teacher, seed, gain, curve, examples, min_skill=0.0):
    return EpisodeResult(teacher, seed, gain, tuple(curve), tuple(float(e) for e in examples), min_skill)


def test_leaderboard_on_synthetic_episodes(tmp_path):
    episodes = [
        _episode("uniform", 0, 0.10, [0.2, 0.3, 0.4], [0, 100, 200], 0.1),
        _episode("uniform", 1, 0.20, [0.2, 0.4, 0.6], [0, 100, 200], 0.3),
        _episode("oracle", 0, 0.50, [0.2, 0.6, 0.8], [0, 100, 200]),
        _episode("oracle", 1, 0.40, [0.2, 0.6, 0.7], [0, 100, 200]),
        _episode("targeted", 0, 0.30, [0.2, 0.5, 0.6], [0, 100, 200], 0.2),
        _episode("targeted", 1, 0.30, [0.2, 0.45, 0.5], [0, 90, 190], 0.4),
        _episode("random", 0, 0.05, [0.2, 0.25, 0.3], [0, 100, 200]),
    ]
    failed = [{"teacher": "random", "seed": 1, "dir": "random/seed1", "error_type": "TeacherError", "message": "x"}]
    board = build_leaderboard(
        episodes, failed=failed, teachers=["uniform", "targeted", "random", "oracle"], seeds=[0, 1]
    )
    rows = {r["teacher"]: r for r in board["rows"]}
    assert [r["teacher"] for r in board["rows"]] == ["oracle", "targeted", "uniform", "random"]  # by mean gain
    assert [r["rank"] for r in board["rows"]] == [1, 2, 3, 4]
    assert board["baseline"] == "uniform" and board["oracle"] == "oracle"
    assert board["episodes"] == {"planned": 8, "finished": 7, "failed": 1, "unfinished": 0}

    targeted = rows["targeted"]
    assert targeted["gain"]["mean"] == pytest.approx(0.30) and targeted["gain"]["ci"] == pytest.approx([0.3, 0.3])
    assert targeted["vs_baseline"]["n"] == 2 and targeted["vs_baseline"]["mean"] == pytest.approx(0.15)
    half = T975[1] * 0.05  # differences 0.2, 0.1: sd 0.0707, sem 0.05
    assert targeted["vs_baseline"]["ci"] == pytest.approx([0.15 - half, 0.15 + half], abs=1e-5)
    # gap recovered: seed 0 (0.3-0.1)/(0.5-0.1) = 0.5, seed 1 (0.3-0.2)/(0.4-0.2) = 0.5
    assert targeted["normalized_score"]["mean"] == pytest.approx(0.5) and targeted["normalized_score"]["n"] == 2
    assert rows["oracle"]["normalized_score"]["mean"] == pytest.approx(1.0)
    assert rows["uniform"]["normalized_score"]["mean"] == pytest.approx(0.0)
    assert targeted["auc"]["mean"] == pytest.approx(((0.2 + 0.5 + 0.6) / 3 + (0.2 + 0.45 + 0.5) / 3) / 2)
    assert targeted["min_skill_test"]["mean"] == pytest.approx(0.3)
    # uniform's final mean val accuracy over seeds 0, 1 is 0.5; targeted's mean curve (0.2, 0.475, 0.55) reaches it
    # at step 2, after (200 + 190) / 2 examples. Per seed: seed 0 reaches 0.4 at step 1 (100), seed 1 never 0.6.
    reach = targeted["examples_to_reach_baseline"]
    assert reach["target"] == pytest.approx(0.5) and reach["examples"] == pytest.approx(195)
    assert reach["per_seed"] == [100, None] and reach["reached"] == 1
    assert rows["uniform"]["examples_to_reach_baseline"]["examples"] == 200
    assert rows["random"]["examples_to_reach_baseline"]["examples"] is None

    random_row = rows["random"]
    assert random_row["n_seeds"] == 1 and random_row["failed_seeds"] == [1]
    assert random_row["vs_baseline"]["n"] == 1 and random_row["vs_baseline"]["ci"] is None  # one pair: no interval
    assert rows["uniform"]["vs_baseline"] is None
    assert board["failed"] == failed

    text = render_markdown(board)
    assert "| 2 | targeted | 2 |" in text and "+0.150" in text and "## Failed episodes" in text
    assert "`random` seed 1: TeacherError" in text
    png = plot_leaderboard(board, tmp_path / "leaderboard.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    no_oracle = build_leaderboard([e for e in episodes if e.teacher != "oracle"])
    assert no_oracle["oracle"] is None and all(r["normalized_score"] is None for r in no_oracle["rows"])
    no_baseline = build_leaderboard([e for e in episodes if e.teacher != "uniform"])
    assert no_baseline["baseline"] is None and all(r["vs_baseline"] is None for r in no_baseline["rows"])


# ---------------------------------------------------------------------------------------------------- the grid


def test_seeds_and_teachers_parse_or_name_the_problem():
    assert parse_seeds("0-15") == list(range(16))
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("5, 0-2,2") == [0, 1, 2, 5]
    assert parse_seeds([3, 1]) == [1, 3] and parse_seeds(4) == [4]
    for bad in ("3-1", "a", "-1", "0,,1", "", "1-", "0-99999999"):
        with pytest.raises(InvalidConfig):
            parse_seeds(bad)
    assert parse_teachers("uniform, targeted,uniform,pkg.mod:Cls") == ["uniform", "targeted", "pkg.mod:Cls"]
    with pytest.raises(UnknownName, match="Did you mean 'targeted'"):
        parse_teachers("uniform,targetted")
    for bad in ("uniform,,targeted", ":Cls", "mod:"):
        with pytest.raises(InvalidConfig):
            parse_teachers(bad)
    assert teacher_dir("pkg.mod:Cls") == "pkg.mod-Cls"


def test_plan_runs_the_reference_teacher_first_and_passes_its_run_directory(tmp_path):
    plan = plan_episodes(["targeted", "doremi", "uniform"], [0, 1], tmp_path)
    assert [(e.teacher, e.seed) for e in plan] == [
        ("uniform", 0),
        ("uniform", 1),
        ("targeted", 0),
        ("doremi", 0),
        ("targeted", 1),
        ("doremi", 1),
    ]
    doremi = {e.seed: e for e in plan if e.teacher == "doremi"}
    assert doremi[1].reference == str(tmp_path / "uniform" / "seed1") and doremi[1].after == ("uniform", 1)
    assert all(e.reference is None and e.after is None for e in plan if e.teacher != "doremi")
    assert [(e.teacher, e.seed) for e in plan_episodes(["uniform", "targeted"], [0, 1], tmp_path)] == [
        ("uniform", 0),
        ("targeted", 0),
        ("uniform", 1),
        ("targeted", 1),
    ]
    # Without uniform in the grid, doremi gets a reference only where uniform's run already finished in DIR.
    alone = plan_episodes(["doremi"], [0, 1], tmp_path, finished={("uniform", 1)})
    assert [(e.reference, e.after) for e in alone] == [(None, None), (str(tmp_path / "uniform" / "seed1"), None)]
    with pytest.raises(InvalidConfig, match="distinct directory names"):
        plan_episodes(["a.b:C", "a.b-C"], [0], tmp_path)


# ------------------------------------------------------------------------------------------- end to end on Ray

TINY = {"steps": 1, "budget": 16, "n_val": 5, "n_test": 5}
GRID = "uniform,targeted,tests_failing_teacher_module:Broken"
BROKEN = """
class Broken:
    def act(self, observation, info):
        raise RuntimeError("deliberately broken teacher")
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A 3-teacher × 2-seed bench through a real local Ray (2 CPUs), then the same command again after one
    finished run lost its report.json (as if the bench was killed after that run's last checkpoint)."""
    work = tmp_path_factory.mktemp("bench")
    (work / "tests_failing_teacher_module.py").write_text(BROKEN)
    out = work / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)  # a module:Class teacher in the working directory, as `envgym run` finds one
        start = time.perf_counter()
        first = run_bench(GRID, "0-1", out, env_kwargs=TINY, jobs=2, progress=False)
        first_seconds = time.perf_counter() - start
        first_json = (out / "leaderboard.json").read_text()
        report = out / "uniform" / "seed1" / "report.json"
        report_before = json.loads(report.read_text())
        report.unlink()
        kept = out / "targeted" / "seed0" / "report.json"
        kept_mtime = kept.stat().st_mtime_ns
        start = time.perf_counter()
        second = run_bench(GRID, "0-1", out, env_kwargs=TINY, jobs=2, progress=False)
        second_seconds = time.perf_counter() - start
    print(f"\nbench wall times: first {first_seconds:.1f} s, resumed {second_seconds:.1f} s")
    return {
        "out": out,
        "first": first,
        "second": second,
        "first_json": first_json,
        "report_before": report_before,
        "kept_unchanged": kept.stat().st_mtime_ns == kept_mtime,
    }


@pytest.mark.slow
def test_bench_records_the_failing_teacher_and_finishes_the_others(bench):
    out, first = bench["out"], bench["first"]
    assert (first.planned, first.ran, first.skipped) == (6, 6, 0)
    assert sorted((f["teacher"], f["seed"]) for f in first.failed) == [(GRID.split(",")[2], 0), (GRID.split(",")[2], 1)]
    for failure in first.failed:
        assert failure["error_type"] == "TeacherError" and "deliberately broken teacher" in failure["message"]
        error = json.loads(
            (out / "tests_failing_teacher_module-Broken" / f"seed{failure['seed']}" / "error.json").read_text()
        )
        assert error["error_type"] == "TeacherError" and "RuntimeError: deliberately broken" in error["traceback"]
    for teacher in ("uniform", "targeted"):
        for seed in (0, 1):
            report = json.loads((out / teacher / f"seed{seed}" / "report.json").read_text())
            # Run directories save the env's whole config: what was given, with every default filled in.
            assert report["env_kwargs"] == resolved_env_kwargs("envgym/SkillList-v0", TINY)
            assert (report["teacher"], report["seed"]) == (teacher, seed)
            assert report["steps"] == 1 and report["examples_used"] <= 16

    board = json.loads(bench["first_json"])
    assert board["env_kwargs"] == resolved_env_kwargs("envgym/SkillList-v0", TINY) and board["seeds"] == [0, 1]
    assert board["episodes"] == {"planned": 6, "finished": 4, "failed": 2, "unfinished": 0}
    rows = {r["teacher"]: r for r in board["rows"]}
    assert set(rows) == set(GRID.split(","))
    assert rows["targeted"]["n_seeds"] == 2 and rows["targeted"]["vs_baseline"]["n"] == 2
    assert rows["targeted"]["vs_baseline"]["seeds"] == [0, 1]
    assert rows[GRID.split(",")[2]]["n_seeds"] == 0 and rows[GRID.split(",")[2]]["failed_seeds"] == [0, 1]
    assert rows["uniform"]["curve"]["step"] == [0, 1] and len(rows["uniform"]["curve"]["examples"]) == 2
    assert board["oracle"] is None and [f["seed"] for f in board["failed"]] == [0, 1]
    markdown = (out / "leaderboard.md").read_text()
    assert "## Failed episodes" in markdown and "deliberately broken teacher" in markdown
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_rerun_skips_finished_episodes_and_resumes_interrupted_ones(bench):
    out, second = bench["out"], bench["second"]
    # 3 finished episodes skipped; uniform seed 1 resumed from its final checkpoint; the broken teacher retried.
    assert (second.planned, second.ran, second.skipped, len(second.failed)) == (6, 3, 3, 2)
    assert second.resumed == 3 and bench["first"].resumed == 0  # the broken teacher's runs stopped after step 0
    assert bench["kept_unchanged"]
    resumed = json.loads((out / "uniform" / "seed1" / "report.json").read_text())
    assert resumed["test_accuracy"] == bench["report_before"]["test_accuracy"]
    assert json.loads((out / "leaderboard.json").read_text())["rows"] == json.loads(bench["first_json"])["rows"]


@pytest.mark.slow
def test_leaderboard_command_rebuilds_identical_files(bench, capsys):
    out = bench["out"]
    written = {name: (out / name).read_text() for name in ("leaderboard.json", "leaderboard.md")}
    for name in ("leaderboard.json", "leaderboard.md", "leaderboard.png"):
        (out / name).unlink()
    assert main(["leaderboard", str(out)]) == 0
    assert {name: (out / name).read_text() for name in written} == written
    assert (out / "leaderboard.png").is_file()
    assert "targeted" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_directory_keeps_its_environment(bench):
    with pytest.raises(InvalidConfig, match="Expects the environment of the bench already in"):
        run_bench("uniform", "0", bench["out"], env_kwargs={**TINY, "steps": 2}, progress=False)


@pytest.mark.slow
def test_cli_bench_runs_a_grid(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["bench", "--teachers", "uniform,random", "--seeds", "0", "--steps", "1", "--budget", "16", "--jobs", "2"]
    start = time.perf_counter()
    assert main([*args, "--out", str(out)]) == 0
    print(f"\nCLI bench wall time {time.perf_counter() - start:.1f} s")
    printed = capsys.readouterr().out
    assert "Ran 2 of 2 episodes; skipped 0 already finished" in printed
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["env_kwargs"] == resolved_env_kwargs("envgym/SkillList-v0", {"steps": 1, "budget": 16})
    assert board["episodes"]["finished"] == 2
    assert {r["teacher"] for r in board["rows"]} == {"uniform", "random"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--teachers", "uniform,targetted", "--seeds", "0"], "Did you mean 'targeted'"),
        (["--teachers", "uniform", "--seeds", "3-1"], "runs backwards"),
        (["--teachers", "uniform", "--seeds", "0", "--task", "nonsense"], "Unknown task 'nonsense'"),
        (["--teachers", "uniform", "--seeds", "0", "--jobs", "0"], "--jobs"),
    ],
)
def test_cli_bench_user_errors_are_one_line_before_anything_runs(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["bench", *args, "--out", str(out)]) == 2
    printed = capsys.readouterr().out
    assert message in printed and "Traceback" not in printed
    assert not out.exists()


def test_leaderboard_command_refuses_a_directory_without_a_bench(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert "Expects a bench directory" in capsys.readouterr().out
    assert main(["leaderboard", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().out
    with pytest.raises(InvalidRunDirectory):
        write_leaderboard(tmp_path)


def test_runs_saving_full_or_partial_env_kwargs_belong_to_the_same_bench():
    from envgym.leaderboard import _same_env

    full = resolved_env_kwargs("envgym/SkillList-v0", {"budget": 16})
    assert _same_env("envgym/SkillList-v0", full, {"budget": 16})  # a run dir saves every field, bench.json the given
    assert _same_env("envgym/SkillList-v0", {}, {"steps": 5})  # steps=5 is the default
    assert not _same_env("envgym/SkillList-v0", full, {"budget": 32})
    assert not _same_env("envgym/NoSuchEnv-v0", {}, {"steps": 5})
