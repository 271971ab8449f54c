"""DataEnvGym's per-environment table, for envgym: each environment's best shipped teacher against its random
baseline, at equal budget on the default task, same seeds (paired).

    python benchmarks/env_structures.py --seeds 0-4 --jobs 2 --out benchmarks/results/env_structures

Each (env, teacher, seed) episode is an `envgym bench` episode (resumable: re-run the command to finish); writes
`benchmarks/env_structures.md` and `.json` (mean ± 95% t-interval of the final test gain, and the paired
difference best − random with its 95% CI and paired t-test p-value, scipy.stats).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("ENVGYM_NUM_THREADS", "1")

from envgym.bench import run_bench
from envgym.files import dumps, write_text_atomic
from envgym.leaderboard import format_ci, mean_ci, paired_difference, read_bench

# env id -> (best shipped teacher, its random baseline)
PAIRS = {
    "envgym/OpenEnded-v0": ("error-augment", "random-examples"),
    "envgym/SkillList-v0": ("targeted", "random"),
    # The best of the five tree policies on seeds 0-4 (envgym bench ... --env envgym/SkillTree-v0, README).
    "envgym/SkillTree-v0": ("tree-threshold", "tree-random"),
}
HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/env_structures")
    args = parser.parse_args()
    rows = []
    for env_id, (best, baseline) in PAIRS.items():
        out = Path(args.out) / env_id.split("/")[1]
        run_bench([best, baseline], args.seeds, out, env_id=env_id, jobs=args.jobs)
        gains: dict[str, dict[int, float]] = {}
        for episode in read_bench(out)["episodes"]:
            gains.setdefault(episode.teacher, {})[episode.seed] = episode.gain
        rows.append(
            {
                "env": env_id,
                "best": best,
                "baseline": baseline,
                "best_gain": mean_ci(gains.get(best, {}).values()),
                "baseline_gain": mean_ci(gains.get(baseline, {}).values()),
                "difference": paired_difference(gains.get(best, {}), gains.get(baseline, {})),
            }
        )
    lines = [
        "# Environment structures: best shipped teacher vs its random baseline",
        "",
        f"Default task and student, equal budget (5 steps × 1,024 examples), seeds {args.seeds}; command: "
        f"`python benchmarks/env_structures.py --seeds {args.seeds} --jobs {args.jobs}`.",
        "",
        "| env | teacher | test gain [95% CI] | random baseline | its gain [95% CI] | paired Δ [95% CI] | p |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        diff = row["difference"]
        p = "—" if diff["p_value"] is None else f"{diff['p_value']:.2g}"
        lines.append(
            f"| `{row['env']}` | `{row['best']}` | {format_ci(row['best_gain'], signed=True)} | `{row['baseline']}` | "
            f"{format_ci(row['baseline_gain'], signed=True)} | {format_ci(diff, signed=True)} (n={diff['n']}) | {p} |"
        )
    write_text_atomic(HERE / "env_structures.md", "\n".join(lines) + "\n")
    write_text_atomic(HERE / "env_structures.json", dumps(rows, indent=2) + "\n")
    print("\n".join(lines))
    print(json.dumps({"written": [str(HERE / "env_structures.md"), str(HERE / "env_structures.json")]}))


if __name__ == "__main__":
    main()
