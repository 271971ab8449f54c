"""The ``envgym`` command line: run, bench, leaderboard, list, report, build-student, serve-teacher,
discover-skills."""

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

    import envgym
    from skills.errors import unknown_name_error

    if env_id in envgym.LBT_ENV_IDS:
        from envgym.error import InvalidConfig

        raise InvalidConfig(
            f"{env_id} scores a teacher instead of training a student, so envgym run and bench do not take it; run "
            "learning by teaching with `envgym lbt m1`, or use it from Python with gymnasium.make."
        )
    ours = sorted(envgym.ENV_IDS)
    if env_id not in gym.registry:
        raise unknown_name_error("environment", env_id, ours)
    return gym.make(env_id, **kwargs)


# Flags of `envgym run` that define an episode, and where a saved run keeps each one (config.json).
_EPISODE_FLAGS = {"env": "env_id", "teacher": "teacher", "seed": "seed"}
_RUN_DEFAULTS = {"env": "envgym/SkillList-v0", "seed": 0}
# Each environment's best shipped teacher, the default of `envgym run --env ID`.
_DEFAULT_TEACHERS = {
    "envgym/SkillList-v0": "targeted",
    "envgym/OpenEnded-v0": "error-augment",
    "envgym/SkillTree-v0": "tree-threshold",
}
# Env config fields that are not flags of their own: the episode seed is --seed, the student's config is the
# --student-* flags.
_ENV_SKIP = ("student_config", "seed")
_STUDENT_PREFIX = "student-"


def _config_classes() -> tuple[list[tuple[type, tuple[str, ...]]], type]:
    """``([(env config class, fields to skip)], HFStudentConfig)``: one flag for each field of any env's config
    (an env refuses, with a did-you-mean, a field it does not have). The base fields come with the first class."""
    import dataclasses

    from envgym.open_ended_config import OpenEndedConfig
    from envgym.skill_tree_config import SkillTreeConfig
    from students.hf_student_config import HFStudentConfig

    classes, seen = [], set(_ENV_SKIP)
    for cls in (OpenEndedConfig, SkillTreeConfig):
        classes.append((cls, tuple(seen)))
        seen |= {item.name for item in dataclasses.fields(cls)}
    return classes, HFStudentConfig


