"""LbT on this machine: M1 (answer selection by exam scores against self-consistency at equal samples), M2 (the
teacher's accuracy after DPO on LbT-scored pairs against correctness-only pairs) and M3 (in-context example
refinement per round, scored by one student and by all).

Per seed, ``envgym lbt m1`` (``envgym.lbt.run_m1``) with Gemma-3-270M behind the local server as teacher and as
exam students (one per temperature): each teaching problem's ``samples`` solutions, LbT-scored on one exam, and the
answer picked by greedy, maj (self-consistency), max, sum and avg. A seed draws other teaching problems, exams and
samples. Differences are paired per teaching problem over all seeds (``scipy.stats.ttest_rel``) and reported as mean
[95% t-interval]; per-seed accuracies as mean [95% t-interval] over seeds.

M2 and M3 run with ``--m2-seeds`` / ``--m3-seeds`` (Gemma-3-270M is the teacher: M2 trains it with LoRA in this
process; M3 asks the server for rewrites).

    python benchmarks/lbt.py --seeds 0-4 --m2-seeds 0 --m3-seeds 0-2 --out benchmarks/lbt
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
from envgym.lbt import M3_MODES, run_m1, run_m2, run_m3
from envgym.lbt_config import LbTRunConfig
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


def markdown(summary: dict[str, Any], seconds: float) -> str:
    lines = [
        "",
        f"## M1: answer selection by exam scores, seeds {summary['seeds']}",
        "",
        f"{summary['problems']} teaching problems in all (8 per seed; {seconds / 60:.1f} min for the seeds run in "
        "this invocation, finished runs in --runs are read back). Scores are the task's verifier (ifeval-like: the "
        "share of a prompt's checks passed).",
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
    if not text.strip():
        return []
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def m2_summary(reports: dict[int, dict[str, Any]]) -> dict[str, Any]:
    before = [r["accuracy"]["before"] for r in reports.values()]
    gains = {
        arm: [r["accuracy"][f"after_{arm}"] - r["accuracy"]["before"] for r in reports.values()]
        for arm in ("lbt", "correctness")
    }
    difference = [a - b for a, b in zip(gains["lbt"], gains["correctness"], strict=True)]
    test = stats.ttest_rel(gains["lbt"], gains["correctness"]) if len(before) > 1 and any(difference) else None
    return {
        "seeds": sorted(reports),
        "before": _interval(before),
        "gain_lbt": _interval(gains["lbt"]),
        "gain_correctness": _interval(gains["correctness"]),
        "lbt_minus_correctness": _interval(difference),
        "p": None if test is None else float(test.pvalue),
        "pairs": {arm: _interval([float(r["pairs"][arm]) for r in reports.values()]) for arm in ("lbt", "correctness")},
        "held_out_problems": next(iter(reports.values()))["held_out_problems"],
    }


def m3_summary(reports: dict[int, dict[str, Any]]) -> dict[str, Any]:
    by_round = {
        mode: [
            _interval([r["val_accuracy_by_round"][mode][k] for r in reports.values()])
            for k in range(len(next(iter(reports.values()))["val_accuracy_by_round"][mode]))
        ]
        for mode in M3_MODES
    }
    return {
        "seeds": sorted(reports),
        "val_accuracy_by_round": by_round,
        "rewrites_kept": {mode: sum(r["rewrites_kept"][mode] for r in reports.values()) for mode in M3_MODES},
        "skill": next(iter(reports.values()))["skill"],
    }


def _ci(interval: list[float], signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{interval[0]:{f}} [{interval[1]:{f}}, {interval[2]:{f}}]"


def m2_markdown(summary: dict[str, Any]) -> str:
    p = summary["p"]
    return "\n".join(
        [
            "",
            f"## M2: DPO of the teacher (Gemma-3-270M, LoRA), seeds {summary['seeds']}",
            "",
            f"Teacher score on {summary['held_out_problems']} held-out test problems before: {_ci(summary['before'])}.",
            "",
            "| DPO pairs scored by | pairs | gain |",
            "|---|---:|---:|",
            f"| 0.5 correctness + 0.5 LbT | {summary['pairs']['lbt'][0]:.0f} | {_ci(summary['gain_lbt'], True)} |",
            f"| correctness only | {summary['pairs']['correctness'][0]:.0f} | "
            f"{_ci(summary['gain_correctness'], True)} |",
            f"| LbT − correctness | | {_ci(summary['lbt_minus_correctness'], True)}"
            f"{'' if p is None else f' (p={p:.3f})'} |",
            "",
        ]
    )


def m3_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "",
        f"## M3: in-context example refinement (skill {summary['skill']}), seeds {summary['seeds']}",
        "",
        "| round | " + " | ".join(f"scored by {m.replace('_', ' ')}" for m in M3_MODES) + " |",
        "|---|" + "---:|" * len(M3_MODES),
    ]
    rounds = len(summary["val_accuracy_by_round"][M3_MODES[0]])
    for k in range(rounds):
        lines.append(f"| {k} | " + " | ".join(_ci(summary["val_accuracy_by_round"][m][k]) for m in M3_MODES) + " |")
    kept = ", ".join(f"{m.replace('_', ' ')} {n}" for m, n in summary["rewrites_kept"].items())
    lines += ["", f"Rounds in which some rewrite passed the referee (parsed, verified, not held out): {kept}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0-4", help="M1's seeds ('' for none)")
    parser.add_argument("--m2-seeds", default="", help="M2's seeds ('' for none)")
    parser.add_argument("--m3-seeds", default="", help="M3's seeds ('' for none)")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--exam-size", type=int, default=9)
    parser.add_argument("--exam-temperatures", default="0,0.7")
    parser.add_argument("--m2-problems", type=int, default=32)
    parser.add_argument("--m3-skill", default="upper")
    parser.add_argument("--task", default="ifeval-like")
    parser.add_argument("--out", default="benchmarks/lbt")
    parser.add_argument("--runs", default=None, help="keep the run directories here (resumable; default: temporary)")
    args = parser.parse_args()
    command = (
        f"python benchmarks/lbt.py --seeds {args.seeds!r} --m2-seeds {args.m2_seeds!r} --m3-seeds {args.m3_seeds!r} "
        f"--problems {args.problems} --samples {args.samples} --exam-size {args.exam_size} --exam-temperatures "
        f"{args.exam_temperatures} --m2-problems {args.m2_problems} --m3-skill {args.m3_skill} --task {args.task}"
    )
    common = {
        "task": args.task,
        "samples": args.samples,
        "exam_size": args.exam_size,
        "exam_temperatures": args.exam_temperatures,
    }
    start = time.perf_counter()
    per_seed: dict[int, list[dict[str, Any]]] = {}
    m2: dict[int, dict[str, Any]] = {}
    m3: dict[int, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    with serve_teacher(port=None, n_threads=2) as server, tempfile.TemporaryDirectory() as scratch:
        runs = args.runs or scratch
        endpoint = {"base_url": server.base_url}
        for seed in _seeds(args.seeds):
            run = Path(runs) / f"m1-seed{seed}"
            config = LbTRunConfig(**common, problems=args.problems, seed=seed)
            if not (run / "report.json").exists():  # a finished run is read back, a started one resumed
                run_m1(config, run, teacher_llm=endpoint, resume=(run / "config.json").exists())
            per_seed[seed] = _rows(run / "m1.jsonl")
            print(f"M1 seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        seconds["m1"] = time.perf_counter() - start
        for seed in _seeds(args.m2_seeds):
            config = LbTRunConfig(**common, problems=args.m2_problems, seed=seed)
            run = Path(runs) / f"m2-seed{seed}"
            m2[seed] = _finished(run) or run_m2(
                config, run, student_llm=endpoint, resume=(run / "config.json").exists()
            )
            print(f"M2 seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        seconds["m2"] = time.perf_counter() - start - seconds["m1"]
        for seed in _seeds(args.m3_seeds):
            config = LbTRunConfig(**common, skill=args.m3_skill, seed=seed)
            run = Path(runs) / f"m3-seed{seed}"
            m3[seed] = _finished(run) or run_m3(
                config, run, teacher_llm=endpoint, resume=(run / "config.json").exists()
            )
            print(f"M3 seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        seconds["m3"] = time.perf_counter() - start - seconds["m1"] - seconds["m2"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"command": command, "seconds": seconds}
    text = (
        f"# LbT on this machine: Gemma-3-270M teaching Gemma-3-270M ({args.task} task)\n\n`{command}`; exam "
        f"students: the server's Gemma at temperatures {args.exam_temperatures}.\n"
    )
    if per_seed:
        results["m1"] = {"summary": summarise(per_seed), "rows": per_seed}
        text += markdown(results["m1"]["summary"], seconds["m1"])
    if m2:
        results["m2"] = {"summary": m2_summary(m2), "reports": m2}
        text += m2_markdown(results["m2"]["summary"])
    if m3:
        results["m3"] = {"summary": m3_summary(m3), "reports": m3}
        text += m3_markdown(results["m3"]["summary"])
    (out / "results.json").write_text(dumps(results, indent=1))
    (out / "lbt.md").write_text(text)
    print(text)


def _finished(run: Path) -> dict[str, Any] | None:
    """A finished run's report (``--runs`` kept it), else None."""
    return json.loads((run / "report.json").read_text()) if (run / "report.json").exists() else None


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


if __name__ == "__main__":
    main()
