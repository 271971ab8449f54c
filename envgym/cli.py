"""The ``envgym`` command line: run, bench, leaderboard, list, report, build-student."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import traceback
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console()


def _make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    import gymnasium as gym

    import envgym  # noqa: F401 - registers the environments
    from skills.errors import unknown_name_error

    ours = sorted(k for k in gym.registry if k.startswith("envgym/"))
    if env_id not in gym.registry:
        raise unknown_name_error("environment", env_id, ours)
    return gym.make(env_id, **kwargs)


# Flags of `envgym run` that define an episode, and where a saved run keeps each one (config.json).
_EPISODE_FLAGS = {"env": "env_id", "teacher": "teacher", "seed": "seed"}
_ENV_KWARG_FLAGS = ("task", "steps", "budget", "mode")
_RUN_DEFAULTS = {"env": "envgym/SkillList-v0", "teacher": "targeted", "seed": 0}


def _resume_conflicts(args: argparse.Namespace, config: dict[str, Any]) -> list[str]:
    """Each flag given with --resume whose value differs from the saved run's, described for the user."""
    conflicts = []
    for flag, key in _EPISODE_FLAGS.items():
        given = getattr(args, flag)
        if given is not None and given != config.get(key):
            conflicts.append(f"--{flag} {given} (the run has {config.get(key)!r})")
    saved = config.get("env_kwargs", {})
    for flag in _ENV_KWARG_FLAGS:
        given = getattr(args, flag)
        if given is not None and given != saved.get(flag):
            have = repr(saved[flag]) if flag in saved else "the environment's default"
            conflicts.append(f"--{flag} {given} (the run has {have})")
    if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        conflicts.append(f"--out {args.out} (resuming writes to {args.resume})")
    return conflicts


