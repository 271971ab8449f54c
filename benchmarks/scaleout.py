"""Scale-out on Ray: N default episodes one after another in this process vs ``envgym bench`` on a local Ray with
``--jobs`` CPUs; the Ray overhead per episode; the memory of a student's Ray actor.

    python benchmarks/scaleout.py --episodes 4 --jobs 2

The serial run uses the student's default threads (``min(2, cores)``), the bench one thread per episode, as each
would be used. All figures come from one run on one machine. Writes ``benchmarks/scaleout.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import gymnasium as gym

import envgym
from agents import UniformTeacher
from envgym.bench import ray_session, run_bench

HERE = Path(__file__).parent


def serial_seconds(episodes: int, work: Path, threads: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    each = []
    for seed in range(episodes):
        env = gym.make("envgym/SkillList-v0", student_config={"num_threads": threads})
        out = work / f"serial{threads}-{seed}"
        report = envgym.run_episode(env, UniformTeacher(), out, seed=seed, progress=False)
        env.close()
        each.append(report["wall_seconds"])
    return time.perf_counter() - start, each


def actor_memory_mb() -> float:
    """Resident memory of a default student's Ray actor, after one training step and one evaluation."""
    import psutil

    from students import HFStudentConfig, default_student_dir
    from students.ray_student import RayStudent

    with ray_session(1, None):
        student = RayStudent(default_student_dir(), HFStudentConfig(placement="ray", ray_num_cpus=1))
        import numpy as np

        from skills.arithmetic import ArithmeticTask

        examples = ArithmeticTask().generate("add_carry", 1024, np.random.default_rng(0))
        student.train(examples, seed=0)
        student.answer([ex.question for ex in examples[:400]])
        rss = psutil.Process(student.actor_pid()).memory_info().rss / 2**20
        student.close()
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "scaleout"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="envgym-scaleout-"))
    try:
        serial, serial_each = serial_seconds(args.episodes, work, threads=min(2, os.cpu_count() or 1))
        serial1, _ = serial_seconds(args.episodes, work, threads=1)
        start = time.perf_counter()
        result = run_bench("uniform", f"0-{args.episodes - 1}", work / "bench", jobs=args.jobs, progress=False)
        bench = time.perf_counter() - start
        bench_each = [
            json.loads((work / "bench" / "uniform" / f"seed{s}" / "report.json").read_text())["wall_seconds"]
            for s in range(args.episodes)
        ]
        memory = actor_memory_mb()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Ray's cost per episode: the bench's wall time beyond its episodes' own time spread over the CPUs.
    overhead = (bench - sum(bench_each) / args.jobs) / args.episodes
    figures = {
        "episodes": args.episodes,
        "jobs": args.jobs,
        "cores": os.cpu_count(),
        "serial_seconds": serial,
        "serial_episode_seconds": serial_each,
        "bench_seconds": bench,
        "bench_episode_seconds": bench_each,
        "speedup": serial / bench,
        "serial_one_thread_seconds": serial1,
        "speedup_vs_one_thread": serial1 / bench,
        "ray_overhead_seconds_per_episode": overhead,
        "student_actor_rss_mb": memory,
        "failed": len(result.failed),
    }
    Path(f"{args.out}.json").write_text(json.dumps(figures, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(
        "# Scale-out on Ray\n\n"
        f"`python benchmarks/scaleout.py --episodes {args.episodes} --jobs {args.jobs}` on {os.cpu_count()} cores.\n\n"
        "| measure | value |\n|---|---:|\n"
        f"| {args.episodes} default episodes, serial (student threads: min(2, cores)) | {serial:.1f} s |\n"
        f"| the same as `envgym bench --jobs {args.jobs}` (1 thread each, Ray start included) | {bench:.1f} s |\n"
        f"| speedup over serial with min(2, cores) threads | {serial / bench:.2f}x |\n"
        f"| {args.episodes} episodes serial at 1 thread | {serial1:.1f} s |\n"
        f"| speedup over serial at 1 thread (same per-episode work as the bench) | {serial1 / bench:.2f}x |\n"
        f"| mean episode, serial / in the bench | {sum(serial_each) / len(serial_each):.1f} s / "
        f"{sum(bench_each) / len(bench_each):.1f} s |\n"
        f"| Ray overhead per episode | {overhead:.1f} s |\n"
        f"| a default student's Ray actor, resident memory | {memory:.0f} MiB |\n"
    )
    print(Path(f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
