"""Teaching efficacy: mean test-accuracy gain of each teacher at equal example budget, over several seeds.

    python benchmarks/teaching_efficacy.py --seeds 5

Every teacher runs the same episodes (same env seeds, so the same data RNG and training order per seed); the
gain is the change in macro-averaged test accuracy over all skills. Writes
``benchmarks/teaching_efficacy.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from _stats import mean_ci

import envgym  # noqa: F401
from agents import make_teacher

HERE = Path(__file__).parent


def run(teacher_name: str, seed: int, env_kwargs: dict) -> dict:
    env = gym.make("envgym/SkillList-v0", **env_kwargs)
    base = env.unwrapped
    teacher = make_teacher(teacher_name, seed=seed)
    obs, info = env.reset(seed=seed)
    test_before, _ = base.evaluate("test")
    terminated = False
    start = time.perf_counter()
    while not terminated:
        obs, _, terminated, _, info = env.step(teacher.act(obs, info))
    test_after, _ = base.evaluate("test")
    return {
        "teacher": teacher_name,
        "seed": seed,
        "gain": float(np.mean(list(test_after.values())) - np.mean(list(test_before.values()))),
        "per_skill_gain": {s: test_after[s] - test_before[s] for s in base.skills},
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--teachers", default="targeted,error-proportional,uniform,random")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = automatic).")
    parser.add_argument("--jobs", type=int, default=1, help="Episodes run in parallel processes (1 thread each).")
    parser.add_argument("--out", default=str(HERE / "teaching_efficacy"))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the (teacher, seed) episodes already in OUT.json if its env kwargs match.",
    )
    args = parser.parse_args()
    env_kwargs: dict = {k: v for k, v in {"steps": args.steps, "budget": args.budget}.items() if v is not None}
    student_config = {"learning_rate": args.learning_rate, "num_threads": args.threads or None}
    student_config = {k: v for k, v in student_config.items() if v is not None}
    if student_config:
        env_kwargs["student_config"] = student_config
    if args.jobs > 1:
        # One torch thread per process: on a small machine, oversubscribed threads slow everything 4-20x.
        env_kwargs.setdefault("student_config", {})["num_threads"] = 1
    teachers = args.teachers.split(",")
    jobs = [(t, s) for s in range(args.seeds) for t in teachers]
    done: list[dict] = []
    previous = Path(args.out).with_suffix(".json")
    if args.reuse and previous.is_file():
        saved = json.loads(previous.read_text())
        if saved["env_kwargs"] == env_kwargs:  # episodes are deterministic: same kwargs, same numbers
            done = [r for r in saved["runs"] if (r["teacher"], r["seed"]) in jobs]
            jobs = [j for j in jobs if j not in {(r["teacher"], r["seed"]) for r in done}]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run, t, s, env_kwargs) for t, s in jobs]
            runs = done + [f.result() for f in tqdm(futures, desc="episodes")]
    else:
        runs = done + [run(t, s, env_kwargs) for t, s in tqdm(jobs, desc="episodes")]

    gains = {t: [r["gain"] for r in runs if r["teacher"] == t] for t in teachers}
    summary = {t: dict(zip(("mean", "low", "high"), mean_ci(g), strict=True)) for t, g in gains.items()}
    reference = "uniform" if "uniform" in gains else teachers[-1]
    paired = {
        t: dict(
            zip(
                ("mean", "low", "high"),
                mean_ci([a - b for a, b in zip(gains[t], gains[reference], strict=True)]),
                strict=True,
            )
        )
        for t in teachers
        if t != reference
    }
    skills = list(runs[0]["per_skill_gain"])
    per_skill = {
        t: {s: float(np.mean([r["per_skill_gain"][s] for r in runs if r["teacher"] == t])) for s in skills}
        for t in teachers
    }

    lines = [
        f"Mean test-accuracy gain over all skills, {args.seeds} seeds, env kwargs {env_kwargs or 'default'} "
        f"(95% t-intervals; paired difference against `{reference}` on the same seeds).",
        "",
        f"| teacher | mean gain [95% CI] | × {reference} | paired diff vs {reference} [95% CI] |",
        "|---|---|---:|---|",
    ]
    ref_mean = summary[reference]["mean"]
    for t in teachers:
        s = summary[t]
        ratio = f"{s['mean'] / ref_mean:.2f}×" if ref_mean > 0 else "n/a"
        diff = paired.get(t)
        diff_text = f"{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]" if diff else "—"
        lines.append(f"| {t} | {s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}] | {ratio} | {diff_text} |")
    lines += [
        "",
        "Mean per-skill test gain:",
        "",
        "| teacher | " + " | ".join(skills) + " |",
        "|---|" + "---:|" * len(skills),
    ]
    for t in teachers:
        lines.append(f"| {t} | " + " | ".join(f"{per_skill[t][s]:+.3f}" for s in skills) + " |")
    table = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.with_suffix(".md").write_text(table)
    out.with_suffix(".json").write_text(
        json.dumps({"env_kwargs": env_kwargs, "summary": summary, "paired": paired, "runs": runs}, indent=2) + "\n"
    )
    print(table)


if __name__ == "__main__":
    main()
