"""Why one SPaR iteration does not raise the default student's held-out rate: the same SPaR pairs trained with
other preference losses, and the chosen answers (or the task's canonical answers) trained with plain SFT.

Per seed and actor (``students.instruction_student`` with ``--warmup-examples-per-skill``), one SPaR teacher
builds its tree pairs once (as ``envgym spar`` does: the actor's own samples, refined by tree search); every arm
then starts from the same actor (a fresh environment, same seed, same splits) and takes one step:

- ``dpo <loss> lr=<rate> [sft=<w>]``: a :class:`~envgym.plans.PreferencePlan` of the pairs, trained with
  ``HFStudentConfig.dpo_loss_type`` (TRL's losses: ``sigmoid`` is DPO, ``apo_zero`` is anchored to raise the
  chosen answers' likelihood, ``nca_pair`` likewise) and an SFT term of weight ``sft`` (SPaR's own recipe uses 0.1);
- ``sft chosen``: the chosen (refined) answers as SFT examples, an :class:`~envgym.plans.ExamplesPlan`;
- ``sft canonical``: the task's canonical answers to the same prompts (the data an oracle would give).

Each arm reports the change of the held-out (test) rates at the instruction and prompt level, paired over seeds,
and the mean log-probability of the chosen and the rejected answers after the step (likelihood displacement: does
preference training lower the chosen answers too?).

    python benchmarks/spar_losses.py --seeds 0-2 --warmup-examples-per-skill 2500 --out benchmarks/spar/losses
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envgym  # noqa: F401 - registers the environments
from agents.spar import SparTeacher
from envgym import ExamplesPlan, PreferencePlan
from skills.instructions import canonical_answer, parse
from skills.task import Example
from students.instruction_student import (
    INSTRUCTION_MAX_NEW_TOKENS,
)

sys.path.insert(0, str(Path(__file__).parent))
from spar import _evaluate, _interval, add_spar_arguments, run_seeds  # the SPaR benchmark's measures, one copy

# (name, student config fields, what the step trains on)
ARMS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("dpo sigmoid lr=1e-5", {"dpo_loss_type": "sigmoid", "dpo_learning_rate": 1e-5}, "pairs"),
    (
        "dpo sigmoid lr=1e-5 sft=0.1",
        {"dpo_loss_type": "sigmoid", "dpo_learning_rate": 1e-5, "dpo_sft_weight": 0.1},
        "pairs",
    ),
    ("dpo sigmoid lr=1e-6", {"dpo_loss_type": "sigmoid", "dpo_learning_rate": 1e-6}, "pairs"),
    ("dpo apo_zero lr=1e-5", {"dpo_loss_type": "apo_zero", "dpo_learning_rate": 1e-5}, "pairs"),
    ("dpo nca_pair lr=1e-4", {"dpo_loss_type": "nca_pair", "dpo_learning_rate": 1e-4}, "pairs"),
    ("sft chosen lr=1e-4", {"learning_rate": 1e-4, "batch_size": 16}, "chosen"),
    ("sft canonical lr=1e-4", {"learning_rate": 1e-4, "batch_size": 16}, "canonical"),
)


def _logps(student: Any, pairs: tuple) -> tuple[float, float]:
    """Mean log p(chosen) and log p(rejected) of ``pairs`` under ``student``."""
    chosen = np.mean([student.answer_logprob(pair.question, pair.chosen) for pair in pairs])
    rejected = np.mean([student.answer_logprob(pair.question, pair.rejected) for pair in pairs])
    return float(chosen), float(rejected)


def _env(actor: Path, args: argparse.Namespace, fields: dict[str, Any]) -> Any:
    return gym.make(
        "envgym/InstructionFollowing-v0",
        student=str(actor),
        student_config={"max_new_tokens": INSTRUCTION_MAX_NEW_TOKENS, "num_threads": args.threads, **fields},
        steps=1,
        budget=args.pair_budget,
        n_val=args.n_eval,
        n_test=args.n_eval,
    )


def run_seed(seed: int, args: argparse.Namespace, actor: Path) -> dict[str, Any]:
    start = time.perf_counter()
    env = _env(actor, args, {})
    observation, info = env.reset(seed=seed)
    before = _evaluate(env)
    teacher = SparTeacher(prompts=args.prompts, samples=args.samples, seed=seed)
    teacher.attach(env)
    pairs = teacher.act(observation, info).pairs
    probe = pairs[: args.probe]
    row: dict[str, Any] = {
        "seed": seed,
        "before": before,
        "pairs": len(pairs),
        "logps_before": _logps(env.unwrapped.student, probe),
    }
    env.close()
    row["arms"] = {}
    for name, fields, data in ARMS:
        env = _env(actor, args, fields)
        env.reset(seed=seed)
        if data == "pairs":
            plan: Any = PreferencePlan(pairs)
        else:
            answers = [p.chosen if data == "chosen" else canonical_answer(parse(p.question)) for p in pairs]
            plan = ExamplesPlan([Example(p.question, a, p.skill) for p, a in zip(pairs, answers, strict=True)])
        env.step(plan)
        row["arms"][name] = {**_evaluate(env), "logps": _logps(env.unwrapped.student, probe)}
        env.close()
        print(f"seed {seed} {name}: {row['arms'][name]}", flush=True)
    row["seconds"] = time.perf_counter() - start
    return row


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"# SPaR pairs under other losses, and SFT ({args.warmup_examples_per_skill} warm-up examples per skill)",
        "",
        f"`{shlex.join(['python', 'benchmarks/spar_losses.py', *sys.argv[1:]])}` (n={len(rows)} seeds, "
        f"{args.n_eval} test prompts per constraint type; {np.mean([r['pairs'] for r in rows]):.0f} tree pairs per "
        "seed on average; log p = mean log-probability of the first "
        f"{args.probe} pairs' answers after the step).",
        "",
        f"Before: instruction level {np.mean([r['before']['instruction_level'] for r in rows]):.3f}, prompt level "
        f"{np.mean([r['before']['prompt_level'] for r in rows]):.3f}; log p chosen "
        f"{np.mean([r['logps_before'][0] for r in rows]):.2f}, rejected "
        f"{np.mean([r['logps_before'][1] for r in rows]):.2f}.",
        "",
        "| arm | Δ instruction level | Δ prompt level | log p chosen | log p rejected |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, _, _ in ARMS:
        gains = {
            level: _interval([r["arms"][name][level] - r["before"][level] for r in rows])
            for level in ("instruction_level", "prompt_level")
        }
        logps = np.mean([r["arms"][name]["logps"] for r in rows], axis=0)
        lines.append(
            f"| {name} | "
            + " | ".join(f"{g[0]:+.3f} [{g[1]:+.3f}, {g[2]:+.3f}]" for g in gains.values())
            + f" | {logps[0]:.2f} | {logps[1]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_spar_arguments(parser, seeds="0-2", out="benchmarks/spar/losses")
    parser.add_argument("--probe", type=int, default=150, help="pairs whose log-probabilities are reported")
    args = parser.parse_args()
    out, rows = run_seeds(args, run_seed)
    (out / "results.json").write_text(json.dumps({"seeds": rows}, indent=2) + "\n")
    (out / "losses.md").write_text(markdown(rows, args))
    print(markdown(rows, args))


if __name__ == "__main__":
    main()
