"""How much of the default student's starting profile is the recipe, and how much is the build's randomness.

Builds the default student with several build seeds (each changes weight init, curriculum and data order: a far
larger perturbation than another CPU's float low bits) and measures every build's per-skill accuracy on the
environment's default test split (400 held-out questions per skill), next to the shipped weights. Writes
``default_student_seeds.{json,md}``: per skill, each build's accuracy and the largest deviation from the shipped
weights. The recipe's promise (issue 11): every skill within +-0.05.

    python benchmarks/default_student_seeds.py --seeds 0 1 2 3 --threads 1 --jobs 2

``--config '{"steps": 2000, ...}'`` tries a candidate recipe (DefaultStudentConfig fields over the shipped ones);
its deviations are then measured from the first seed's build.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import torch

from skills.machine import machine_record
from students.default_student import (
    PROFILE_TOLERANCE,
    SHIPPED_DIR,
    DefaultStudentConfig,
    build_default_student,
    shipped_build,
    skill_profile,
)

TOLERANCE = PROFILE_TOLERANCE  # the promise `envgym build-student --check` holds rebuilds to


def build_and_profile(config: DefaultStudentConfig, threads: int) -> tuple[dict[str, float], float]:
    """One build (in a worker process, ``threads`` torch threads) and its per-skill test profile."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        build_default_student(config, tmp, progress=False)
        seconds = round(time.perf_counter() - start, 1)
        return skill_profile(tmp, threads=threads), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="Builds at once (each in its own process).")
    parser.add_argument("--config", default=None, help="JSON of DefaultStudentConfig fields: a candidate recipe.")
    parser.add_argument("--out", default=str(Path(__file__).with_name("default_student_seeds")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shipped = shipped_build()
    base = DefaultStudentConfig.from_dict(shipped["config"]) if shipped else DefaultStudentConfig()
    rows = {}
    if args.config:
        base = DefaultStudentConfig.from_dict({**asdict(base), **json.loads(args.config)})
    else:
        rows["shipped"] = skill_profile(SHIPPED_DIR, threads=args.threads)
    seconds = {}
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {seed: pool.submit(build_and_profile, replace(base, seed=seed), args.threads) for seed in args.seeds}
        for seed, future in futures.items():
            rows[f"seed {seed}"], seconds[seed] = future.result()
            print(f"seed {seed}: {rows[f'seed {seed}']} ({seconds[seed]} s)", flush=True)
    reference_name = next(iter(rows))
    reference = rows[reference_name]
    skills = list(reference)
    deviation = {s: max(abs(row[s] - reference[s]) for row in rows.values()) for s in skills}
    result = {
        "command": "python benchmarks/default_student_seeds.py "
        + " ".join(["--seeds", *map(str, args.seeds), "--threads", str(args.threads), "--jobs", str(args.jobs)])
        + (f" --config '{args.config}'" if args.config else ""),
        "config": asdict(base),
        "reference": reference_name,
        "machine": machine_record(args.threads),
        "profiles": rows,
        "build_seconds": seconds,
        "max_deviation": deviation,
        "tolerance": TOLERANCE,
        "within_tolerance": all(d <= TOLERANCE for d in deviation.values()),
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Default student: starting profile over build seeds",
        "",
        f"`{result['command']}` on {result['machine']['cpu']} ({result['machine']['isa']}, "
        f"{args.threads} thread(s), torch {result['machine']['torch']}). Test accuracy per skill (400 questions).",
        "",
        "| build | " + " | ".join(skills) + " |",
        "|---|" + "---|" * len(skills),
    ]
    lines += [f"| {name} | " + " | ".join(f"{row[s]:.3f}" for s in skills) + " |" for name, row in rows.items()]
    lines += ["| **max deviation** | " + " | ".join(f"**{deviation[s]:.3f}**" for s in skills) + " |", ""]
    if result["within_tolerance"]:
        lines.append(f"Every build's every skill within +-{TOLERANCE} of the {reference_name} build.")
    else:
        off = ", ".join(f"{s} ({deviation[s]:.3f})" for s in skills if deviation[s] > TOLERANCE)
        lines.append(f"NOT every skill within +-{TOLERANCE} of the {reference_name} build: {off}.")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
