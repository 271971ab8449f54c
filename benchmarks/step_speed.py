"""Speed of the default environment: median ``env.step`` time by phase, batched vs one-at-a-time evaluation,
and ``transformers.Trainer`` vs a minimal training loop (the reason the Trainer is used).

    python benchmarks/step_speed.py

All ratios are measured in one run on one machine. Writes ``benchmarks/step_speed.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import envgym  # noqa: F401
from agents import TargetedTeacher
from students.training import _PadCollator, _TokenizedPairs

HERE = Path(__file__).parent


def minimal_loop_seconds(student, examples, epochs: int, batch_size: int) -> float:
    """The same training as ``HFStudent.train`` (answer-only loss, AdamW) without the Trainer."""
    from students.training import PromptCompletion

    pairs = [PromptCompletion(student.format_prompt(e.question), student.format_completion(e.answer)) for e in examples]
    dataset = _TokenizedPairs(pairs, student.tokenizer, student.config.max_length)
    collate = _PadCollator(student.tokenizer.pad_token_id)
    model, optimizer = student.model, student.optimizer
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(dataset), generator=generator).tolist()
        for i in range(0, len(order), batch_size):
            batch = collate([dataset[j] for j in order[i : i + batch_size]])
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--single", type=int, default=400, help="Questions answered one at a time.")
    parser.add_argument("--out", default=str(HERE / "step_speed"))
    args = parser.parse_args()

    env = gym.make("envgym/SkillList-v0", steps=args.steps)
    base = env.unwrapped
    teacher = TargetedTeacher()
    obs, info = env.reset(seed=0)
    phases: dict[str, list[float]] = {"total": [], "generate": [], "train": [], "eval": []}
    terminated = False
    while not terminated:
        start = time.perf_counter()
        obs, _, terminated, _, info = env.step(teacher.act(obs, info))
        phases["total"].append(time.perf_counter() - start)
        for phase in ("generate", "train", "eval"):
            phases[phase].append(base.timings[f"{phase}_seconds"])
    # The first step pays one-off costs (imports, allocator warm-up): medians are over warm steps.
    median = {phase: statistics.median(values[1:] or values) for phase, values in phases.items()}

    questions = [e.question for e in base.splits.all_questions("val")]
    start = time.perf_counter()
    batched_answers = base.student.answer(questions)
    batched_rate = len(questions) / (time.perf_counter() - start)
    subset = questions[: args.single]
    start = time.perf_counter()
    single_answers = [base.student.answer([q])[0] for q in subset]
    single_rate = len(subset) / (time.perf_counter() - start)
    same = single_answers == batched_answers[: len(subset)]

    examples = base.pool.sample_plan({s: 64 for s in base.skills}, np.random.default_rng(0))
    trainer_seconds = base.student.train(examples, seed=0)["seconds"]
    loop_seconds = minimal_loop_seconds(
        base.student, examples, base.student.config.epochs, base.student.config.batch_size
    )

    result = {
        "threads": torch.get_num_threads(),
        "median_step_seconds": median,
        "eval_questions": len(questions),
        "batched_questions_per_second": batched_rate,
        "single_questions_per_second": single_rate,
        "batched_over_single": batched_rate / single_rate,
        "identical_answers": same,
        "trainer_seconds": trainer_seconds,
        "minimal_loop_seconds": loop_seconds,
        "minimal_loop_speedup": trainer_seconds / loop_seconds,
    }
    table = "\n".join(
        [
            f"Default `envgym/SkillList-v0` (budget {base.config.budget}/step), torch threads {result['threads']}.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| median warm `env.step` | {median['total']:.2f} s |",
            f"| — generate data | {median['generate']:.3f} s |",
            f"| — train | {median['train']:.2f} s |",
            f"| — evaluate ({len(questions)} val questions) | {median['eval']:.2f} s |",
            f"| batched evaluation | {batched_rate:,.0f} questions/s |",
            f"| one question at a time | {single_rate:,.0f} questions/s |",
            f"| batched ÷ one-at-a-time | **{result['batched_over_single']:.1f}×** (identical answers: {same}) |",
            f"| Trainer, {len(examples)} examples × {base.student.config.epochs} epochs | {trainer_seconds:.2f} s |",
            f"| minimal loop, same work | {loop_seconds:.2f} s ({result['minimal_loop_speedup']:.2f}× faster) |",
            "",
        ]
    )
    out = Path(args.out)
    out.with_suffix(".md").write_text(table)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
