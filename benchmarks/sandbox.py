"""Sandboxed executions per second, serial and parallel, and the sandbox's cost over a bare ``python -c``.

    python benchmarks/sandbox.py [--programs 200] [--repeats 3]

Each execution runs one of the code task's programs (a reference solution, rewritten so that the judge's
same-syntax-tree shortcut cannot apply) against its six hidden tests. Three ways, on the same programs:

* bare: ``python -c "<program>; <the tests as asserts>"`` in a plain subprocess, one after another (the target's
  yardstick: the sandbox should cost at most 1.5x this per execution);
* sandbox, serial: :class:`skills.sandbox.Sandbox` with ``parallel=1`` (everything it does: a fresh temporary
  directory, the confined child, the limits, namespaces where available, the result read back and compared);
* sandbox, parallel: ``run_many`` with one worker per core (the target: at least 1.7x the serial throughput on 2
  cores).

Each figure is the median of ``--repeats`` passes over all the programs; the ratios compare figures from this one
run on this one machine. Writes ``benchmarks/sandbox/{sandbox.md,results.json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from skills.code import CodeTask
from skills.machine import cpu_model
from skills.sandbox import Sandbox, SandboxConfig

HERE = Path(__file__).parent / "sandbox"


def programs(n: int, seed: int) -> list[tuple[str, list]]:
    """``n`` (program, hidden tests) of the code task, every family in turn."""
    task = CodeTask()
    rng = np.random.default_rng(seed)
    names = [skill.name for skill in task.skills]
    jobs = []
    for index in range(n):
        example = task.generate(names[index % len(names)], 1, rng)[0]
        spec, _, _ = task.parse(example.question)
        # The same behaviour with another syntax tree, so that it runs (the judge would recognise the reference).
        program = example.answer.replace("return ", "return (lambda: ") + ")()"
        jobs.append((program, task.hidden_tests(spec)))
    return jobs


def bare_seconds(jobs: list[tuple[str, list]], flags: list[str]) -> float:
    start = time.perf_counter()
    for program, tests in jobs:
        asserts = "\n".join(f"assert {test.expr} == {test.expected!r}" for test in tests)
        result = subprocess.run([sys.executable, *flags, "-c", f"{program}\n{asserts}\n"], capture_output=True)
        if result.returncode != 0:
            raise SystemExit(f"bare run failed: {result.stderr.decode()[-500:]}")
    return time.perf_counter() - start


def sandbox_seconds(jobs: list[tuple[str, list]], parallel: int) -> float:
    box = Sandbox(SandboxConfig(parallel=parallel))
    start = time.perf_counter()
    results = box.run_many(jobs)
    seconds = time.perf_counter() - start
    failed = [r for r in results if r.outcome.value != "pass"]
    if failed:
        raise SystemExit(f"sandboxed run failed: {failed[0]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    jobs = programs(args.programs, args.seed)
    cores = os.cpu_count() or 1
    ways = {
        "bare python -c": lambda: bare_seconds(jobs, []),
        "bare python -I -S -c": lambda: bare_seconds(jobs, ["-I", "-S"]),
        "sandbox, serial": lambda: sandbox_seconds(jobs, 1),
        f"sandbox, parallel ({cores} workers)": lambda: sandbox_seconds(jobs, cores),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):  # interleaved, so that a slow spell of the machine hits every way alike
        for name, way in ways.items():
            seconds[name].append(way())
    median = {name: statistics.median(values) for name, values in seconds.items()}
    per_exec = {name: value / len(jobs) * 1000 for name, value in median.items()}
    parallel = f"sandbox, parallel ({cores} workers)"
    ratios = {
        "sandbox serial / bare python -c (per execution; target <= 1.5)": per_exec["sandbox, serial"]
        / per_exec["bare python -c"],
        "sandbox serial / bare python -I -S -c (per execution)": per_exec["sandbox, serial"]
        / per_exec["bare python -I -S -c"],
        f"parallel / serial throughput (target >= 1.7 on 2 cores; {cores} here)": median["sandbox, serial"]
        / median[parallel],
    }
    isolation = Sandbox().isolation()
    results = {
        "programs": len(jobs),
        "repeats": args.repeats,
        "seconds": seconds,
        "ms_per_execution": per_exec,
        "executions_per_second": {name: len(jobs) / value for name, value in median.items()},
        "ratios": ratios,
        "isolation": isolation,
        "machine": {"cpu": cpu_model(), "cores": cores, "python": sys.version.split()[0]},
        "command": f"python benchmarks/sandbox.py --programs {args.programs} --repeats {args.repeats}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Sandbox speed",
        "",
        f"`{results['command']}` on {cores} cores ({cpu_model()}), Python {results['machine']['python']}. "
        f"{len(jobs)} programs of the code task, each against its 6 hidden tests; median of {args.repeats} passes.",
        "",
        "| way | ms per execution | executions/s |",
        "|---|---:|---:|",
    ]
    for name in ways:
        lines.append(f"| {name} | {per_exec[name]:.1f} | {results['executions_per_second'][name]:.1f} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in ratios.items()]
    lines += ["", "Isolation in force on this machine:", ""]
    lines += [f"- {layer}: {what}" for layer, what in isolation.items()]
    (args.out / "sandbox.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
