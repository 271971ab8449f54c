"""``envgym lbt m1|m2|m3``: learning by teaching's three methods as resumable runs.

M1 (:func:`run_m1`), answer selection by exam scores. Per teaching problem (``envgym/LbT-v0``'s validation
questions, in the episode's seeded order): the teacher's greedy solution and ``samples`` sampled ones; one exam;
each solution's LbT score (the exam students' accuracy with it in context, per student too); the answer each rule
selects. ``m1.jsonl`` gets a row per problem as it finishes (a resumed run skips those), ``report.json`` the
accuracy of greedy, ``maj`` (self-consistency), ``max``, ``sum`` and ``avg`` on the teaching problems, with each
rule also applied to each single student's scores (one student vs all).

M2 (:func:`run_m2`) trains the teacher with DPO on its own solutions' pairs, scored with LbT or by correctness alone
(``m2.jsonl``, ``pairs_lbt.jsonl``, ``pairs_correctness.jsonl``); M3 (:func:`run_m3`) refines a skill's in-context
example set round by round (``m3.jsonl``). Each run directory is locked while it runs, holds ``config.json`` (a
resume must match it) and caches every endpoint reply in ``llm_cache``.

Without an endpoint the local Gemma-3-270M server (``envgym serve-teacher``) is started for the run and is the
teacher's and the students' endpoint.

Example:
    >>> from envgym.lbt import run_m1
    >>> from envgym.lbt_config import LbTRunConfig
    >>> report = run_m1(LbTRunConfig(problems=4), "runs/lbt-m1")  # doctest: +SKIP
    >>> report["accuracy"]["greedy"], report["accuracy"]["max"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agents.lbt import (
    SELECTION_RULES,
    EndpointSolver,
    ModelSolver,
    Solver,
    parse_examples,
    preference_pairs,
    render_examples,
    rewrite_prompt,
    select_answer,
    solution_score,
    worked_examples,
)
from envgym.files import acquire_run_lock, dumps, read_json, write_text_atomic
from envgym.lbt_config import LbTRunConfig
from envgym.lbt_env import LbTEnv
from envgym.runner import check_run_dir, refuse_existing_run
from skills.errors import InvalidConfig, unknown_name_error
from skills.llm import LLMClient
from skills.rationale import Rationale, render_prompt, to_charset
from skills.registry import make_task
from skills.task import Example, skill_names, verify_example

M1_ROWS_FILE = "m1.jsonl"
LLM_CACHE = "llm_cache"


@contextlib.contextmanager
def _endpoint(llm: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The teacher's endpoint settings: as given, or the local Gemma server started for the run."""
    if llm and llm.get("base_url"):
        yield dict(llm)
        return
    from envgym.serve import serve_teacher

    with serve_teacher(port=None, n_threads=1) as server:
        yield {**dict(llm or {}), "base_url": server.base_url}


@dataclass(frozen=True)
class _Run:
    """An open LbT run: its directory (locked), the endpoint, the environment with its exam students, and the
    endpoint settings config.json records (a started server's address left out: it differs on every start)."""

    out: Path
    llm: dict[str, Any]
    env: LbTEnv
    settings: dict[str, Any]


@contextlib.contextmanager
def _open_run(
    config: LbTRunConfig,
    out_dir: str | Path,
    *,
    resume: bool,
    llm: Mapping[str, Any] | None,
    student_llm: Mapping[str, Any] | None,
    students: list[Any] | None,
    need_server: bool,
) -> Iterator[_Run]:
    """Lock the run directory, start the local server if ``need_server`` and ``llm`` names none, build the env with
    the exam students (``students``, else the student endpoint, default ``llm``, at each exam temperature), point
    their caches into the run, and close everything afterwards."""
    out = check_run_dir(out_dir, resume=resume)
    lock = acquire_run_lock(out)
    try:
        with _endpoint(llm) if need_server else contextlib.nullcontext(dict(llm or {})) as endpoint:
            student_endpoint = {**endpoint, **dict(student_llm or {})} if student_llm else dict(endpoint)
            specs = students if students is not None else exam_students(config, student_endpoint)
            env = LbTEnv(task=config.task, students=specs, problems=config.problems, exam_size=config.exam_size)
            try:
                _cache_in(out, env.students)
                yield _Run(out, endpoint, env, {key: value for key, value in endpoint.items() if key != "base_url"})
            finally:
                env.close()
    finally:
        lock.release()


