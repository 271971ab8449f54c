"""The STAT table: per-skill test gains of a finished ``envgym bench`` grid, against ``uniform`` on shared seeds.

The leaderboard ranks teachers by their mean gain over all skills; STAT's claim is about the skills its
missing-skill profile (MSP) flags. This reads every ``report.json`` of the grid and writes, per teacher, the mean
test gain [95% t-interval] on each skill, on the flagged skills together and on the others, and the paired
difference against ``uniform`` (``scipy.stats.ttest_rel``) on the seeds both finished. The flagged skills are the
ones with a positive share in the MSP at the start of the episode (the same for every seed: one base student, one
validation split), read from the first ``steps.jsonl`` row's ``teacher_decision`` of a STAT run.

    python benchmarks/stat_table.py benchmarks/stat            # writes benchmarks/stat/stat_table.{md,json}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats


def _gains(grid: Path) -> dict[str, dict[int, dict[str, float]]]:
    """teacher directory -> seed -> skill -> test gain (after - before)."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for report_path in sorted(grid.glob("*/seed*/report.json")):
        report = json.loads(report_path.read_text())
        per_skill = report["test_accuracy"]["per_skill"]
        gains = {skill: row["after"] - row["before"] for skill, row in per_skill.items()}
        out.setdefault(report_path.parent.parent.name, {})[int(report["seed"])] = gains
    return out


def _flagged(grid: Path) -> list[str]:
    """Skills with a positive start-of-episode MSP share (the first pairs a STAT teacher planned from)."""
    for steps in sorted(grid.glob("stat-sel/seed*/steps.jsonl")):
        first = json.loads(steps.read_text().splitlines()[0])
        return sorted(first["teacher_decision"]["pairs"])
    raise SystemExit(f"{grid} has no finished stat-sel run to read the starting profile from.")


def _interval(values: list[float]) -> tuple[float, float, float]:
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    if np.ptp(values) == 0:  # every seed the same (a skill no teacher moves): no spread to estimate
        return mean, mean, mean
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def table(grid: Path, baseline: str = "uniform") -> dict:
    gains = _gains(grid)
    flagged = _flagged(grid)
    skills = list(next(iter(next(iter(gains.values())).values())))
    groups = {"flagged": flagged, "others": [s for s in skills if s not in flagged]}
    rows = {}
    for teacher, by_seed in gains.items():
        row: dict = {"seeds": len(by_seed), "per_skill": {}, "groups": {}}
        for skill in skills:
            row["per_skill"][skill] = _interval([g[skill] for g in by_seed.values()])
        for name, members in groups.items():
            values = {seed: float(np.mean([g[s] for s in members])) for seed, g in by_seed.items()}
            row["groups"][name] = {"gain": _interval(list(values.values()))}
            base = gains.get(baseline, {})
            shared = sorted(set(values) & set(base))
            if teacher != baseline and len(shared) >= 2:
                mine = [values[s] for s in shared]
                theirs = [float(np.mean([base[s][m] for m in members])) for s in shared]
                diff = np.subtract(mine, theirs).tolist()
                row["groups"][name]["vs_baseline"] = {
                    "n": len(shared),
                    "delta": _interval(diff),
                    "p": float(stats.ttest_rel(mine, theirs).pvalue),
                }
        rows[teacher] = row
    return {"grid": str(grid), "baseline": baseline, "flagged": flagged, "skills": skills, "teachers": rows}


def _fmt(interval: tuple[float, float, float]) -> str:
    mean, low, high = interval
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def markdown(result: dict) -> str:
    skills, flagged = result["skills"], result["flagged"]
    teachers = sorted(result["teachers"], key=lambda t: -result["teachers"][t]["groups"]["flagged"]["gain"][0])
    lines = [
        f"# STAT table: {result['grid']}",
        "",
        f"Flagged skills (positive share in the starting missing-skill profile): {', '.join(flagged)}.",
        f"Paired differences against `{result['baseline']}` on shared seeds (95% t-interval, paired t-test).",
        "",
        "| teacher | seeds | gain on flagged skills | Δ vs uniform, flagged | p "
        "| gain on the others | Δ vs uniform, others | p |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for teacher in teachers:
        row = result["teachers"][teacher]
        cells = [teacher, str(row["seeds"])]
        for name in ("flagged", "others"):
            group = row["groups"][name]
            versus = group.get("vs_baseline")
            cells += [
                _fmt(group["gain"]),
                _fmt(versus["delta"]) if versus else "—",
                f"{versus['p']:.2g}" if versus else "—",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Mean test gain per skill:", "", "| teacher | " + " | ".join(skills) + " |"]
    lines.append("|---|" + "---:|" * len(skills))
    for teacher in teachers:
        per_skill = result["teachers"][teacher]["per_skill"]
        lines.append(f"| {teacher} | " + " | ".join(f"{per_skill[s][0]:+.3f}" for s in skills) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="An envgym bench output directory.")
    parser.add_argument("--baseline", default="uniform")
    args = parser.parse_args()
    result = table(args.grid, args.baseline)
    (args.grid / "stat_table.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.grid / "stat_table.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
