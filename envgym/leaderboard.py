"""The teacher leaderboard of a bench directory: statistics, ``leaderboard.{md,json,png}``.

The statistics are pure functions on plain numbers (:func:`mean_ci`, :func:`paired_difference`,
:func:`normalized_scores`, :func:`curve_auc`, :func:`examples_to_reach`, :func:`mean_curve`,
:func:`build_leaderboard`); :func:`read_bench` and :func:`write_leaderboard` read the run directories a bench
wrote (``DIR/<teacher>/seed<k>/``) and nothing else, so ``envgym leaderboard DIR`` rebuilds the same files.

Protocol (TeachMyAgent's): every teacher runs the same seeds; a teacher is compared with the ``uniform``
baseline by the paired difference of their final test gains over the seeds both finished (95% Student-t
interval of the mean difference, paired t-test p-value). With an ``oracle`` teacher, each teacher's normalised
score is the share of the uniform → oracle gap it recovers (AgoraBench's "performance gap recovered"), averaged
over seed pairings.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from scipy import stats

from envgym.files import dumps, read_json, write_text_atomic
from envgym.report import load_report, pyplot, read_steps
from skills.errors import InvalidConfig, InvalidRunDirectory

CONFIDENCE = 0.95
BASELINE = "uniform"
# The baseline of environments whose teachers plan differently (the open-ended env's control is random examples).
BASELINES = {"envgym/OpenEnded-v0": "random-examples", "envgym/SkillTree-v0": "tree-random"}
ORACLE = "oracle"
BENCH_FILE = "bench.json"
ERROR_FILE = "error.json"
FILES = ("leaderboard.md", "leaderboard.json", "leaderboard.png")
# Accuracies are fractions of whole counts; a target counts as reached within float rounding of it.
_TOLERANCE = 1e-9

DEFINITIONS = {
    "gain": "final test gain: mean test accuracy over skills after the episode minus before (report.json)",
    "auc": "area under the validation curve: mean over steps 0..T of the mean validation accuracy over skills",
    "min_skill_test": "the lowest per-skill test accuracy after the episode (forgetting shows here)",
    "examples_to_reach_baseline": (
        "cumulative training examples used (steps.jsonl examples_used) at the first step where the teacher's "
        "mean validation curve reaches the baseline's final mean validation accuracy, both averaged over the "
        "seeds they share; null if never. per_seed: the same on each seed against the baseline's run of that seed"
    ),
    "normalized_score": (
        "(gain - baseline gain) / (oracle gain - baseline gain) per seed all three finished (seeds where oracle "
        "and baseline gain the same are excluded), averaged; of_means: the same ratio of the mean gains"
    ),
    "vs_baseline": (
        "paired difference of final test gains against the baseline on the seeds both finished: mean, 95% "
        "Student-t interval (scipy.stats.t.interval with sem), paired t-test p-value (scipy.stats.ttest_rel)"
    ),
}


@dataclass(frozen=True)
class EpisodeResult:
    """The numbers the leaderboard needs from one finished (teacher, seed) run."""

    teacher: str
    seed: int
    gain: float
    val_curve: tuple[float, ...]  # mean validation accuracy over skills at steps 0..T
    examples: tuple[float, ...]  # cumulative training examples used at steps 0..T (0 at step 0)
    min_skill_test: float


# ---------------------------------------------------------------------------------------------------- statistics


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``{"n", "mean", "ci": [low, high]}``: the mean and its Student-t interval (``scipy.stats.t.interval`` with
    the standard error ``scipy.stats.sem``). One value has no interval (``ci`` None), no values no mean; values
    that are all equal have a zero-width interval.

    >>> [round(v, 4) for v in mean_ci([1.0, 2.0, 3.0])["ci"]]  # 2 ± t(0.975, 2) · 1/sqrt(3)
    [-0.4841, 4.4841]
    """
    x = np.asarray(list(values), dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "ci": None}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "ci": None}
    sem = float(stats.sem(x))
    if sem == 0.0 or np.ptp(x) == 0.0:
        return {"n": n, "mean": mean, "ci": [mean, mean]}
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return {"n": n, "mean": mean, "ci": [float(low), float(high)]}


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``a − b`` paired by seed, on the seeds both have: ``{"n", "seeds", "mean", "ci", "p_value"}``.

    ``ci`` is the Student-t interval of the mean difference; ``p_value`` is the two-sided paired t-test
    (``scipy.stats.ttest_rel``), None with fewer than two pairs or when every difference is the same."""
    seeds = sorted(set(a) & set(b))
    x = [float(a[s]) for s in seeds]
    y = [float(b[s]) for s in seeds]
    summary = mean_ci([u - v for u, v in zip(x, y, strict=True)], confidence)
    p_value = None
    if len(seeds) >= 2 and np.ptp(np.subtract(x, y)) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = float(stats.ttest_rel(x, y).pvalue)
    return {"n": len(seeds), "seeds": seeds, "mean": summary["mean"], "ci": summary["ci"], "p_value": p_value}


def normalized_scores(
    teacher: Mapping[int, float],
    baseline: Mapping[int, float],
    oracle: Mapping[int, float],
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The share of the baseline → oracle gap a teacher recovers, ``(g − g_base) / (g_oracle − g_base)``.

    Per seed all three finished, then averaged (mean and Student-t interval); seeds where the oracle's gain
    equals the baseline's have no ratio and are listed in ``excluded_seeds``. ``of_means`` is the ratio of the
    mean gains over all shared seeds (None if its denominator is 0)."""
    shared = sorted(set(teacher) & set(baseline) & set(oracle))
    per_seed: dict[int, float] = {}
    excluded = []
    for s in shared:
        gap = float(oracle[s]) - float(baseline[s])
        if abs(gap) <= _TOLERANCE:
            excluded.append(s)
        else:
            per_seed[s] = (float(teacher[s]) - float(baseline[s])) / gap
    summary = mean_ci(per_seed.values(), confidence)
    of_means = None
    if shared:
        gap = float(np.mean([oracle[s] for s in shared]) - np.mean([baseline[s] for s in shared]))
        if abs(gap) > _TOLERANCE:
            of_means = float(np.mean([teacher[s] for s in shared]) - np.mean([baseline[s] for s in shared])) / gap
    return {
        "n": len(per_seed),
        "seeds": sorted(per_seed),
        "excluded_seeds": excluded,
        "mean": summary["mean"],
        "ci": summary["ci"],
        "of_means": of_means,
    }