def _cache_in(out: Path, parts: Any) -> None:
    """Cache the replies of every endpoint-backed part (teacher, exam students) in the run's ``llm_cache``."""
    for part in parts:
        use = getattr(part, "use_cache_dir", None)
        if callable(use):
            use(out / LLM_CACHE)


def exam_students(config: LbTRunConfig, student_llm: Mapping[str, Any]) -> list[Any]:
    """The exam students' specs: the student endpoint at each temperature, then the local students."""
    return [{**dict(student_llm), "temperature": t} for t in config.temperatures()] + config.local()


def run_m1(
    config: LbTRunConfig,
    out_dir: str | Path,
    *,
    teacher_llm: Mapping[str, Any] | None = None,
    student_llm: Mapping[str, Any] | None = None,
    solver: Solver | None = None,
    students: list[Any] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or continue) M1 in ``out_dir``; returns the report. ``solver``/``students`` replace the endpoint
    teacher and students (tests, or a user's own models)."""
    need_server = solver is None or (students is None and not (student_llm or {}).get("base_url"))
    with _open_run(
        config,
        out_dir,
        resume=resume,
        llm=teacher_llm,
        student_llm=student_llm,
        students=students,
        need_server=need_server,
    ) as run:
        solver = solver or EndpointSolver(run.llm, temperature=config.temperature)
        _cache_in(run.out, [solver])
        return _run(config, run.env, solver, run.out, run.settings, resume, progress)


def _open_rows(out: Path, run_config: dict[str, Any], rows_file: str, resume: bool) -> list[dict[str, Any]]:
    """A new run's config.json, or a resumed run's rows so far (its settings checked against ``run_config``)."""
    rows_path = out / rows_file
    if resume:
        saved = read_json(out / "config.json", "Run file")
        if saved != run_config:
            raise InvalidConfig(
                f"Expects the settings of the run in {out} to resume it; they differ. Give the same flags, or a new "
                "--out."
            )
        rows = _read_rows(rows_path)
    else:
        refuse_existing_run(out)
        write_text_atomic(out / "config.json", dumps(run_config, indent=2) + "\n")
        rows = []
    write_text_atomic(rows_path, "".join(dumps(row) + "\n" for row in rows))
    return rows


def _append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "a") as f:
        f.write("".join(dumps(row) + "\n" for row in rows))