def _given_env_kwargs(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(env fields, student-config fields) given as flags."""
    from envgym.config_flags import given_fields

    env_classes, student_class = _config_classes()
    env_given: dict[str, Any] = {}
    for env_class, skip in env_classes:
        env_given.update(given_fields(args, env_class, skip=skip))
    return env_given, given_fields(args, student_class, prefix=_STUDENT_PREFIX)


def _env_kwargs(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (a loaded config's env_kwargs) overridden by the flags given."""
    env_given, student_given = _given_env_kwargs(args)
    kwargs = {**(base or {}), **env_given}
    if student_given:
        kwargs["student_config"] = {**(kwargs.get("student_config") or {}), **student_given}
    return kwargs


_TEACHER_LLM_PREFIX = "teacher-"
_LLM_PREFIX = "llm-"  # discover-skills: the LLM is not a teacher there
# envgym lbt m2 trains its teacher in this process: where it runs and how it generates are not settings there.
_LBT_SKIPPED_MODEL_FIELDS = (
    "generator",
    "generator_llm",
    "generator_sync",
    "placement",
    "ray_num_gpus",
    "ray_num_cpus",
)
_WARMUP_PREFIX = "warmup-"  # envgym spar: the actor's SFT warm-up


def _teacher_kwargs(args: argparse.Namespace, spec: str, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"llm": {...}}`` for a teacher that talks to an LLM: the saved endpoint (a resumed run's) overridden by
    the ``--teacher-*`` flags given (on resume too: a restarted server may listen elsewhere; the run's replies
    are cached, so completed steps are not asked again). Refuses those flags for a teacher without an LLM."""
    from agents.registry import LLM_TEACHERS, OPTIONAL_LLM_TEACHERS, takes_llm
    from envgym.config_flags import given_fields
    from envgym.error import InvalidConfig
    from skills.llm import LLMClientConfig

    given = given_fields(args, LLMClientConfig, prefix=_TEACHER_LLM_PREFIX)
    if not takes_llm(spec):
        if given:
            flags = ", ".join(f"--{_TEACHER_LLM_PREFIX}{name.replace('_', '-')}" for name in given)
            raise InvalidConfig(
                f"{flags} configure an LLM teacher ({', '.join(LLM_TEACHERS)}, or a module:Class taking llm=); "
                f"teacher {spec!r} has no LLM. Drop the flags or choose --teacher llm."
            )
        return {}
    if spec in OPTIONAL_LLM_TEACHERS and not given and not saved:
        return {}
    return {"llm": {**(saved or {}), **given}}


def _load_config_file(path: str) -> dict[str, Any]:
    from envgym.error import InvalidConfig
    from envgym.files import read_json

    config = read_json(Path(path), "Config file")
    if not isinstance(config, dict) or not isinstance(config.get("env_kwargs", {}), dict):
        raise InvalidConfig(
            f"Expects --config to name a run's config.json (an object with env_kwargs, and optionally env_id, "
            f"teacher and seed); actual {str(path)!r} holds {type(config).__name__}."
        )
    if config.get("objects"):
        raise InvalidConfig(
            f"Expects a config that a command line can rebuild; {str(path)!r} was made with Python objects for "
            f"{sorted(config['objects'])}."
        )
    return config


def _resume_conflicts(args: argparse.Namespace, config: dict[str, Any]) -> list[str]:
    """Each flag given with --resume whose value differs from the saved run's, described for the user."""
    conflicts = []
    for flag, key in _EPISODE_FLAGS.items():
        given = getattr(args, flag)
        if given is not None and given != config.get(key):
            conflicts.append(f"--{flag} {given} (the run has {config.get(key)!r})")
    saved = config.get("env_kwargs", {})
    env_given, student_given = _given_env_kwargs(args)
    saved_student = saved.get("student_config") or {}
    for prefix, given_values, saved_values in (("", env_given, saved), (_STUDENT_PREFIX, student_given, saved_student)):
        for name, given in given_values.items():
            if given != saved_values.get(name):
                have = repr(saved_values[name]) if name in saved_values else "the default"
                conflicts.append(f"--{prefix}{name.replace('_', '-')} {given} (the run has {have})")
    if args.config is not None:
        conflicts.append(f"--config {args.config} (a resumed run keeps its own config.json)")
    if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        conflicts.append(f"--out {args.out} (resuming writes to {args.resume})")
    return conflicts


def _cmd_run(args: argparse.Namespace) -> int:
    from agents.registry import check_teacher_fits, make_teacher
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
        if config.get("objects"):
            raise InvalidConfig(
                f"The run in {str(out)!r} was made with Python objects for {sorted(config['objects'])}, which a run "
                "directory cannot hold; resume it from Python: envgym.run_episode(env, teacher, out, resume=True) "
                "with an env built the same way."
            )
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
        loaded = _load_config_file(args.config) if args.config else {}
        env_id = args.env or loaded.get("env_id") or _RUN_DEFAULTS["env"]
        teacher_spec = args.teacher or loaded.get("teacher") or _DEFAULT_TEACHERS.get(env_id, "targeted")
        seed = args.seed if args.seed is not None else loaded.get("seed", _RUN_DEFAULTS["seed"])
        env_kwargs = _env_kwargs(args, loaded.get("env_kwargs"))
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
        check_teacher_fits(teacher_spec, env_id)
        saved_llm = config.get("teacher_llm") if resume else loaded.get("teacher_llm")
        teacher_kwargs = _teacher_kwargs(args, teacher_spec, saved_llm)
        if teacher_spec == "stat-syn" and teacher_kwargs and not resume and "data_engine" not in env_kwargs:
            # STAT-Syn's LLM writes the data through the environment's data engine: the teacher's endpoint.
            env_kwargs = {**env_kwargs, "data_engine": "llm", "data_engine_llm": teacher_kwargs["llm"]}
        teacher = make_teacher(teacher_spec, seed=seed, **teacher_kwargs)
        log = _log_names(args.log)
        with _ray_for_student(env_kwargs):
            with console.status("Loading the environment and student..."):
                env = _make_env(env_id, env_kwargs)
            try:
                report = run_episode(env, teacher, out, seed=seed, teacher_name=teacher_spec, resume=resume, log=log)
            finally:
                env.close()
    except BaseException:
        if created is not None:
            remove_unfinished_run(out, created)
        raise
    finally:
        lock.release()
    print_report(report, console)
    written = ("report.json", "summary.md", "accuracy.png", "skill_tree.png", "steps.jsonl")
    console.print(f"Results in {out}/ ({', '.join(name for name in written if (Path(out) / name).exists())})")
    return 0


def _cmd_spar(args: argparse.Namespace) -> int:
    from agents.tree_search import TreeSearchConfig
    from envgym.config_flags import given_fields
    from envgym.report import print_report
    from envgym.spar import run_spar
    from envgym.spar_config import SparConfig
    from skills.llm import LLMClientConfig
    from students.hf_student_config import HFStudentConfig
    from students.instruction_student import InstructionStudentConfig

    config = SparConfig.from_dict(given_fields(args, SparConfig))
    search = TreeSearchConfig.from_dict(given_fields(args, TreeSearchConfig))
    warmup = InstructionStudentConfig.from_dict(given_fields(args, InstructionStudentConfig, prefix=_WARMUP_PREFIX))
    student = given_fields(args, HFStudentConfig, prefix=_STUDENT_PREFIX)
    llm = given_fields(args, LLMClientConfig, prefix=_TEACHER_LLM_PREFIX)
    if config.judge == "llm" and not llm.get("base_url"):
        from envgym.error import InvalidConfig

        raise InvalidConfig(
            "Expects --teacher-base-url (and --teacher-model) for --judge llm: the LLM judge and refiner's endpoint "
            "(any OpenAI-compatible server, e.g. envgym serve-teacher or vllm serve)."
        )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{stamp}-spar-{config.pairs}-seed{config.seed}"
    with console.status("Warming up the actor (first use: a few minutes) and loading the environment..."):
        from students.instruction_student import instruction_student_dir

        instruction_student_dir(warmup)
    report = run_spar(
        config, out, search=search, warmup=warmup, student_config=student, llm=llm or None, resume=args.resume
    )
    print_report(report, console)
    rates = report["constraint_satisfaction"]
    console.print(
        "Held-out constraint satisfaction, before -> after: instruction level "
        f"{rates['instruction_level']['before']:.3f} -> {rates['instruction_level']['after']:.3f}, prompt level "
        f"{rates['prompt_level']['before']:.3f} -> {rates['prompt_level']['after']:.3f} ({rates['test_prompts']} "
        "prompts)"
    )
    console.print(f"Results in {out}/ (report.json, pairs.jsonl, trees.jsonl, refiner_data.jsonl, steps.jsonl)")
    return 0


def _cmd_lbt(args: argparse.Namespace) -> int:
    from envgym.config_flags import given_fields
    from envgym.lbt import run_m1, run_m2, run_m3
    from envgym.lbt_config import LbTRunConfig
    from skills.llm import LLMClientConfig
    from students.hf_student_config import HFStudentConfig

    config = LbTRunConfig.from_dict(given_fields(args, LbTRunConfig))
    teacher = given_fields(args, LLMClientConfig, prefix=_TEACHER_LLM_PREFIX, skip=("temperature",))
    teacher_model = given_fields(args, HFStudentConfig, prefix=_TEACHER_LLM_PREFIX, skip=_LBT_SKIPPED_MODEL_FIELDS)
    student = given_fields(args, LLMClientConfig, prefix=_STUDENT_PREFIX, skip=("temperature",))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{stamp}-lbt-{args.method}-seed{config.seed}"
    endpoint = student if args.method == "m2" else teacher
    if not endpoint.get("base_url"):
        console.print("No endpoint given: the local Gemma-3-270M server is started for the run.")
    if args.method == "m3":
        report = run_m3(config, out, teacher_llm=teacher, student_llm=student, resume=args.resume)
        for mode, values in report["val_accuracy_by_round"].items():
            rounds = " -> ".join(f"{value:.3f}" for value in values)
            console.print(f"M3 ({mode.replace('_', ' ')} scoring), validation accuracy by round: {rounds}")
        console.print(f"Results in {out}/ (report.json, m3.jsonl)")
        return 0
    if args.method == "m2":
        report = run_m2(config, out, student_llm=student, teacher_config=teacher_model, resume=args.resume)
        accuracy = report["accuracy"]
        console.print(
            f"M2: teacher accuracy on {report['held_out_problems']} held-out problems: before "
            f"{_rate(accuracy['before'])}, after DPO on LbT-scored pairs {_rate(accuracy['after_lbt'])} "
            f"({report['pairs']['lbt']} pairs), on correctness-only pairs {_rate(accuracy['after_correctness'])} "
            f"({report['pairs']['correctness']} pairs)"
        )
        console.print(f"Results in {out}/ (report.json, m2.jsonl, pairs_lbt.jsonl, pairs_correctness.jsonl)")
        return 0
    report = run_m1(config, out, teacher_llm=teacher, student_llm=student, resume=args.resume)
    accuracy = report["accuracy"]
    console.print(
        f"M1 on {report['problems']} teaching problems, accuracy: greedy {_rate(accuracy['greedy'])}, "
        + ", ".join(f"{rule} {_rate(accuracy[rule])}" for rule in ("maj", "max", "sum", "avg"))
        + f" (best sample {_rate(accuracy['oracle'])})"
    )
    scores = report["lbt_score"]
    console.print(
        f"Mean LbT score of right solutions {_rate(scores['right_solutions'])} ({scores['right_count']}), of wrong "
        f"ones {_rate(scores['wrong_solutions'])} ({scores['wrong_count']})"
    )
    console.print(f"Results in {out}/ (report.json, m1.jsonl, config.json)")
    return 0


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _log_names(text: str | None) -> list[str]:
    """``--log tensorboard,wandb`` as a list of tracker names."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


def _ray_for_student(env_kwargs: dict[str, Any]) -> Any:
    """Ray for a student placed on a Ray actor (``--student-placement ray``): the cluster at ``$RAY_ADDRESS``, else a
    private local instance for this run; nothing for a local student."""
    import contextlib
    import os

    student_config = env_kwargs.get("student_config") or {}
    if not isinstance(student_config, dict) or student_config.get("placement") != "ray":
        return contextlib.nullcontext()
    from envgym.bench import ray_session

    return ray_session(os.cpu_count() or 1, os.environ.get("RAY_ADDRESS"), env_vars={})


def _cmd_bench(args: argparse.Namespace) -> int:
    from agents.registry import check_teacher_fits, takes_llm
    from envgym.bench import DEFAULT_ENV, run_bench
    from envgym.leaderboard import FILES, print_leaderboard

    env_kwargs = _env_kwargs(args)
    teachers = [teacher.strip() for teacher in args.teachers.split(",")]
    for teacher in teachers:
        check_teacher_fits(teacher, args.env or DEFAULT_ENV)
    # The --teacher-* endpoint goes to the grid's LLM teachers; it is refused only if none of them has an LLM.
    with_llm = [teacher for teacher in teachers if takes_llm(teacher)]
    teacher_llm = _teacher_kwargs(args, with_llm[0] if with_llm else teachers[0]).get("llm")
    try:
        result = run_bench(
            args.teachers,
            args.seeds,
            args.out,
            env_id=args.env or DEFAULT_ENV,
            env_kwargs=env_kwargs,
            jobs=args.jobs,
            address=args.address,
            teacher_llm=teacher_llm,
            retries=args.retries,
            gpus_per_episode=args.gpus_per_episode,
            log=_log_names(args.log),
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
    console.print(
        "[bold]Learning by teaching[/bold] (the teacher is scored, nobody is trained; envgym lbt): "
        + ", ".join(envgym.LBT_ENV_IDS)
    )
    from agents.registry import TEACHER_ENVS

    console.print("[bold]Teachers[/bold] (module:Class also works):")
    for env_id in envgym.ENV_IDS:
        fitting = [name for name in teacher_names() if env_id in TEACHER_ENVS[name]]
        console.print(f"  {env_id}: " + ", ".join(fitting))
    console.print(
        "[bold]Tasks[/bold]: "
        + ", ".join(task_names())
        + ", rg:<reasoning-gym dataset>[,...], math:<GSM8K/MATH JSONL file>, or code:<MBPP/LiveCodeBench JSONL "
        "file>"
    )
    from rich.markup import escape

    for name in task_names():
        for skill in make_task(name).skills:  # descriptions are text, not markup ("like [x]")
            console.print(f"  {name}/{skill.name} ({skill.category}): {escape(skill.description)}")
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
    import json
    import tempfile

    from rich.table import Table

    from envgym.error import InvalidConfig
    from students.default_student import (
        BUILD_FILE,
        PROFILE_TOLERANCE,
        SHIPPED_DIR,
        DefaultStudentConfig,
        build_default_student,
        shipped_build,
        skill_profile,
    )

    config = DefaultStudentConfig(seed=args.seed)
    if args.check:
        shipped = shipped_build()
        if shipped is None:
            raise InvalidConfig(f"Expects shipped weights in {SHIPPED_DIR}; none found. Build them with --ship.")
        expected = shipped.get("test_profile") or skill_profile(SHIPPED_DIR)
        with tempfile.TemporaryDirectory() as tmp:
            build_default_student(DefaultStudentConfig.from_dict(shipped["config"]), tmp)
            rebuilt = hashlib.sha256((Path(tmp) / "model.safetensors").read_bytes()).hexdigest()
            profile = json.loads((Path(tmp) / BUILD_FILE).read_text())["test_profile"]
        # Behaviour is the promise across machines; bit-identity only on the machine that built the weights.
        table = Table("skill", "shipped", "rebuilt", "difference", title="test accuracy per skill (400 questions)")
        off = []
        for skill, value in expected.items():
            difference = profile[skill] - value
            if abs(difference) > PROFILE_TOLERANCE:
                off.append(skill)
            table.add_row(skill, f"{value:.3f}", f"{profile[skill]:.3f}", f"{difference:+.3f}")
        console.print(table)
        identical = rebuilt == shipped["weights_sha256"]
        console.print(
            f"bit-identical weights: {'yes' if identical else 'no'} (rebuilt {rebuilt[:12]}, shipped "
            f"{shipped['weights_sha256'][:12]}; expected only on the machine that built them)"
        )
        if off:
            console.print(f"[red]differs[/red]: {', '.join(off)} beyond +-{PROFILE_TOLERANCE} of the shipped profile")
            return 1
        console.print(f"reproduced: every skill within +-{PROFILE_TOLERANCE} of the shipped profile")
        return 0
    out = SHIPPED_DIR if args.ship else Path(args.out or f"students-built/default-seed{args.seed}")
    build_default_student(config, out)
    console.print(f"Built the default student into {out}")
    return 0


def _cmd_serve_teacher(args: argparse.Namespace) -> int:
    from envgym.error import LLMUnavailable
    from envgym.serve import serve_teacher

    with console.status("Starting the teacher server (llama.cpp, Gemma-3-270M)..."):
        server = serve_teacher(port=args.port, host=args.host, model_path=args.model_path, n_threads=args.threads)
    try:
        console.print(
            f"Teacher server ready: [bold]{server.base_url}[/bold] (model {server.model}; log {server.log_path})"
        )
        console.print(
            f"  envgym run --teacher llm --teacher-base-url {server.base_url} --teacher-model {server.model}",
            soft_wrap=True,
            highlight=False,
        )
        console.print("Ctrl-C stops it.")
        code = server.process.wait()
        raise LLMUnavailable(f"The teacher server exited with code {code}. Its log ends:\n{server.log_tail()}")
    except KeyboardInterrupt:
        console.print("Stopping the teacher server.")
        return 0
    finally:
        server.stop()


def _cmd_discover_skills(args: argparse.Namespace) -> int:
    from envgym.config_flags import given_fields
    from skills.llm import LLMClientConfig
    from skills.llm.discovery import QUESTION_SKILLS_FILE, TAXONOMY_FILE, run_discovery

    llm = given_fields(args, LLMClientConfig, prefix=_LLM_PREFIX)
    found = run_discovery(
        args.task, args.out, llm, n_questions=args.n_questions, seed=args.seed, max_categories=args.max_categories
    )
    graph = found.taxonomy
    console.print(f"[bold]{len(found.question_skills)} questions[/bold] in {graph.out_degree('root')} categories:")
    for category in sorted(graph.successors("root")):
        skills = sorted(node.split("/", 1)[1] for node in graph.successors(category))
        console.print(f"  {category} ({graph.nodes[category]['count']}): {', '.join(skills)}", highlight=False)
    out = Path(args.out)
    console.print(
        f"Taxonomy and question map in {out / TAXONOMY_FILE} and {out / QUESTION_SKILLS_FILE}", soft_wrap=True
    )
    return 0


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a whole number >= 0; actual {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expects a whole number >= 0; actual {value}")
    return value


def _add_env_flags(parser: argparse.ArgumentParser) -> None:
    from envgym.config_flags import add_config_flags

    env_classes, student_class = _config_classes()
    for env_class, skip in env_classes:
        add_config_flags(
            parser,
            env_class,
            skip=skip,
            title=f"environment ({env_class.__name__}; --student: default, gemma-3-270m or a Hugging Face model "
            "directory)",
        )
    add_config_flags(parser, student_class, prefix=_STUDENT_PREFIX, title="student training (HFStudentConfig)")
    from skills.llm import LLMClientConfig

    add_config_flags(
        parser,
        LLMClientConfig,
        prefix=_TEACHER_LLM_PREFIX,
        title="LLM teacher endpoint (LLMClientConfig; --teacher llm or llm2llm; any OpenAI-compatible server)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envgym", description="Teach student language models through data.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="Run a teaching episode (default: targeted teacher on SkillList-v0).")
    run.add_argument("--env", default=None, help="Environment id (default: envgym/SkillList-v0).")
    run.add_argument("--teacher", default=None, help="Built-in teacher name or module:Class (default: targeted).")
    run.add_argument(
        "--config", default=None, metavar="FILE", help="Start from a saved config (a run's config.json); flags win."
    )
    run.add_argument("--seed", type=_seed, default=None, help="Episode seed, a whole number >= 0 (default: 0).")
    run.add_argument("--out", default=None, help="Output directory (default: a fresh one under runs/).")
    run.add_argument("--resume", default=None, metavar="DIR", help="Continue an interrupted run.")
    run.add_argument(
        "--log",
        default=None,
        metavar="NAME[,NAME]",
        help="Also log per-step scalars to: tensorboard (<run>/tensorboard), wandb (offline unless WANDB_MODE).",
    )
    _add_env_flags(run)
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
        help="An existing Ray cluster (e.g. HOST:6379; default $RAY_ADDRESS) instead of a local one; --out must be a "
        "path every node shares.",
    )
    bench.add_argument(
        "--retries", type=int, default=1, help="Runs of a failed episode again, from its checkpoint (default 1)."
    )
    bench.add_argument(
        "--gpus-per-episode",
        type=float,
        default=0.0,
        help="GPUs each episode's Ray task requests (a student on its own actor declares --student-ray-num-gpus).",
    )
    bench.add_argument(
        "--log", default=None, metavar="NAME[,NAME]", help="Trackers every episode writes: tensorboard, wandb."
    )
    bench.add_argument("--env", default=None, help="Environment id (default: envgym/SkillList-v0).")
    _add_env_flags(bench)
    bench.set_defaults(func=_cmd_bench)

    serve = sub.add_parser(
        "serve-teacher",
        help="Start a local OpenAI-compatible teacher server (llama.cpp serving Gemma-3-270M) on 127.0.0.1.",
        description="Needs pip install -e '.[teacher-server]'. Prints the base URL for --teacher-base-url; Ctrl-C "
        "stops it.",
    )
    serve.add_argument("--port", type=int, default=8000, help="Port (default: 8000, the LLM client's default URL).")
    serve.add_argument("--host", default="127.0.0.1", help="Interface (default: 127.0.0.1, this machine only).")
    serve.add_argument("--model-path", default=None, help="A Gemma GGUF to serve instead of Gemma-3-270M.")
    serve.add_argument("--threads", type=int, default=1, help="CPU threads of generation (default: 1).")
    serve.set_defaults(func=_cmd_serve_teacher)

    discover = sub.add_parser(
        "discover-skills",
        help="Find a task's skills with an LLM: label training questions, cluster the labels, map every question.",
        description="Resumable: run it again with the same --out to continue. The LLM endpoint is set by the --llm-* "
        "flags (default: the local server of envgym serve-teacher).",
    )
    discover.add_argument("--task", required=True, help="Task name, rg:<datasets> or math:<JSONL file>.")
    discover.add_argument("--out", required=True, help="Directory for the stage checkpoints and the result.")
    discover.add_argument("--n-questions", type=int, default=200, help="Training questions to label (default 200).")
    discover.add_argument("--max-categories", type=int, default=8, help="Most categories (default 8).")
    discover.add_argument("--seed", type=_seed, default=0, help="Seeds the question draw and the requests.")
    from envgym.config_flags import add_config_flags
    from skills.llm import LLMClientConfig

    add_config_flags(discover, LLMClientConfig, prefix=_LLM_PREFIX, title="LLM endpoint (LLMClientConfig)")
    discover.set_defaults(func=_cmd_discover_skills)

    spar = sub.add_parser(
        "spar",
        help="SPaR on the ifeval-like task: tree-search refinement of the student's failures into DPO pairs.",
        description="The actor is the default student after an SFT warm-up on the task (built once, cached). Each "
        "iteration samples responses to training prompts, refines the failing ones by tree search until the judge "
        "accepts them, and trains the student with DPO on (refined, original) pairs. Writes pairs.jsonl, "
        "trees.jsonl, refiner_data.jsonl and report.json (held-out constraint satisfaction before and after).",
    )
    spar.add_argument("--out", default=None, help="Run directory (default: runs/<time>-spar-<pairs>-seed<seed>).")
    spar.add_argument(
        "--resume", action="store_true", help="Continue the run in --out (the same settings) from its last step."
    )
    from agents.tree_search import TreeSearchConfig
    from envgym.config_flags import add_config_flags
    from envgym.spar_config import SparConfig
    from skills.llm import LLMClientConfig
    from students.hf_student_config import HFStudentConfig
    from students.instruction_student import InstructionStudentConfig

    add_config_flags(spar, SparConfig, title="SPaR (SparConfig)")
    add_config_flags(spar, TreeSearchConfig, title="tree search (TreeSearchConfig)")
    add_config_flags(spar, InstructionStudentConfig, prefix=_WARMUP_PREFIX, title="the actor's warm-up")
    add_config_flags(
        spar, HFStudentConfig, prefix=_STUDENT_PREFIX, title="student training (HFStudentConfig; DPO: dpo_*)"
    )
    add_config_flags(spar, LLMClientConfig, prefix=_TEACHER_LLM_PREFIX, title="LLM judge and refiner endpoint")
    spar.set_defaults(func=_cmd_spar)

    lbt = sub.add_parser(
        "lbt",
        help="Learning by teaching: the teacher scored by how well students learn from its rationales (M1-M3).",
        description="M1: per teaching problem the teacher samples solutions; each is the in-context example of the "
        "exam students on similar problems (envgym/LbT-v0's exam); the answer is selected by maj "
        "(self-consistency), max, sum or avg of those exam scores. M2: DPO of the teacher (Gemma-3-270M, LoRA) on "
        "pairs of its solutions scored by correctness and LbT, against correctness alone. M3: the teacher rewrites "
        "an in-context example set from the students' failures; a beam of sets is kept by their scores. Each writes "
        "<method>.jsonl and report.json. Without an endpoint the local Gemma-3-270M server is started and used.",
    )
    lbt.add_argument(
        "method",
        choices=["m1", "m2", "m3"],
        help="m1: answer selection; m2: DPO of the teacher; m3: refinement of in-context examples.",
    )
    lbt.add_argument("--out", default=None, help="Run directory (default: runs/<time>-lbt-<method>-seed<seed>).")
    lbt.add_argument("--resume", action="store_true", help="Continue the run in --out (the same settings).")
    from envgym.lbt_config import LbTRunConfig

    add_config_flags(lbt, LbTRunConfig, title="LbT methods (LbTRunConfig; M2: and M3: mark their own fields)")
    add_config_flags(
        lbt,
        LLMClientConfig,
        prefix=_TEACHER_LLM_PREFIX,
        skip=("temperature",),
        title="teacher endpoint (greedy, and --temperature for its samples)",
    )
    add_config_flags(
        lbt,
        HFStudentConfig,
        prefix=_TEACHER_LLM_PREFIX,
        skip=_LBT_SKIPPED_MODEL_FIELDS,
        title="M2's teacher model (Gemma-3-270M; HFStudentConfig over envgym.lbt.M2_TEACHER_DEFAULTS)",
    )
    add_config_flags(
        lbt,
        LLMClientConfig,
        prefix=_STUDENT_PREFIX,
        skip=("temperature",),
        title="exam students' endpoint (default: the teacher's; temperatures: --exam-temperatures)",
    )
    lbt.set_defaults(func=_cmd_lbt)

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
    build.add_argument(
        "--check",
        action="store_true",
        help="Rebuild and compare with the shipped weights: per-skill test accuracy within +-0.05, and bit-identity.",
    )
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
            # soft_wrap: a long path in the traceback stays one line (rich would break it at the console width).
            console.print(
                "".join(traceback.format_exception(cause)).rstrip(), markup=False, highlight=False, soft_wrap=True
            )
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