def curve_auc(curve: Sequence[float]) -> float:
    """Area under a validation curve sampled at steps 0..T, as the mean of its T+1 points (in accuracy units).

    >>> curve_auc([0.2, 0.4, 0.9])
    0.5
    """
    if len(curve) == 0:
        raise InvalidConfig("Expects a validation curve with at least its step-0 point; actual an empty one.")
    return float(np.mean(curve))


def examples_to_reach(curve: Sequence[float], examples: Sequence[float], target: float) -> float | None:
    """Cumulative examples at the first step whose accuracy reaches ``target``; None if none does.

    >>> examples_to_reach([0.2, 0.5, 0.7], [0, 100, 200], 0.5)
    100
    """
    if len(curve) != len(examples):
        raise InvalidConfig(
            f"Expects one cumulative example count per curve point; actual {len(examples)} for {len(curve)} points."
        )
    for accuracy, used in zip(curve, examples, strict=True):
        if accuracy >= target - _TOLERANCE:
            return used
    return None


def mean_curve(curves: Sequence[Sequence[float]], confidence: float = CONFIDENCE) -> dict[str, list]:
    """Point-wise mean and Student-t interval of curves over seeds (a step is averaged over the curves that
    reach it): ``{"step", "n", "mean", "ci_low", "ci_high"}``; the interval is None where n < 2."""
    length = max((len(c) for c in curves), default=0)
    out: dict[str, list] = {"step": [], "n": [], "mean": [], "ci_low": [], "ci_high": []}
    for step in range(length):
        summary = mean_ci([c[step] for c in curves if len(c) > step], confidence)
        out["step"].append(step)
        out["n"].append(summary["n"])
        out["mean"].append(summary["mean"])
        out["ci_low"].append(summary["ci"][0] if summary["ci"] else None)
        out["ci_high"].append(summary["ci"][1] if summary["ci"] else None)
    return out