def _cmd_run(args: argparse.Namespace) -> int:
    from agents.registry import make_teacher
    from envgym.error import InvalidConfig
    from envgym.files import acquire_run_lock, read_json
    from envgym.report import print_report
    from envgym.runner import check_run_dir, refuse_existing_run, remove_unfinished_run, run_episode

    resume = args.resume is not None
    created = None
    if resume:
        out = check_run_dir(args.resume, resume=True)
        config = read_json(out / "config.json", "Run configuration")
        if not isinstance(config, dict) or not {"env_id", "env_kwargs", "teacher", "seed"} <= set(config):
            raise InvalidConfig(f"Expects {str(out / 'config.json')!r} to hold env_id, env_kwargs, teacher and seed.")
        conflicts = _resume_conflicts(args, config)
        if conflicts:
            raise InvalidConfig(
                "A resumed run keeps its saved configuration; these flags conflict with it: "
                + "; ".join(conflicts)
                + f". Drop them to resume {out}, or start a new run with another --out."
            )
        env_id, env_kwargs, teacher_spec, seed = (
            config["env_id"],
            config["env_kwargs"],
            config["teacher"],
            config["seed"],
        )
        console.print(f"Resuming {out} ({env_id}, teacher {teacher_spec}, seed {seed})")
    else:
        env_id, teacher_spec, seed = (
            args.env or _RUN_DEFAULTS["env"],
            args.teacher or _RUN_DEFAULTS["teacher"],
            _RUN_DEFAULTS["seed"] if args.seed is None else args.seed,
        )
        env_kwargs = {flag: getattr(args, flag) for flag in _ENV_KWARG_FLAGS if getattr(args, flag) is not None}
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe_teacher = teacher_spec.replace(":", "-").replace("/", "-")
        out = Path(args.out) if args.out else Path("runs") / f"{stamp}-{safe_teacher}-seed{seed}"
        # The outermost directory this run creates (runs/ on a first run): removed again if the run fails early.
        created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
        out = check_run_dir(out, resume=False)
    # Held from before loading anything until the run ends: a second process is refused at once.
    lock = acquire_run_lock(out)
    try:
        if not resume:
            refuse_existing_run(out)
        teacher = make_teacher(teacher_spec, seed=seed)
        with console.status("Loading the environment and student..."):
            env = _make_env(env_id, env_kwargs)
        report = run_episode(env, teacher, out, seed=seed, teacher_name=teacher_spec, resume=resume)
    except BaseException:
        if created is not None:
            remove_unfinished_run(out, created)
        raise
    finally:
        lock.release()
    print_report(report, console)
    console.print(f"Results in {out}/ (report.json, summary.md, accuracy.png, steps.jsonl)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from envgym.bench import DEFAULT_ENV, run_bench
    from envgym.leaderboard import FILES, print_leaderboard

    env_kwargs = {flag: getattr(args, flag) for flag in _ENV_KWARG_FLAGS if getattr(args, flag) is not None}
    try:
        result = run_bench(
            args.teachers,
            args.seeds,
            args.out,
            env_id=args.env or DEFAULT_ENV,
            env_kwargs=env_kwargs,
            jobs=args.jobs,
            address=args.address,
        )
    except KeyboardInterrupt:
        console.print(
            "Interrupted. Run the same `envgym bench` command again to resume: finished episodes are skipped and "
            "interrupted ones continue from their last checkpoint.",
            soft_wrap=True,
        )
        return 130
    print_leaderboard(result.leaderboard, console)
    resumed = f", {result.resumed} resumed from a checkpoint" if result.resumed else ""
    failed = f", [red]{len(result.failed)} failed[/red]" if result.failed else ""
    console.print(
        f"Ran {result.ran} of {result.planned} episodes{resumed}{failed}; skipped {result.skipped} already finished in "
        f"{result.out}. Wall time {result.wall_seconds:.0f} s.",
        soft_wrap=True,
    )
    console.print(f"Leaderboard: {', '.join(str(result.out / name) for name in FILES)}", soft_wrap=True)
    return 1 if result.failed else 0  # scripts can tell a bench with failed episodes from a complete one


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from envgym.leaderboard import FILES, print_leaderboard, write_leaderboard

    board = write_leaderboard(args.dir)
    print_leaderboard(board, console)
    console.print(f"Rebuilt {', '.join(str(Path(args.dir) / name) for name in FILES)}", soft_wrap=True)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    import envgym
    from agents.registry import teacher_names
    from skills.registry import make_task, task_names

    console.print("[bold]Environments[/bold]: " + ", ".join(envgym.ENV_IDS))
    console.print("[bold]Teachers[/bold]: " + ", ".join(teacher_names()) + ", or module:Class")
    console.print("[bold]Tasks[/bold]: " + ", ".join(task_names()) + ", or rg:<reasoning-gym dataset>[,...]")
    for name in task_names():
        for skill in make_task(name).skills:
            console.print(f"  {name}/{skill.name} ({skill.category}): {skill.description}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from envgym.report import load_report, plot_accuracy, print_report, write_summary

    report = load_report(args.dir)
    print_report(report, console)
    plot_accuracy(args.dir, report)
    write_summary(args.dir, report)
    console.print(f"Re-drew {Path(args.dir) / 'accuracy.png'} and summary.md")
    return 0


def _cmd_build_student(args: argparse.Namespace) -> int:
    import hashlib
    import tempfile

    from envgym.error import InvalidConfig
    from students.default_student import (
        SHIPPED_DIR,
        DefaultStudentConfig,
        build_default_student,
        shipped_build,
    )

    config = DefaultStudentConfig(seed=args.seed)
    if args.check:
        shipped = shipped_build()
        if shipped is None:
            raise InvalidConfig(f"Expects shipped weights in {SHIPPED_DIR}; none found. Build them with --ship.")
        with tempfile.TemporaryDirectory() as tmp:
            build_default_student(DefaultStudentConfig(**_config_fields(shipped["config"])), tmp)
            rebuilt = hashlib.sha256((Path(tmp) / "model.safetensors").read_bytes()).hexdigest()
        if rebuilt != shipped["weights_sha256"]:
            console.print(f"[red]differs[/red]: rebuilt {rebuilt[:12]} != shipped {shipped['weights_sha256'][:12]}")
            return 1
        console.print(f"reproduced: rebuilt weights equal the shipped ones (sha256 {rebuilt[:12]})")
        return 0
    out = SHIPPED_DIR if args.ship else Path(args.out or f"students-built/default-seed{args.seed}")
    build_default_student(config, out)
    console.print(f"Built the default student into {out}")
    return 0


def _config_fields(saved: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in saved.items()}


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a whole number >= 0; actual {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expects a whole number >= 0; actual {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envgym", description="Teach student language models through data.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="Run a teaching episode (default: targeted teacher on SkillList-v0).")
    run.add_argument("--env", default=None, help="Environment id (default: envgym/SkillList-v0).")
    run.add_argument("--teacher", default=None, help="Built-in teacher name or module:Class (default: targeted).")
    run.add_argument("--task", default=None, help="Task name, e.g. arithmetic or rg:chain_sum,gcd.")
    run.add_argument("--steps", type=int, default=None, help="Teaching steps.")
    run.add_argument("--budget", type=int, default=None, help="Training examples per step.")
    run.add_argument("--mode", choices=["continual", "retrain"], default=None, help="Training mode.")
    run.add_argument("--seed", type=_seed, default=None, help="Episode seed, a whole number >= 0 (default: 0).")
    run.add_argument("--out", default=None, help="Output directory (default: a fresh one under runs/).")
    run.add_argument("--resume", default=None, metavar="DIR", help="Continue an interrupted run.")
    run.set_defaults(func=_cmd_run)

    bench = sub.add_parser(
        "bench",
        help="Run every (teacher, seed) episode of a grid on Ray and write a leaderboard (resumable).",
        description="Each (teacher, seed) episode runs as a Ray task (one torch thread) into OUT/<teacher>/seed<k>/; "
        "failed episodes are recorded, finished ones skipped on a re-run. Writes OUT/leaderboard.{md,json,png}.",
    )
    bench.add_argument(
        "--teachers", required=True, help="Comma-separated teacher names or module:Class, e.g. uniform,targeted."
    )
    bench.add_argument("--seeds", required=True, help="Seeds: ranges and lists, e.g. 0-15 or 0,3,7.")
    bench.add_argument("--out", required=True, help="Bench directory (re-use it to resume or extend a bench).")
    bench.add_argument("--jobs", type=int, default=None, help="Episodes at once (local Ray CPUs; default: all cores).")
    bench.add_argument(
        "--address",
        default=None,
        help="An existing Ray cluster (e.g. HOST:6379) instead of a local one; --out must be a shared path.",
    )
    bench.add_argument("--env", default=None, help="Environment id (default: envgym/SkillList-v0).")
    bench.add_argument("--task", default=None, help="Task name, e.g. arithmetic or rg:chain_sum,gcd.")
    bench.add_argument("--steps", type=int, default=None, help="Teaching steps.")
    bench.add_argument("--budget", type=int, default=None, help="Training examples per step.")
    bench.add_argument("--mode", choices=["continual", "retrain"], default=None, help="Training mode.")
    bench.set_defaults(func=_cmd_bench)

    board = sub.add_parser("leaderboard", help="Rebuild a bench's leaderboard from its run directories.")
    board.add_argument("dir", help="A bench directory (envgym bench --out).")
    board.set_defaults(func=_cmd_leaderboard)

    lst = sub.add_parser("list", help="List environments, teachers, tasks and skills.")
    lst.set_defaults(func=_cmd_list)

    rep = sub.add_parser("report", help="Re-print a run's table and re-draw its plot.")
    rep.add_argument("dir", help="A run directory.")
    rep.set_defaults(func=_cmd_report)

    build = sub.add_parser("build-student", help="Build the default student from scratch.")
    build.add_argument("--seed", type=_seed, default=0, help="Seed of the student's build.")
    build.add_argument("--out", default=None, help="Where to write it.")
    build.add_argument("--ship", action="store_true", help="Write into the package's shipped weights.")
    build.add_argument("--check", action="store_true", help="Rebuild and compare with the shipped weights.")
    build.set_defaults(func=_cmd_build_student)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. envgym's own errors print as one line (exit 2); the teacher's errors also show the teacher's
    traceback; anything else is a bug in envgym and prints its traceback with a request to report it (exit 1)."""
    from envgym.error import Error, TeacherError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TeacherError as err:
        cause = err.__cause__
        if cause is not None:
            console.print("[bold]The teacher's traceback:[/bold]")
            console.print("".join(traceback.format_exception(cause)).rstrip(), markup=False, highlight=False)
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        return 2
    except Error as err:
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("Interrupted. Resume with `envgym run --resume DIR`.")
        return 130
    except Exception:
        console.print(traceback.format_exc().rstrip(), markup=False, highlight=False)
        console.print(
            "[red]envgym hit an internal error.[/red] This is a bug in envgym, not in your input: please report it "
            "with the command you ran and the traceback above.",
            soft_wrap=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
