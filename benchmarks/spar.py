"""SPaR on the ifeval-like task with the default student: tree pairs against independent-sample pairs, and tree
search at answer time against best-of-N.

Per seed, from the warmed-up actor (``students.instruction_student``, the one ``envgym spar`` uses):

1. one SPaR iteration as ``envgym spar`` runs it (every tree pair, up to the budget): held-out constraint
   satisfaction before and after;
2. tree pairs against independent-sample pairs (best against worst of the same samples) **at equal pair count**:
   both subsampled (seeded) to the smaller count, each trained from the same actor (an env snapshot);
3. at answer time, on the test prompts: greedy; best-of-N sampled responses by the judge (N judge calls); tree
   search from one sampled response with a budget of N judge calls (the root's included).

Gains are paired over seeds: mean [95% t-interval] and ``scipy.stats.ttest_rel`` for the differences.

    python benchmarks/spar.py --seeds 0-4 --out benchmarks/spar     # writes results.json and spar.md there
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from scipy import stats

import envgym  # noqa: F401 - registers the environments
from agents.spar import SparTeacher
from agents.tree_search import TreeSearchConfig, search
from envgym import PreferencePlan
from skills.judges import ProgrammaticJudge, ProgrammaticRefiner
from students.instruction_student import (
    INSTRUCTION_MAX_NEW_TOKENS,
    InstructionStudentConfig,
    instruction_student_dir,
)


def _evaluate(env: Any) -> dict[str, float]:
    """Held-out (test) constraint satisfaction: the share of checks passed, and of prompts passing all."""
    base = env.unwrapped
    test = base.splits.all_questions("test")
    answers = base.student.answer([example.question for example in test])
    return {
        "instruction_level": float(np.mean([base.task.score(ex, a) for ex, a in zip(test, answers, strict=True)])),
        "prompt_level": float(
            np.mean([base.task.all_passed(ex.question, a) for ex, a in zip(test, answers, strict=True)])
        ),
    }


def _subsample(pairs: tuple, n: int, seed: int) -> PreferencePlan:
    keep = sorted(np.random.default_rng(seed).choice(len(pairs), size=n, replace=False).tolist())
    return PreferencePlan(tuple(pairs[i] for i in keep))


def _answer_time(env: Any, n: int, seed: int) -> dict[str, float]:
    """Prompt-level rate of greedy, best-of-``n`` and tree search with ``n`` judge calls, on the test prompts."""
    base = env.unwrapped
    task, judge, refiner = base.task, ProgrammaticJudge(base.task), ProgrammaticRefiner(base.task)
    questions = [example.question for example in base.splits.all_questions("test")]
    greedy = base.student.answer(questions)
    samples = base.student.sample_answers(questions, n, temperature=1.0, seed=seed)
    best_of_n, tree = [], []
    config = TreeSearchConfig(budget=n)
    for i, (question, responses) in enumerate(zip(questions, samples, strict=True)):
        judged = [judge.judge(question, response) for response in responses]
        best = max(range(n), key=lambda k: (judged[k].value, judged[k].score or 0.0, -k))
        best_of_n.append(judged[best].value == 1.0)
        result = search(question, responses[0], judge, refiner, config, seed=seed + i)
        tree.append(result.status in ("solved", "root_passed"))
    return {
        "greedy": float(np.mean([task.all_passed(q, a) for q, a in zip(questions, greedy, strict=True)])),
        f"best_of_{n}": float(np.mean(best_of_n)),
        f"tree_search_{n}_judge_calls": float(np.mean(tree)),
    }


def run_seed(seed: int, args: argparse.Namespace, actor: Path) -> dict[str, Any]:
    start = time.perf_counter()
    env = gym.make(
        "envgym/InstructionFollowing-v0",
        student=str(actor),
        student_config={
            "max_new_tokens": INSTRUCTION_MAX_NEW_TOKENS,
            "num_threads": args.threads,
            **({"dpo_learning_rate": args.dpo_lr} if args.dpo_lr is not None else {}),
            "dpo_beta": args.dpo_beta,
            "dpo_sft_weight": args.dpo_sft_weight,
            "dpo_loss_type": args.dpo_loss_type,
        },
        steps=1,
        budget=args.pair_budget,
        n_val=args.n_eval,
        n_test=args.n_eval,
    )
    observation, info = env.reset(seed=seed)
    base = env.unwrapped
    before = _evaluate(env)
    plans = {}
    for pairs in ("tree", "independent"):
        teacher = SparTeacher(
            prompts=args.prompts, samples=args.samples, temperature=args.temperature, pairs=pairs, seed=seed
        )
        teacher.attach(env)
        plans[pairs] = teacher.act(observation, info).pairs
    equal = min(len(plans["tree"]), len(plans["independent"]))
    arms = {
        "spar_iteration": PreferencePlan(plans["tree"]),
        "tree_equal": _subsample(plans["tree"], equal, seed),
        "independent_equal": _subsample(plans["independent"], equal, seed),
    }
    snapshot = base.snapshot()
    after = {}
    for arm, plan in arms.items():
        base.restore(snapshot)
        _, _, _, _, step_info = env.step(plan)
        after[arm] = {**_evaluate(env), "pairs": step_info["examples_used"]}
    base.restore(snapshot)
    answer_time = _answer_time(env, args.answer_n, seed)
    env.close()
    return {
        "seed": seed,
        "before": before,
        "after": after,
        "pairs_built": {name: len(pairs) for name, pairs in plans.items()},
        "answer_time": answer_time,
        "seconds": time.perf_counter() - start,
    }


def _interval(values: list[float]) -> list[float]:
    mean = float(np.mean(values))
    if len(values) < 2:
        return [mean, mean, mean]
    half = float(stats.t.ppf(0.975, len(values) - 1) * stats.sem(values))
    return [mean, mean - half, mean + half]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"seeds": [row["seed"] for row in rows]}
    for level in ("instruction_level", "prompt_level"):
        gains = {arm: [row["after"][arm][level] - row["before"][level] for row in rows] for arm in rows[0]["after"]}
        summary[level] = {
            "before": _interval([row["before"][level] for row in rows]),
            **{f"gain_{arm}": _interval(values) for arm, values in gains.items()},
            "tree_minus_independent": _interval(
                [a - b for a, b in zip(gains["tree_equal"], gains["independent_equal"], strict=True)]
            ),
            "p_tree_vs_independent": float(stats.ttest_rel(gains["tree_equal"], gains["independent_equal"]).pvalue)
            if len(rows) > 1
            else None,
        }
    summary["answer_time"] = {
        key: _interval([row["answer_time"][key] for row in rows]) for key in rows[0]["answer_time"]
    }
    summary["pairs"] = {arm: _interval([row["after"][arm]["pairs"] for row in rows]) for arm in rows[0]["after"]}
    return summary


def _fmt(interval: list[float]) -> str:
    return f"{interval[0]:+.3f} [{interval[1]:+.3f}, {interval[2]:+.3f}]"


def markdown(summary: dict[str, Any], args: argparse.Namespace) -> str:
    n = len(summary["seeds"])
    lines = [
        "# SPaR on the ifeval-like task (default student after its warm-up)",
        "",
        f"`{shlex.join(['python', 'benchmarks/spar.py', *sys.argv[1:]])}` "
        f"(n={n} seeds, {args.n_eval} test prompts per constraint type, programmatic judge and refiner, one DPO "
        "iteration per arm from the same actor).",
        "",
        "| held-out rate | before | one SPaR iteration (all tree pairs) | tree pairs, equal count | independent "
        "pairs, equal count | tree − independent | p |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for level in ("instruction_level", "prompt_level"):
        row = summary[level]
        p = row["p_tree_vs_independent"]
        lines.append(
            f"| {level.replace('_', ' ')} | {row['before'][0]:.3f} | {_fmt(row['gain_spar_iteration'])} | "
            f"{_fmt(row['gain_tree_equal'])} | {_fmt(row['gain_independent_equal'])} | "
            f"{_fmt(row['tree_minus_independent'])} | {'' if p is None else f'{p:.3f}'} |"
        )
    pairs = summary["pairs"]
    lines += [
        "",
        f"Pairs trained: one iteration {pairs['spar_iteration'][0]:.0f}, equal-count arms "
        f"{pairs['tree_equal'][0]:.0f} each (mean over seeds).",
        "",
        "| at answer time (prompt level, test prompts) | rate [95% CI] |",
        "|---|---:|",
    ]
    for key, interval in summary["answer_time"].items():
        lines.append(f"| {key.replace('_', ' ')} | {interval[0]:.3f} [{interval[1]:.3f}, {interval[2]:.3f}] |")
    return "\n".join(lines) + "\n"


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(part) for part in text.split(",")]


def run_seeds(
    args: argparse.Namespace, run_seed: Callable[[int, argparse.Namespace, Path], dict[str, Any]]
) -> tuple[Path, list[dict[str, Any]]]:
    """``args.out`` and one row per seed of ``args.seeds`` from the actor ``args`` names: the rows in its
    ``seeds.jsonl`` (a killed benchmark's finished seeds) as they are, the others run now and appended as each
    finishes."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    actor = instruction_student_dir(InstructionStudentConfig(examples_per_skill=args.warmup_examples_per_skill))
    rows_path = out / "seeds.jsonl"
    lines = rows_path.read_text().splitlines() if rows_path.exists() else []
    done = {row["seed"]: row for row in map(json.loads, lines)}
    for seed in _seeds(args.seeds):
        if seed not in done:
            done[seed] = run_seed(seed, args, actor)
            with open(rows_path, "a") as f:
                f.write(json.dumps(done[seed]) + "\n")
            print(json.dumps(done[seed]), flush=True)
    return out, [done[seed] for seed in _seeds(args.seeds)]


def add_spar_arguments(parser: argparse.ArgumentParser, *, seeds: str, out: str) -> None:
    """The flags the SPaR benchmarks share: seeds, the SPaR teacher's prompts and samples, the env's pair budget and
    held-out size, threads, the actor's warm-up and the output directory."""
    parser.add_argument("--seeds", default=seeds)
    parser.add_argument("--prompts", type=int, default=280)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--pair-budget", type=int, default=1024)
    parser.add_argument("--n-eval", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--warmup-examples-per-skill",
        type=int,
        default=InstructionStudentConfig.examples_per_skill,
        help="the actor's warm-up (InstructionStudentConfig.examples_per_skill): fewer leaves it more to learn",
    )
    parser.add_argument("--out", default=out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_spar_arguments(parser, seeds="0-4", out="benchmarks/spar")
    parser.add_argument("--answer-n", type=int, default=4)
    parser.add_argument("--dpo-lr", type=float, default=None, help="default: HFStudentConfig.dpo_learning_rate")
    parser.add_argument("--dpo-beta", type=float, default=0.1)
    parser.add_argument("--dpo-sft-weight", type=float, default=0.0)
    parser.add_argument("--dpo-loss-type", default="sigmoid", help="HFStudentConfig.dpo_loss_type (TRL's loss)")
    parser.add_argument("--temperature", type=float, default=1.0, help="the actor's sampling temperature")
    args = parser.parse_args()
    out, rows = run_seeds(args, run_seed)
    summary = summarise(rows)
    (out / "results.json").write_text(json.dumps({"summary": summary, "seeds": rows}, indent=2) + "\n")
    (out / "spar.md").write_text(markdown(summary, args))
    print(markdown(summary, args))


if __name__ == "__main__":
    main()