# --------------------------------------------------------------------------------------------------- leaderboard


def _examples_block(mine: Mapping[int, EpisodeResult], base: Mapping[int, EpisodeResult]) -> dict[str, Any]:
    seeds = sorted(set(mine) & set(base))
    if not seeds:
        return {"n": 0, "seeds": [], "target": None, "examples": None, "per_seed": [], "reached": 0}
    target = float(np.mean([base[s].val_curve[-1] for s in seeds]))
    curve = mean_curve([mine[s].val_curve for s in seeds])["mean"]
    used = mean_curve([mine[s].examples for s in seeds])["mean"]
    per_seed = [examples_to_reach(mine[s].val_curve, mine[s].examples, base[s].val_curve[-1]) for s in seeds]
    return {
        "n": len(seeds),
        "seeds": seeds,
        "target": target,
        "examples": examples_to_reach(curve, used, target),
        "per_seed": per_seed,
        "reached": sum(v is not None for v in per_seed),
    }


def build_leaderboard(
    episodes: Iterable[EpisodeResult],
    *,
    failed: Sequence[Mapping[str, Any]] = (),
    unfinished: Sequence[Mapping[str, Any]] = (),
    teachers: Sequence[str] = (),
    seeds: Sequence[int] = (),
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    baseline: str = BASELINE,
    oracle: str = ORACLE,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The leaderboard of finished episodes, ranked by mean final test gain (a pure function: plain JSON out).

    ``teachers``/``seeds`` name the planned grid (teachers with no finished episode still get a row);
    ``failed`` and ``unfinished`` are listed as given."""
    episodes = sorted(episodes, key=lambda e: (e.teacher, e.seed))
    by_teacher: dict[str, dict[int, EpisodeResult]] = {t: {} for t in teachers}
    for e in episodes:
        by_teacher.setdefault(e.teacher, {})[e.seed] = e
    gains = {t: {s: e.gain for s, e in runs.items()} for t, runs in by_teacher.items()}
    has_baseline = bool(by_teacher.get(baseline))
    has_oracle = has_baseline and bool(by_teacher.get(oracle))
    failed_seeds: dict[str, list[int]] = {}
    for f in failed:
        failed_seeds.setdefault(f["teacher"], []).append(f["seed"])

    rows = []
    for teacher, runs in by_teacher.items():
        ordered = [runs[s] for s in sorted(runs)]
        curve = mean_curve([e.val_curve for e in ordered], confidence)
        curve["examples"] = mean_curve([e.examples for e in ordered], confidence)["mean"]
        row: dict[str, Any] = {
            "teacher": teacher,
            "n_seeds": len(ordered),
            "seeds": sorted(runs),
            "failed_seeds": sorted(failed_seeds.get(teacher, [])),
            "gain": mean_ci([e.gain for e in ordered], confidence),
            "auc": mean_ci([curve_auc(e.val_curve) for e in ordered], confidence),
            "min_skill_test": mean_ci([e.min_skill_test for e in ordered], confidence),
            "examples_to_reach_baseline": _examples_block(runs, by_teacher[baseline]) if has_baseline else None,
            "normalized_score": (
                normalized_scores(gains[teacher], gains[baseline], gains[oracle], confidence) if has_oracle else None
            ),
            "vs_baseline": (
                paired_difference(gains[teacher], gains[baseline], confidence)
                if has_baseline and teacher != baseline
                else None
            ),
            "curve": curve,
        }
        rows.append(row)
    rows.sort(key=lambda r: (r["gain"]["mean"] is None, -(r["gain"]["mean"] or 0.0), r["teacher"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    planned = len(teachers) * len(seeds)
    return {
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "confidence": confidence,
        "baseline": baseline if has_baseline else None,
        "oracle": oracle if has_oracle else None,
        "teachers": list(teachers) or sorted(by_teacher),
        "seeds": list(seeds) or sorted({e.seed for e in episodes}),
        "episodes": {
            "planned": planned or None,
            "finished": len(episodes),
            "failed": len(failed),
            "unfinished": len(unfinished),
        },
        "rows": rows,
        "failed": [dict(f) for f in failed],
        "unfinished": [dict(u) for u in unfinished],
        "definitions": dict(DEFINITIONS),
    }


# ------------------------------------------------------------------------------------------------ run directories


def episode_result(run_dir: str | Path, report: Mapping[str, Any] | None = None) -> EpisodeResult:
    """The leaderboard's numbers from a finished run directory (its report.json, or ``report`` if given, and
    steps.jsonl)."""
    report = load_report(run_dir) if report is None else report
    steps = read_steps(run_dir)
    skills = list(report["test_accuracy"]["per_skill"])

    def mean_val(accuracy: Mapping[str, float]) -> float:
        return float(np.mean([accuracy[s] for s in skills]))

    curve = [mean_val(report["val_accuracy_start"])] + [mean_val(row["val_accuracy"]) for row in steps]
    examples = [0.0, *np.cumsum([row["examples_used"] for row in steps]).tolist()]
    test = report["test_accuracy"]
    return EpisodeResult(
        teacher=str(report["teacher"]),
        seed=int(report["seed"]),
        gain=float(test["after"] - test["before"]),
        val_curve=tuple(curve),
        examples=tuple(float(v) for v in examples),
        min_skill_test=float(min(row["after"] for row in test["per_skill"].values())),
    )


def _json_or_none(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_bench(out: str | Path) -> dict[str, Any]:
    """Everything under a bench directory, from files only: ``{"episodes", "failed", "unfinished", "teachers",
    "seeds", "env_id", "env_kwargs"}``. Raises :class:`InvalidRunDirectory` if ``out`` holds no bench and
    :class:`InvalidConfig` if its runs were made with different environments."""
    out = Path(out)
    if not out.is_dir():
        raise InvalidRunDirectory(f"Expects a bench directory; {str(out)!r} is not a directory.")
    bench = read_json(out / BENCH_FILE, "Bench file") if (out / BENCH_FILE).is_file() else {}
    teachers: list[str] = list(bench.get("teachers", []))
    seeds: list[int] = list(bench.get("seeds", []))
    env_id, env_kwargs = bench.get("env_id"), bench.get("env_kwargs")
    episodes: list[EpisodeResult] = []
    failed: list[dict[str, Any]] = []
    unfinished: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for teacher_dir in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for run_dir in sorted(p for p in teacher_dir.iterdir() if p.is_dir() and p.name.startswith("seed")):
            if not run_dir.name[4:].isdigit():
                continue
            rel = str(run_dir.relative_to(out))
            config = _json_or_none(run_dir / "config.json") or {}
            error = _json_or_none(run_dir / ERROR_FILE)
            if (run_dir / "report.json").is_file():
                report = load_report(run_dir)
                result = episode_result(run_dir, report)
                if env_id is None:
                    env_id, env_kwargs = report["env_id"], report.get("env_kwargs", {})
                if report["env_id"] != env_id or not _same_env(env_id, report.get("env_kwargs", {}), env_kwargs):
                    raise InvalidConfig(
                        f"Expects every run of a bench to share one environment; {rel} ran {report['env_id']} "
                        f"{report.get('env_kwargs')}, the bench {env_id} {env_kwargs}. Move it out of {str(out)!r}."
                    )
                episodes.append(result)
                seen.add((result.teacher, result.seed))
            elif isinstance(error, dict) and {"teacher", "seed"} <= set(error):
                failed.append(
                    {
                        "teacher": str(error["teacher"]),
                        "seed": int(error["seed"]),
                        "dir": rel,
                        "error_type": error.get("error_type"),
                        "message": error.get("message"),
                    }
                )
                seen.add((str(error["teacher"]), int(error["seed"])))
            elif config or any(run_dir.iterdir()):
                teacher = str(config.get("teacher", teacher_dir.name))
                seed = int(config.get("seed", run_dir.name[4:]))
                unfinished.append({"teacher": teacher, "seed": seed, "dir": rel})
                seen.add((teacher, seed))
    for teacher in teachers:
        for seed in seeds:
            if (teacher, seed) not in seen:
                unfinished.append({"teacher": teacher, "seed": seed, "dir": None})
    for name in sorted({e.teacher for e in episodes} | {f["teacher"] for f in failed}):
        if name not in teachers:
            teachers.append(name)
    if not bench and not episodes and not failed and not unfinished:
        raise InvalidRunDirectory(
            f"Expects a bench directory (bench.json, <teacher>/seed<k>/ runs); found none in {str(out)!r}. "
            "Create one with: envgym bench --teachers ... --seeds ... --out DIR"
        )
    seeds = sorted(set(seeds) | {e.seed for e in episodes} | {f["seed"] for f in failed})
    key = lambda r: (r["teacher"], r["seed"])  # noqa: E731
    return {
        "episodes": episodes,
        "failed": sorted(failed, key=key),
        "unfinished": sorted(unfinished, key=key),
        "teachers": teachers,
        "seeds": seeds,
        "env_id": env_id,
        "env_kwargs": env_kwargs or {},
    }


def _same_env(env_id: str, a: Mapping[str, Any], b: Mapping[str, Any] | None) -> bool:
    """Whether two saved kwargs make the same environment (defaults filled in: runs save every field)."""
    from envgym.core import resolved_env_kwargs

    if a == b:
        return True
    try:
        return resolved_env_kwargs(env_id, dict(a)) == resolved_env_kwargs(env_id, dict(b or {}))
    except (gym.error.Error, ImportError, ValueError, TypeError, KeyError):  # unknown here: only identical match
        return False


def write_leaderboard(out: str | Path) -> dict[str, Any]:
    """Rebuild ``leaderboard.md``, ``leaderboard.json`` and ``leaderboard.png`` in ``out`` from its run
    directories; returns the leaderboard."""
    out = Path(out)
    found = read_bench(out)
    board = build_leaderboard(
        found["episodes"],
        failed=found["failed"],
        unfinished=found["unfinished"],
        teachers=found["teachers"],
        seeds=found["seeds"],
        env_id=found["env_id"],
        env_kwargs=found["env_kwargs"],
        baseline=BASELINES.get(found["env_id"] or "", BASELINE),
    )
    board = json.loads(dumps(board))  # strict JSON: what is written is what is returned
    write_text_atomic(out / "leaderboard.json", dumps(board, indent=2) + "\n")
    write_text_atomic(out / "leaderboard.md", render_markdown(board))
    plot_leaderboard(board, out / "leaderboard.png")
    return board


# -------------------------------------------------------------------------------------------------------- output


def _num(value: float | None, signed: bool = False, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_ci(summary: Mapping[str, Any] | None, signed: bool = False, digits: int = 3) -> str:
    """``+0.031 [+0.026, +0.036]``; ``—`` when there is no mean."""
    if not summary or summary.get("mean") is None:
        return "—"
    text = _num(summary["mean"], signed, digits)
    if summary.get("ci"):
        low, high = summary["ci"]
        text += f" [{_num(low, signed, digits)}, {_num(high, signed, digits)}]"
    return text


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def table_cells(row: Mapping[str, Any], board: Mapping[str, Any]) -> list[str]:
    """One leaderboard row as text cells (the markdown table and the CLI table share them)."""
    vs = row.get("vs_baseline")
    reach = row.get("examples_to_reach_baseline")
    norm = row.get("normalized_score")
    if reach and reach["n"]:
        examples = "never" if reach["examples"] is None else f"{reach['examples']:,.0f}"
        reach_text = f"{examples} ({reach['reached']}/{reach['n']} seeds)"
    else:
        reach_text = "—"
    return [
        str(row["rank"]),
        row["teacher"],
        str(row["n_seeds"]) + (f" (+{len(row['failed_seeds'])} failed)" if row["failed_seeds"] else ""),
        format_ci(row["gain"], signed=True),
        f"{format_ci(vs, signed=True)} (n={vs['n']})" if vs else "—",
        _p(vs["p_value"]) if vs else "—",
        f"{format_ci(norm, signed=True, digits=2)} (n={norm['n']})" if norm and norm["n"] else "—",
        format_ci(row["auc"]),
        format_ci(row["min_skill_test"]),
        reach_text,
    ]


def table_header(board: Mapping[str, Any], short: bool = False) -> list[str]:
    """Column names of :func:`table_cells` (``short``: for a terminal)."""
    base = board.get("baseline") or BASELINE
    pct = f"{board.get('confidence', CONFIDENCE):.0%}"
    if short:
        return [
            "#",
            "teacher",
            "seeds",
            f"test gain [{pct} CI]",
            f"Δ vs {base} [{pct} CI]",
            "p",
            f"gap recovered to {board.get('oracle') or ORACLE}",
            "val AUC",
            "min-skill test acc",
            f"examples to {base}'s final val",
        ]
    return [
        "rank",
        "teacher",
        "seeds",
        f"test gain [{pct} CI]",
        f"Δ gain vs {base} [{pct} CI] (paired seeds)",
        "p (paired t)",
        f"gap recovered {base}→{board.get('oracle') or ORACLE} [{pct} CI]",
        f"val AUC [{pct} CI]",
        f"min-skill test acc [{pct} CI]",
        f"examples to reach {base}'s final val",
    ]


def render_markdown(board: Mapping[str, Any]) -> str:
    counts = board["episodes"]
    lines = [
        "# Teacher leaderboard",
        "",
        f"Environment `{board['env_id']}` with {dumps(board['env_kwargs'])}; teachers "
        f"{', '.join(f'`{t}`' for t in board['teachers'])}; seeds {_seed_text(board['seeds'])}. Episodes: "
        f"{counts['finished']} finished, {counts['failed']} failed, {counts['unfinished']} unfinished"
        + (f" of {counts['planned']} planned." if counts["planned"] else "."),
        "",
        "| " + " | ".join(table_header(board)) + " |",
        "|" + "---|" * 3 + "---:|" * 7,
    ]
    lines += ["| " + " | ".join(table_cells(row, board)) + " |" for row in board["rows"]]
    lines += [
        "",
        f"Ranked by mean final test gain. Intervals are {board['confidence']:.0%} Student-t intervals over seeds; "
        "comparisons pair seeds and use only the seeds both teachers finished (n = seeds used).",
        "",
    ]
    if board["baseline"] is None:
        lines += [f"No finished `{BASELINE}` episodes: no paired comparisons or examples-to-reach.", ""]
    if board["oracle"] is None:
        lines += [f"No finished `{ORACLE}` episodes (with a baseline): no normalised score.", ""]
    if board["failed"]:
        lines += ["## Failed episodes", ""]
        for f in board["failed"]:
            message = str(f.get("message") or "").splitlines()[0] if f.get("message") else ""
            lines.append(f"- `{f['teacher']}` seed {f['seed']}: {f.get('error_type')}: {message[:300]}")
        lines.append("")
    if board["unfinished"]:
        lines += ["## Unfinished episodes", "", "Re-run the same `envgym bench` command to finish them.", ""]
        lines += [f"- `{u['teacher']}` seed {u['seed']}" for u in board["unfinished"]]
        lines.append("")
    lines += ["## Definitions", ""]
    lines += [f"- **{name}**: {text}." for name, text in board["definitions"].items()]
    lines += ["", "Plot: `leaderboard.png`; numbers: `leaderboard.json`.", ""]
    return "\n".join(lines)


def _seed_text(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]} ({len(seeds)})"
    return ", ".join(map(str, seeds)) + f" ({len(seeds)})"


def plot_leaderboard(board: Mapping[str, Any], path: str | Path) -> Path:
    """Left: each teacher's mean validation accuracy by step with its interval band. Right: mean final test
    gains with their intervals."""
    path = Path(path)
    plt = pyplot(path.parent)
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in board["rows"] if r["n_seeds"]]
    colors = plt.get_cmap("tab10")
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    pct = f"{board.get('confidence', CONFIDENCE):.0%}"
    for i, row in enumerate(rows):
        curve, color = row["curve"], colors(i % 10)
        curves.plot(
            curve["step"], curve["mean"], marker="o", color=color, label=f"{row['teacher']} (n={row['n_seeds']})"
        )
        band = [
            (s, lo, hi)
            for s, lo, hi in zip(curve["step"], curve["ci_low"], curve["ci_high"], strict=True)
            if lo is not None
        ]
        if band:
            steps, low, high = zip(*band, strict=True)
            curves.fill_between(steps, low, high, color=color, alpha=0.15, linewidth=0)
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_xlabel("step")
    curves.set_ylabel(f"mean validation accuracy ({pct} CI)")
    curves.set_title("Learning curves")
    if rows:
        curves.legend(fontsize=7)
    names = [r["teacher"] for r in rows]
    means = [r["gain"]["mean"] for r in rows]
    errors = np.array(
        [
            [r["gain"]["mean"] - r["gain"]["ci"][0], r["gain"]["ci"][1] - r["gain"]["mean"]]
            if r["gain"]["ci"]
            else [0.0, 0.0]
            for r in rows
        ]
    ).reshape(-1, 2)
    bars.bar(range(len(rows)), means, yerr=errors.T, capsize=4, color=[colors(i % 10) for i in range(len(rows))])
    bars.axhline(0.0, color="black", linewidth=0.8)
    bars.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
    bars.set_ylabel(f"final test gain ({pct} CI)")
    bars.set_title("Final mean test gain")
    env = board.get("env_id") or ""
    fig.suptitle(f"{env} · seeds {_seed_text(board['seeds'])}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_leaderboard(board: Mapping[str, Any], console: Any = None) -> None:
    """The leaderboard as two rich tables (the comparison, then the learning-curve measures; narrow enough for a
    terminal), then its failed episodes."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    header, cells = table_header(board, short=True), [table_cells(row, board) for row in board["rows"]]
    title = f"Teacher leaderboard · {board['env_id']} · seeds {_seed_text(board['seeds'])}"
    for columns, caption in (((0, 1, 2, 3, 4, 5, 6), title), ((0, 1, 7, 8, 9), None)):
        table = Table(title=caption)
        for i in columns:
            table.add_column(header[i], justify="left" if i in (1, 2) else "right", overflow="fold")
        for row in cells:
            table.add_row(*(row[i] for i in columns))
        console.print(table)
    for f in board["failed"]:
        message = str(f.get("message") or "").splitlines()[0] if f.get("message") else ""
        line = Text("failed ", style="red")
        line.append(f"{f['teacher']} seed {f['seed']}: {f.get('error_type')}: {message[:300]}")
        console.print(line, soft_wrap=True)
