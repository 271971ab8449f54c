"""LbT M1 on this machine: answer selection by exam scores against self-consistency at equal samples.

Per seed, ``envgym lbt m1`` (``envgym.lbt.run_m1``) with Gemma-3-270M behind the local server as teacher and as
exam students (one per temperature): each teaching problem's ``samples`` solutions, LbT-scored on one exam, and the
answer picked by greedy, maj (self-consistency), max, sum and avg. A seed draws other teaching problems, exams and
samples. Differences are paired per teaching problem over all seeds (``scipy.stats.ttest_rel``) and reported as mean
[95% t-interval]; per-seed accuracies as mean [95% t-interval] over seeds.

    python benchmarks/lbt.py --seeds 0-4 --out benchmarks/lbt     # writes results.json and lbt.md there
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from agents.lbt import SELECTION_RULES
from envgym.files import dumps
from envgym.lbt import run_m1
from envgym.lbt_config import LbTM1Config
from envgym.serve import serve_teacher

ARMS = ("greedy", *SELECTION_RULES)


def _interval(values: list[float]) -> list[float]:
    mean = float(np.mean(values))
    if len(values) < 2 or np.allclose(values, mean):
        return [mean, mean, mean]
    half = float(stats.t.ppf(0.975, len(values) - 1) * stats.sem(values))
    return [mean, mean - half, mean + half]


def _scores(rows: list[dict[str, Any]], arm: str) -> list[float]:
    return [row["greedy"]["correct"] if arm == "greedy" else row["selected"][arm]["correct"] for row in rows]


def summarise(per_seed: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    rows = [row for seed_rows in per_seed.values() for row in seed_rows]
    summary: dict[str, Any] = {
        "seeds": sorted(per_seed),
        "problems": len(rows),
        "accuracy": {arm: _interval([float(np.mean(_scores(r, arm))) for r in per_seed.values()]) for arm in ARMS},
        "paired_over_problems": {},
    }
    for arm in ("max", "sum", "avg"):
        for base in ("maj", "greedy"):
            a, b = np.array(_scores(rows, arm)), np.array(_scores(rows, base))
            test = stats.ttest_rel(a, b) if not np.allclose(a, b) else None
            summary["paired_over_problems"][f"{arm}_minus_{base}"] = {
                "difference": _interval((a - b).tolist()),
                "p": None if test is None else float(test.pvalue),
            }
    samples = [s for row in rows for s in row["samples"]]
    right = [s["lbt_score"] for s in samples if s["correct"] == 1.0]
    wrong = [s["lbt_score"] for s in samples if s["correct"] < 1.0]
    summary["lbt_score"] = {
        "right_solutions": _interval(right) if right else None,
        "wrong_solutions": _interval(wrong) if wrong else None,
        "right_count": len(right),
        "wrong_count": len(wrong),
        "p_right_vs_wrong": float(stats.mannwhitneyu(right, wrong).pvalue) if right and wrong else None,
    }
    return summary


def markdown(summary: dict[str, Any], command: str, seconds: float) -> str:
    lines = [
        "# LbT M1: answer selection by exam scores (Gemma-3-270M teaching Gemma-3-270M, ifeval-like task)",
        "",
        f"`{command}` ({len(summary['seeds'])} seeds, {summary['problems']} teaching problems in all; "
        f"{seconds / 60:.1f} min on this machine). Scores are the task's verifier (ifeval-like: the share of a "
        "prompt's checks passed).",
        "",
        "| answer picked by | score, mean over seeds [95% CI] |",
        "|---|---:|",
    ]
    for arm, interval in summary["accuracy"].items():
        lines.append(f"| {arm} | {interval[0]:.3f} [{interval[1]:.3f}, {interval[2]:.3f}] |")
    lines += ["", "| paired over teaching problems | difference [95% CI] | p |", "|---|---:|---:|"]
    for key, value in summary["paired_over_problems"].items():
        d, p = value["difference"], value["p"]
        lines.append(
            f"| {key.replace('_', ' ')} | {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] | {'' if p is None else f'{p:.3f}'} |"
        )
    score = summary["lbt_score"]
    p_value = "n/a" if score["p_right_vs_wrong"] is None else f"{score['p_right_vs_wrong']:.3f}"

    def fmt(interval: list[float] | None) -> str:
        return "n/a" if interval is None else f"{interval[0]:.3f} [{interval[1]:.3f}, {interval[2]:.3f}]"

    lines += [
        "",
        f"Mean LbT score of fully right solutions {fmt(score['right_solutions'])} (n={score['right_count']}), of "
        f"the others {fmt(score['wrong_solutions'])} (n={score['wrong_count']}); Mann-Whitney p = "
        f"{p_value}.",
    ]
    return "\n".join(lines) + "\n"


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--exam-size", type=int, default=9)
    parser.add_argument("--exam-temperatures", default="0,0.7")
    parser.add_argument("--task", default="ifeval-like")
    parser.add_argument("--out", default="benchmarks/lbt")
    args = parser.parse_args()
    command = (
        f"python benchmarks/lbt.py --seeds {args.seeds} --problems {args.problems} --samples {args.samples} "
        f"--exam-size {args.exam_size} --exam-temperatures {args.exam_temperatures} --task {args.task}"
    )
    start = time.perf_counter()
    per_seed: dict[int, list[dict[str, Any]]] = {}
    with serve_teacher(port=None, n_threads=2) as server, tempfile.TemporaryDirectory() as runs:
        for seed in _seeds(args.seeds):
            config = LbTM1Config(
                task=args.task,
                problems=args.problems,
                samples=args.samples,
                exam_size=args.exam_size,
                exam_temperatures=args.exam_temperatures,
                seed=seed,
            )
            run = Path(runs) / f"seed{seed}"
            run_m1(config, run, teacher_llm={"base_url": server.base_url})
            per_seed[seed] = _rows(run / "m1.jsonl")
            print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    summary = summarise(per_seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(dumps({"command": command, "summary": summary, "rows": per_seed}, indent=1))
    (out / "lbt.md").write_text(markdown(summary, command, seconds))
    print((out / "lbt.md").read_text())


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


if __name__ == "__main__":
    main()
