"""The ``envgym`` command line: run, list, report, build-student."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
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


def _cmd_run(args: argparse.Namespace) -> int:
    from agents.registry import make_teacher
    from envgym.report import print_report
    from envgym.runner import run_episode

    if args.resume:
        out = Path(args.resume)
        config_path = out / "config.json"
        if not config_path.is_file():
            raise ValueError(f"Expects a run directory with config.json to resume; {str(out)!r} has none.")
        config = json.loads(config_path.read_text())
        env_id, env_kwargs, teacher_spec, seed = (
            config["env_id"],
            config["env_kwargs"],
            config["teacher"],
            config["seed"],
        )
        console.print(f"Resuming {out} ({env_id}, teacher {teacher_spec}, seed {seed})")
    else:
        env_id, teacher_spec, seed = args.env, args.teacher, args.seed
        env_kwargs = {
            key: value
            for key, value in {
                "steps": args.steps,
                "budget": args.budget,
                "task": args.task,
                "mode": args.mode,
            }.items()
            if value is not None
        }
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe_teacher = teacher_spec.replace(":", "-").replace("/", "-")
        out = Path(args.out) if args.out else Path("runs") / f"{stamp}-{safe_teacher}-seed{seed}"
    teacher = make_teacher(teacher_spec, seed=seed)
    with console.status("Loading the environment and student..."):
        env = _make_env(env_id, env_kwargs)
    report = run_episode(env, teacher, out, seed=seed, teacher_name=teacher_spec, resume=bool(args.resume))
    print_report(report, console)
    console.print(f"Results in {out}/ (report.json, summary.md, accuracy.png, steps.jsonl)")
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
            raise ValueError(f"Expects shipped weights in {SHIPPED_DIR}; none found. Build them with --ship.")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envgym", description="Teach student language models through data.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="Run a teaching episode (default: targeted teacher on SkillList-v0).")
    run.add_argument("--env", default="envgym/SkillList-v0", help="Environment id.")
    run.add_argument("--teacher", default="targeted", help="Built-in teacher name or module:Class.")
    run.add_argument("--task", default=None, help="Task name, e.g. arithmetic or rg:chain_sum,gcd.")
    run.add_argument("--steps", type=int, default=None, help="Teaching steps.")
    run.add_argument("--budget", type=int, default=None, help="Training examples per step.")
    run.add_argument("--mode", choices=["continual", "retrain"], default=None, help="Training mode.")
    run.add_argument("--seed", type=int, default=0, help="Episode seed.")
    run.add_argument("--out", default=None, help="Output directory (default: a fresh one under runs/).")
    run.add_argument("--resume", default=None, metavar="DIR", help="Continue an interrupted run.")
    run.set_defaults(func=_cmd_run)

    lst = sub.add_parser("list", help="List environments, teachers, tasks and skills.")
    lst.set_defaults(func=_cmd_list)

    rep = sub.add_parser("report", help="Re-print a run's table and re-draw its plot.")
    rep.add_argument("dir", help="A run directory.")
    rep.set_defaults(func=_cmd_report)

    build = sub.add_parser("build-student", help="Build the default student from scratch.")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--out", default=None, help="Where to write it.")
    build.add_argument("--ship", action="store_true", help="Write into the package's shipped weights.")
    build.add_argument("--check", action="store_true", help="Rebuild and compare with the shipped weights.")
    build.set_defaults(func=_cmd_build_student)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("Interrupted. Resume with `envgym run --resume DIR`.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