def _run(
    config: LbTRunConfig,
    env: LbTEnv,
    solver: Solver,
    out: Path,
    settings: dict[str, Any],
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    run_config = {"method": "m1", "config": config.to_dict(), "students": [s.name for s in env.students], **settings}
    rows = _open_rows(out, run_config, M1_ROWS_FILE, resume)
    env.reset(seed=config.seed)
    problems = env.episode_problems
    start = time.perf_counter()
    for index in tqdm(range(len(rows), len(problems)), desc="LbT M1", disable=not progress):
        row = _problem_row(config, env, solver, problems[index], index)
        _append_rows(out / M1_ROWS_FILE, [row])
        rows.append(row)
    report = m1_report(rows, [s.name for s in env.students])
    report.update(config=run_config, wall_seconds_this_session=time.perf_counter() - start)
    write_text_atomic(out / "report.json", dumps(report, indent=2) + "\n")
    return report


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a row cut by a crash: it and what follows are done again
    return rows


def _problem_row(config: LbTRunConfig, env: LbTEnv, solver: Solver, problem: Any, index: int) -> dict[str, Any]:
    seed = int(np.random.SeedSequence([config.seed, index, 31]).generate_state(1)[0])
    rng = np.random.default_rng([seed, 37])
    shots = worked_examples(env.pool.sample(problem.skill, config.shots, rng))
    greedy = env.validate_action(env.fit(solver.greedy(problem.question, shots)))
    sampled = [
        env.validate_action(env.fit(s)) for s in solver.sample(problem.question, shots, config.samples, seed=seed)
    ]
    exam = env.exam_for(problem, seed)
    results = [env.score(problem, solution, exam, seed) for solution in sampled]
    scores = [result.score for result in results]
    per_student = {name: [result.student_scores[name] for result in results] for name in results[0].scores}
    selected = {rule: select_answer(sampled, scores, rule) for rule in SELECTION_RULES}
    by_student = {
        name: {rule: select_answer(sampled, values, rule) for rule in SELECTION_RULES if rule != "maj"}
        for name, values in per_student.items()
    }

    def correct(answer: str) -> float:
        return float(env.task.score(problem, answer))

    return {
        "index": index,
        "problem": problem.question,
        "skill": problem.skill,
        "gold": problem.answer,
        "exam": [ex.question for ex in exam],
        "greedy": {**greedy.to_json(), "correct": correct(greedy.answer)},
        "samples": [
            {
                **solution.to_json(),
                "lbt_score": result.score,
                "student_scores": result.student_scores,
                "correct": correct(solution.answer),
            }
            for solution, result in zip(sampled, results, strict=True)
        ],
        "selected": {rule: {"answer": answer, "correct": correct(answer)} for rule, answer in selected.items()},
        "selected_by_student": {
            name: {rule: correct(answer) for rule, answer in rules.items()} for name, rules in by_student.items()
        },
    }


def m1_report(rows: list[dict[str, Any]], students: list[str]) -> dict[str, Any]:
    """Accuracy of greedy and of each rule over the problems, the mean LbT score of right and wrong solutions,
    and each rule on each single student's scores."""
    samples = [s for row in rows for s in row["samples"]]
    right = [s["lbt_score"] for s in samples if s["correct"] == 1.0]
    wrong = [s["lbt_score"] for s in samples if s["correct"] < 1.0]
    return {
        "method": "m1",
        "problems": len(rows),
        "accuracy": {
            "greedy": _mean([row["greedy"]["correct"] for row in rows]),
            **{rule: _mean([row["selected"][rule]["correct"] for row in rows]) for rule in SELECTION_RULES},
            "oracle": _mean([max(s["correct"] for s in row["samples"]) for row in rows]),
            "sample_mean": _mean([s["correct"] for s in samples]),
        },
        "accuracy_by_student": {
            name: {
                rule: _mean([row["selected_by_student"][name][rule] for row in rows])
                for rule in SELECTION_RULES
                if rule != "maj"
            }
            for name in students
        },
        "lbt_score": {
            "right_solutions": _mean(right),
            "wrong_solutions": _mean(wrong),
            "right_count": len(right),
            "wrong_count": len(wrong),
        },
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


M2_ROWS_FILE = "m2.jsonl"
# Chunks of teaching problems sampled in one batched generation (and written together: a resumed run continues at
# the next chunk, whose seed does not depend on what ran before).
M2_CHUNK = 8
# The teacher M2 trains: Gemma-3-270M with LoRA, prompted with the whole solver prompt; DPO's rate suits LoRA.
M2_TEACHER_DEFAULTS: dict[str, Any] = {
    "lora": True,
    "lora_r": 16,
    "prompt_template": "{question}",
    "max_new_tokens": 40,
    "max_length": 512,
    "learning_rate": 1e-4,
    "dpo_learning_rate": 1e-4,
    "dpo_batch_size": 8,
    "eval_batch_size": 32,
}


def run_m2(
    config: LbTRunConfig,
    out_dir: str | Path,
    *,
    student_llm: Mapping[str, Any] | None = None,
    teacher_config: Mapping[str, Any] | None = None,
    teacher: Any = None,
    students: list[Any] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or continue) M2 in ``out_dir``: the teacher's accuracy on held-out test problems before and after DPO on
    pairs scored with LbT, against DPO on pairs scored by correctness alone. ``teacher``: an
    :class:`~students.hf_student.HFStudent` with ``prompt_template="{question}"`` (default: Gemma-3-270M with LoRA,
    ``M2_TEACHER_DEFAULTS`` updated by ``teacher_config``); ``students``: exam students (default: the student
    endpoint, or the local Gemma server started for the run, at each ``exam_temperatures``)."""
    need_server = students is None and not (student_llm or {}).get("base_url")
    with _open_run(
        config, out_dir, resume=resume, llm=student_llm, student_llm=None, students=students, need_server=need_server
    ) as run:
        teacher_fields = {**M2_TEACHER_DEFAULTS, **dict(teacher_config or {})}
        built = teacher is None
        if built:
            from students.gemma import gemma_student_dir
            from students.hf_student import HFStudent
            from students.hf_student_config import HFStudentConfig

            teacher = HFStudent(gemma_student_dir(), HFStudentConfig.from_dict(teacher_fields))
        run_config = {
            "method": "m2",
            "config": config.to_dict(),
            "students": [s.name for s in run.env.students],
            "teacher": teacher_fields if built else type(teacher).__name__,
            **run.settings,
        }
        solver = ModelSolver(teacher, temperature=config.temperature)
        return _run_m2(config, run.env, solver, run.out, run_config, resume, progress)


def _m2_problems(config: LbTRunConfig, env: LbTEnv) -> tuple[list[tuple[Example, str]], list[tuple[Example, str]]]:
    """(training problem, solver prompt) pairs, skills in turn from the training side, and held-out test problems
    with theirs; every prompt's worked examples are other training problems of the skill. Seeded."""
    rng = np.random.default_rng([config.seed, 41])

    def with_prompt(problem: Example) -> tuple[Example, str]:
        own = env.task.heldout_key(problem.question)
        shots = [
            ex
            for ex in env.pool.sample(problem.skill, config.shots + 1, rng)
            if env.task.heldout_key(ex.question) != own
        ][: config.shots]
        return problem, render_prompt(worked_examples(shots), problem.question)

    train: list[tuple[Example, str]] = []
    seen: set[str] = set()
    while len(train) < config.problems:
        problem = env.pool.sample(env.skills[len(train) % len(env.skills)], 1, rng)[0]
        if env.task.heldout_key(problem.question) not in seen:
            seen.add(env.task.heldout_key(problem.question))
            train.append(with_prompt(problem))
    test = env.splits.all_questions("test")
    by_skill = {skill: [ex for ex in test if ex.skill == skill] for skill in env.skills}
    held_out = [
        by_skill[env.skills[i % len(env.skills)]][i // len(env.skills)]
        for i in range(config.eval_problems)
        if i // len(env.skills) < len(by_skill[env.skills[i % len(env.skills)]])
    ]
    return train, [with_prompt(problem) for problem in held_out]


def _accuracy(env: LbTEnv, solver: ModelSolver, problems: list[tuple[Example, str]]) -> float:
    solutions = solver.greedy_many([prompt for _, prompt in problems])
    return float(
        np.mean([env.task.score(problem, s.answer) for (problem, _), s in zip(problems, solutions, strict=True)])
    )


def _run_m2(
    config: LbTRunConfig,
    env: LbTEnv,
    solver: ModelSolver,
    out: Path,
    run_config: dict[str, Any],
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    start = time.perf_counter()
    rows = _open_rows(out, run_config, M2_ROWS_FILE, resume)
    train, held_out = _m2_problems(config, env)
    before = _accuracy(env, solver, held_out)
    snapshot = solver.model.snapshot()
    chunks = range(len(rows) // M2_CHUNK * M2_CHUNK, len(train), M2_CHUNK)
    rows = rows[: len(rows) // M2_CHUNK * M2_CHUNK]  # a chunk cut short is sampled again whole
    write_text_atomic(out / M2_ROWS_FILE, "".join(dumps(row) + "\n" for row in rows))
    for first in tqdm(chunks, desc="LbT M2: sample and score", disable=not progress):
        part = train[first : first + M2_CHUNK]
        seed = int(np.random.SeedSequence([config.seed, first, 43]).generate_state(1)[0])
        sampled = solver.sample_many([prompt for _, prompt in part], config.samples, seed=seed)
        new = []
        for offset, ((problem, prompt), solutions) in enumerate(zip(part, sampled, strict=True)):
            exam = env.exam_for(problem, seed + offset)
            solutions = [env.validate_action(env.fit(s)) for s in solutions]
            results = [env.score(problem, s, exam, seed + offset) for s in solutions]
            new.append(
                {
                    "index": first + offset,
                    "problem": problem.question,
                    "skill": problem.skill,
                    "gold": problem.answer,
                    "prompt": prompt,
                    "exam": [ex.question for ex in exam],
                    "samples": [
                        {
                            **s.to_json(),
                            "correct": float(env.task.score(problem, s.answer)),
                            "lbt_score": r.score,
                            "student_scores": r.student_scores,
                        }
                        for s, r in zip(solutions, results, strict=True)
                    ],
                }
            )
        _append_rows(out / M2_ROWS_FILE, new)
        rows += new

    arms = {"lbt": config.lbt_weight, "correctness": 0.0}
    report: dict[str, Any] = {
        "method": "m2",
        "problems": len(rows),
        "held_out_problems": len(held_out),
        "accuracy": {"before": before},
        "pairs": {},
    }
    for arm, weight in arms.items():
        pairs = [
            pair
            for row in rows
            for pair in preference_pairs(
                row["prompt"],
                row["skill"],
                [Rationale(s["rationale"], s["answer"]) for s in row["samples"]],
                [solution_score(s["correct"], s["lbt_score"], weight) for s in row["samples"]],
                gap=config.pair_gap,
                cap=config.max_pairs_per_problem,
            )
        ]
        write_text_atomic(out / f"pairs_{arm}.jsonl", "".join(dumps(pair.to_dict()) + "\n" for pair in pairs))
        solver.model.restore(snapshot)
        stats = solver.model.train_preferences(pairs, seed=config.seed) if pairs else {"loss": None}
        report["pairs"][arm] = len(pairs)
        report["accuracy"][f"after_{arm}"] = _accuracy(env, solver, held_out)
        report.setdefault("dpo_loss", {})[arm] = stats.get("loss")
    samples = [s for row in rows for s in row["samples"]]
    report["train_sample_accuracy"] = float(np.mean([s["correct"] for s in samples])) if samples else None
    report.update(config=run_config, wall_seconds_this_session=time.perf_counter() - start)
    write_text_atomic(out / "report.json", dumps(report, indent=2) + "\n")
    return report


M3_ROWS_FILE = "m3.jsonl"
M3_MODES = ("one_student", "all_students")  # who scores the candidate sets (evaluation always uses all)
M3_FAILURES_SHOWN = 5  # failures quoted to the teacher per rewrite request


def run_m3(
    config: LbTRunConfig,
    out_dir: str | Path,
    *,
    teacher_llm: Mapping[str, Any] | None = None,
    student_llm: Mapping[str, Any] | None = None,
    teacher: Any = None,
    students: list[Any] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or continue) M3 in ``out_dir``: per round, the validation accuracy of the best in-context example set,
    the beam scored by the first exam student only and by all of them. ``teacher``: an object with
    ``complete(prompt, temperature=, seed=)`` (default: an :class:`~skills.llm.LLMClient` on the teacher endpoint,
    or the local Gemma server started for the run)."""
    skills = skill_names(make_task(config.task))
    if config.skill and config.skill not in skills:  # before the run directory or a server is made
        raise unknown_name_error("skill (--skill)", config.skill, skills)
    need_server = teacher is None or (students is None and not (student_llm or {}).get("base_url"))
    with _open_run(
        config,
        out_dir,
        resume=resume,
        llm=teacher_llm,
        student_llm=student_llm,
        students=students,
        need_server=need_server,
    ) as run:
        teacher = teacher or LLMClient({"max_tokens": 256, **run.llm, "api": "completions"})
        _cache_in(run.out, [teacher])
        run_config = {"method": "m3", "config": config.to_dict(), "students": [s.name for s in run.env.students]}
        return _run_m3(config, run.env, teacher, run.out, {**run_config, **run.settings}, resume, progress)


def _as_rows(examples: list[Example]) -> list[dict[str, str]]:
    return [
        {"question": ex.question, "answer": ex.answer, "rationale": ex.metadata.get("rationale", "")} for ex in examples
    ]


def _from_rows(rows: list[dict[str, str]], skill: str) -> list[Example]:
    return [Example(row["question"], row["answer"], skill, {"rationale": row["rationale"]}) for row in rows]


def _run_m3(
    config: LbTRunConfig,
    env: LbTEnv,
    teacher: Any,
    out: Path,
    run_config: dict[str, Any],
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    start = time.perf_counter()
    skill = config.skill or env.skills[0]
    rows = _open_rows(out, run_config, M3_ROWS_FILE, resume)
    validation = [ex for ex in env.splits.all_questions("val") if ex.skill == skill]

    def accuracy(examples: list[Example], problems: list[Example], seed: int, students: Any = None) -> float:
        result = env.exam_result(render_examples(examples), problems, seed, students)
        return float(np.mean(list(result.student_scores.values())))

    if not rows:
        initial = env.pool.sample(skill, config.examples, np.random.default_rng([config.seed, 47]))
        initial = [Example(ex.question, ex.answer, skill, {"rationale": ""}) for ex in initial]
        value = accuracy(initial, validation, config.seed)
        first = {"round": 0, **{mode: {"beam": [_as_rows(initial)], "val_accuracy": value} for mode in M3_MODES}}
        _append_rows(out / M3_ROWS_FILE, [first])
        rows.append(first)
    for round_index in tqdm(range(len(rows), config.rounds + 1), desc="LbT M3", disable=not progress):
        seed = int(np.random.SeedSequence([config.seed, round_index, 53]).generate_state(1)[0])
        rng = np.random.default_rng(seed)
        failures_batch = env.pool.sample(skill, config.minibatch, rng)
        scoring_batch = env.pool.sample(skill, config.minibatch, rng)
        row: dict[str, Any] = {"round": round_index}
        for mode in M3_MODES:
            scorers = env.students[:1] if mode == "one_student" else env.students
            beam = [_from_rows(examples, skill) for examples in rows[-1][mode]["beam"]]
            candidates = list(beam)
            stats = {"rewrites": 0, "parsed": 0, "kept_examples": 0, "dropped_unverified": 0, "dropped_heldout": 0}
            for b, examples in enumerate(beam):
                result = env.exam_result(render_examples(examples), failures_batch, seed, scorers)
                failures = [
                    {"question": ex.question, "answer": answers[i], "gold": ex.answer}
                    for name, answers in result.answers.items()
                    for i, ex in enumerate(failures_batch)
                    if result.scores[name][i] < 1.0
                ][:M3_FAILURES_SHOWN]
                for k in range(config.rewrites):
                    stats["rewrites"] += 1
                    reply = teacher.complete(
                        rewrite_prompt(examples, failures), temperature=config.temperature, seed=seed + 7 * b + k
                    )
                    rewritten, counts = _refereed_examples(
                        env, parse_examples(to_charset(reply), config.examples), skill
                    )
                    stats["parsed"] += counts["parsed"]
                    for key in ("dropped_unverified", "dropped_heldout"):
                        stats[key] += counts[key]
                    if rewritten:
                        stats["kept_examples"] += len(rewritten)
                        candidates.append(rewritten)
            unique = {json.dumps(_as_rows(c)): c for c in candidates}
            scored = sorted(
                ((accuracy(c, scoring_batch, seed, scorers), key) for key, c in unique.items()),
                key=lambda item: -item[0],
            )[: config.beam]
            best = unique[scored[0][1]]
            row[mode] = {
                "beam": [json.loads(key) for _, key in scored],
                "beam_scores": [score for score, _ in scored],
                "candidates": len(unique),
                "val_accuracy": accuracy(best, validation, config.seed),
                **stats,
            }
        _append_rows(out / M3_ROWS_FILE, [row])
        rows.append(row)
    report = {
        "method": "m3",
        "skill": skill,
        "validation_problems": len(validation),
        "val_accuracy_by_round": {mode: [row[mode]["val_accuracy"] for row in rows] for mode in M3_MODES},
        "rewrites_kept": {mode: sum(row[mode].get("kept_examples", 0) > 0 for row in rows[1:]) for mode in M3_MODES},
        "config": run_config,
        "wall_seconds_this_session": time.perf_counter() - start,
    }
    write_text_atomic(out / "report.json", dumps(report, indent=2) + "\n")
    return report


def _refereed_examples(env: LbTEnv, examples: list[Example], skill: str) -> tuple[list[Example], dict[str, int]]:
    """A rewrite's examples that may be shown to students: verified by the task as examples of ``skill`` (a wrong
    worked example would teach the wrong answer), and never a validation or test question."""
    kept, counts = [], {"parsed": len(examples), "dropped_unverified": 0, "dropped_heldout": 0}
    for example in examples:
        filed = Example(example.question, example.answer, skill, example.metadata)
        if env.splits.is_heldout(filed.question):
            counts["dropped_heldout"] += 1
        elif not verify_example(env.task, filed).ok:
            counts["dropped_unverified"] += 1
        else:
            kept.append(filed)
    return kept, counts
