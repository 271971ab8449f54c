"""``envgym bench``: every (teacher, seed) episode of a grid as a Ray task, then the leaderboard.

Each episode is ``envgym.run_episode`` in a Ray task with one torch thread, writing its usual run directory
``DIR/<teacher>/seed<k>/``. A failed episode is recorded (``error.json`` in its directory: error type, message,
traceback) and the others go on. Episodes already finished (``report.json``) are skipped and interrupted ones
continue from their last checkpoint, so re-running a killed bench resumes it. At the end the leaderboard
(:mod:`envgym.leaderboard`) is rebuilt from the files.

Ray runs locally (``ray.init(address="local", num_cpus=jobs)``, a private temporary directory, no dashboard) or
on an existing cluster (``address``): there every node must have envgym (and any ``module:Class`` teacher)
importable, and ``DIR`` must be a path all nodes and this machine share.

Example:
    >>> from envgym.bench import run_bench
    >>> result = run_bench("uniform,targeted", "0-4", "runs/bench", env_kwargs={"steps": 2, "budget": 256})
    >>> result.planned, result.ran + result.skipped
    (10, 10)
    >>> sorted(row["teacher"] for row in result.leaderboard["rows"])  # rows are ranked by mean final test gain
    ['targeted', 'uniform']
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import re
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from envgym.core import resolved_env_kwargs
from envgym.files import acquire_run_lock, dumps, read_json, write_text_atomic
from envgym.leaderboard import BASELINE, BENCH_FILE, ERROR_FILE, write_leaderboard
from skills.errors import InvalidConfig, InvalidRunDirectory, unknown_name_error

DEFAULT_ENV = "envgym/SkillList-v0"
# Teachers that take a ``reference=`` run directory: the same seed's run of the named teacher (DoReMi's
# reference model is the uniform run). That run goes first; the teacher gets ``make_teacher(..., reference=dir)``.
REFERENCES = {"doremi": BASELINE}
# One torch thread per episode: on a small machine oversubscribed threads make every episode 4-20x slower.
WORKER_ENV = {
    "ENVGYM_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
_MAX_SEEDS = 100_000
_OBJECT_STORE_BYTES = 128 * 1024**2  # records are small dicts; keep the local store (shared memory) small


@dataclass(frozen=True)
class Episode:
    """One (teacher, seed) episode of a bench grid."""

    teacher: str
    seed: int
    out: str  # its run directory
    reference: str | None = None  # passed as make_teacher(teacher, seed=seed, reference=...)
    after: tuple[str, int] | None = None  # the (teacher, seed) episode of this grid that must finish first
    llm: dict[str, Any] | None = None  # an LLM teacher's endpoint: make_teacher(teacher, seed=seed, llm=...)
    log: tuple[str, ...] = ()  # trackers of run_episode(log=...): tensorboard, wandb


@dataclass
class BenchResult:
    """What a bench did: ``ran`` episodes now (``failed`` among them; ``resumed`` continued from a checkpoint an
    earlier, interrupted bench left), ``skipped`` ones already finished."""

    out: Path
    planned: int
    ran: int
    skipped: int
    resumed: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    leaderboard: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0


# ------------------------------------------------------------------------------------------------------ the grid


def parse_seeds(spec: str | int | Iterable[int]) -> list[int]:
    """Seeds from ``"0-15"``, ``"0,3,7"``, ``"0-3,8"`` or an iterable of ints: sorted, without repeats.

    >>> parse_seeds("0-3,7,2")
    [0, 1, 2, 3, 7]
    """
    expects = "Expects seeds as whole numbers >= 0, ranges and lists such as '0-15' or '0,3,7'"
    if isinstance(spec, bool):
        raise InvalidConfig(f"{expects}; actual {spec!r}.")
    if isinstance(spec, int):
        spec = [spec]
    if not isinstance(spec, str):
        values = list(spec)
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise InvalidConfig(f"{expects}; actual {values!r}.")
        return sorted(set(values))
    seeds: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise InvalidConfig(f"{expects}; actual {spec!r} (the part {part!r}).")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise InvalidConfig(f"{expects}; actual {spec!r} (the range {part!r} runs backwards).")
        if last - first + len(seeds) >= _MAX_SEEDS:
            raise InvalidConfig(f"{expects}, at most {_MAX_SEEDS:,} of them; actual {spec!r}.")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def parse_teachers(spec: str | Sequence[str]) -> list[str]:
    """Teacher names from ``"uniform,targeted,pkg.mod:Class"`` (or a list), without repeats, in order.

    A name without ``:`` must be registered (``agents.registry.teacher_names()``): a typo is an
    :class:`~envgym.error.UnknownName` with a did-you-mean before anything runs. A ``module:Class`` teacher is
    imported in each episode, where a failure is recorded like any other."""
    from agents.registry import teacher_names

    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    if not names or any(not n for n in names):
        raise InvalidConfig(
            f"Expects a comma-separated list of teacher names such as 'uniform,targeted'; actual {spec!r}."
        )
    known = teacher_names()
    for name in names:
        if ":" in name:
            module, _, attr = name.partition(":")
            if not module or not attr:
                raise InvalidConfig(f"Expects a teacher 'module:Class' with both parts; actual {name!r}.")
        elif name not in known:
            raise unknown_name_error("teacher", name, [*known, "module:Class"])
    return list(dict.fromkeys(names))


def teacher_dir(name: str) -> str:
    """The directory name of a teacher's runs: the name with anything but letters, digits, ``._-`` as ``-``.

    >>> teacher_dir("examples.custom_teacher:TwoWeakestTeacher")
    'examples.custom_teacher-TwoWeakestTeacher'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip(".") or "teacher"


def plan_episodes(
    teachers: Sequence[str], seeds: Sequence[int], out: str | Path, finished: Iterable[tuple[str, int]] = ()
) -> list[Episode]:
    """The grid in submission order (a pure function).

    Seed by seed, except that teachers another one takes a reference run from (``REFERENCES``: ``uniform`` for
    ``doremi``) go first. A teacher with a reference gets the same seed's run directory of it when that teacher is
    in the grid (its episode is then ``after`` it) or already ``finished`` in ``out``."""
    out = Path(out)
    finished = set(finished)
    dirs = [teacher_dir(t) for t in teachers]
    clash = {d for d in dirs if dirs.count(d) > 1}
    if clash:
        names = [t for t in teachers if teacher_dir(t) in clash]
        raise InvalidConfig(f"Expects teachers with distinct directory names; {names} all map to {sorted(clash)}.")
    referenced = {REFERENCES[t] for t in teachers if t in REFERENCES}
    order = [t for t in teachers if t in referenced] + [t for t in teachers if t not in referenced]
    first = [(t, s) for t in order if t in referenced for s in seeds]
    rest = [(t, s) for s in seeds for t in order if t not in referenced]
    episodes = []
    for teacher, seed in first + rest:
        reference = after = None
        source = REFERENCES.get(teacher)
        if source is not None and (source in teachers or (source, seed) in finished):
            reference = str(out / teacher_dir(source) / f"seed{seed}")
            after = (source, seed) if source in teachers else None
        episodes.append(Episode(teacher, seed, str(out / teacher_dir(teacher) / f"seed{seed}"), reference, after))
    return episodes


# ------------------------------------------------------------------------------------------------------ episodes


def _write_error(episode: Episode, error_type: str, message: str, trace: str | None = None) -> None:
    out = Path(episode.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"teacher": episode.teacher, "seed": episode.seed, "error_type": error_type, "message": message}
    write_text_atomic(out / ERROR_FILE, dumps({**record, "traceback": trace}, indent=2) + "\n")


def _has_checkpoint(out: Path) -> bool:
    from envgym.runner import CHECKPOINT

    return (out / CHECKPOINT).is_dir() or (out / f"{CHECKPOINT}.old").is_dir()


def run_one(
    episode: Episode | Mapping[str, Any],
    env_id: str,
    env_kwargs: Mapping[str, Any],
    reference_record: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) one episode in this process; never raises for the episode's own failure.

    Returns ``{"teacher", "seed", "dir", "status": "finished" | "failed", "error_type", "message", "seconds"}``
    and, on failure, writes ``error.json`` into the run directory. ``reference_record`` is the record of the
    episode it had to wait for (its reference run)."""
    import gymnasium as gym

    import envgym  # noqa: F401 - registers the environments
    from agents.registry import make_teacher
    from envgym.runner import remove_unfinished_run, run_episode

    if isinstance(episode, Mapping):
        episode = Episode(**{**episode, "after": tuple(episode["after"]) if episode.get("after") else None})
    start = time.perf_counter()
    out = Path(episode.out)
    record = {"teacher": episode.teacher, "seed": episode.seed, "dir": str(out)}
    env = None
    try:
        (out / ERROR_FILE).unlink(missing_ok=True)
        if reference_record is not None and reference_record.get("status") != "finished":
            raise InvalidConfig(
                f"Expects the reference run {episode.reference!r} to finish first; it failed "
                f"({reference_record.get('error_type')}: {reference_record.get('message')})."
            )
        kwargs: dict[str, Any] = {"reference": episode.reference} if episode.reference else {}
        if episode.llm is not None:
            kwargs["llm"] = episode.llm
        teacher = make_teacher(episode.teacher, seed=episode.seed, **kwargs)
        env = gym.make(env_id, **env_kwargs)
        checkpointed = _has_checkpoint(out)
        if out.is_dir() and not checkpointed:
            remove_unfinished_run(out)  # killed before its first checkpoint: nothing to resume, start again
        run_episode(
            env,
            teacher,
            out,
            seed=episode.seed,
            teacher_name=episode.teacher,
            resume=checkpointed,
            progress=False,
            log=episode.log,
        )
        record.update(status="finished", error_type=None, message=None)
    except Exception as err:
        message = str(err) or repr(err)
        _write_error(episode, type(err).__name__, message, traceback.format_exc())
        record.update(status="failed", error_type=type(err).__name__, message=message)
    finally:
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()
        del env
        gc.collect()
    record["seconds"] = time.perf_counter() - start
    return record


def _ray_task(episode: dict[str, Any], env_id: str, env_kwargs: dict[str, Any], *after: dict[str, Any]) -> dict:
    import ray

    record = run_one(episode, env_id, env_kwargs, after[0] if after else None)
    record["node"] = ray.get_runtime_context().get_node_id()  # where it ran (multi-node diagnostics)
    return record


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables that are not set yet, and restore them afterwards."""
    added = [k for k in values if k not in os.environ]
    for key in added:
        os.environ[key] = values[key]
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def ray_session(
    jobs: int, address: str | None, env_vars: Mapping[str, str] = WORKER_ENV
) -> Iterator[dict[str, Any] | None]:
    """Ray for the bench: the one already initialised in this process, a cluster at ``address``, or a private
    local instance (``jobs`` CPUs, its own temporary directory, no dashboard, removed afterwards). Workers get
    ``env_vars``. Yields the per-task runtime environment to use (None when the job's own already has them)."""
    import ray

    if ray.is_initialized():
        yield {"env_vars": dict(env_vars)}
        return
    options: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "runtime_env": {"env_vars": dict(env_vars)},
    }
    if address is not None:
        try:
            ray.init(address=address, **options)
        except Exception as err:  # ConnectionError, ValueError, TimeoutError... depending on what is wrong
            raise InvalidConfig(
                f"Could not connect to the Ray cluster at --address {address!r} ({type(err).__name__}: {err}). "
                "Give the address `ray start --head` printed (e.g. 10.0.0.1:6379), or drop --address to run locally."
            ) from None
        try:
            yield None
        finally:
            ray.shutdown()
        return
    temp_dir = tempfile.mkdtemp(prefix="envgym-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    # A private local instance: no token auth (Ray >= 2.5x asks for it and writes ~/.ray/auth_token), no usage
    # statistics; both only while it starts and runs, and only if the user has not set them.
    with _environ({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}):
        try:
            ray.init(
                address="local",
                num_cpus=jobs,
                include_dashboard=False,
                object_store_memory=_OBJECT_STORE_BYTES,
                _temp_dir=temp_dir,
                **options,
            )
            yield None
        finally:
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------ the bench


def _check_env(env_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Build the environment once here, so a bad --env/--task/--steps is one clear error before anything runs;
    returns its kwargs as run directories save them (config.json)."""
    import gymnasium as gym

    import envgym  # noqa: F401 - registers the environments

    if env_id not in gym.registry:
        raise unknown_name_error("environment", env_id, sorted(k for k in gym.registry if k.startswith("envgym/")))
    # A student placed on a Ray actor is checked here in this process (Ray is not up yet); episodes use the actor.
    student_config = env_kwargs.get("student_config")
    on_actor = isinstance(student_config, Mapping) and student_config.get("placement") == "ray"
    checked = {**env_kwargs, "student_config": {**student_config, "placement": "local"}} if on_actor else env_kwargs
    env = gym.make(env_id, **checked)
    try:
        saved = json.loads(dumps(env.unwrapped.config_kwargs()[0]))
    finally:
        env.close()
    if on_actor:
        saved["student_config"]["placement"] = "ray"
    return saved


def _merged_bench_file(out: Path, teachers: list[str], seeds: list[int], env_id: str, saved: dict) -> dict:
    """``bench.json`` with this grid added; refuses a directory holding a bench of another environment."""
    path = out / BENCH_FILE
    bench = {"env_id": env_id, "env_kwargs": saved, "teachers": [], "seeds": []}
    if path.is_file():
        old = read_json(path, "Bench file", f" Move it away to start a new bench in {str(out)!r}.")
        if old.get("env_id") != env_id or resolved_env_kwargs(env_id, old.get("env_kwargs") or {}) != saved:
            raise InvalidConfig(
                f"Expects the environment of the bench already in {str(out)!r} ({old.get('env_id')} with "
                f"{dumps(old.get('env_kwargs'))}); actual {env_id} with {dumps(saved)}. Give the same --env/--task/"
                "--steps/--budget/--mode to continue it, or choose another --out."
            )
        bench.update(teachers=list(old.get("teachers", [])), seeds=list(old.get("seeds", [])))
    bench["teachers"] = list(dict.fromkeys([*bench["teachers"], *teachers]))
    bench["seeds"] = sorted(set(bench["seeds"]) | set(seeds))
    return bench


def _check_existing(episode: Episode, env_id: str, saved: dict) -> None:
    path = Path(episode.out) / "config.json"
    if not path.is_file():
        return
    config = read_json(path, "Run configuration")
    want = {"env_id": env_id, "env_kwargs": saved, "teacher": episode.teacher, "seed": episode.seed}
    have = {key: config.get(key) if isinstance(config, dict) else None for key in want}
    if have != want:
        differ = ", ".join(f"{k} {have[k]!r} (expected {want[k]!r})" for k in want if have[k] != want[k])
        raise InvalidRunDirectory(
            f"Expects {episode.out!r} to hold a run of this bench; it has {differ}. Move it away or choose another "
            "--out."
        )


def run_bench(
    teachers: str | Sequence[str],
    seeds: str | int | Iterable[int],
    out: str | Path,
    *,
    env_id: str = DEFAULT_ENV,
    env_kwargs: Mapping[str, Any] | None = None,
    jobs: int | None = None,
    address: str | None = None,
    progress: bool = True,
    teacher_llm: Mapping[str, Any] | None = None,
    retries: int = 1,
    gpus_per_episode: float = 0.0,
    log: Sequence[str] = (),
) -> BenchResult:
    """Run every (teacher, seed) episode not finished yet in ``out`` as a Ray task, then write the leaderboard.

    ``teachers``: names or ``module:Class`` (``"uniform,targeted"`` or a list); ``seeds``: ``"0-15"``,
    ``"0,3,7"`` or ints; ``env_kwargs``: ``gym.make`` keyword arguments of every episode. ``jobs``: episodes at
    once (local Ray CPUs; default: all cores); with ``address`` (an existing Ray cluster) it caps the episodes in
    flight and the cluster's CPUs decide otherwise. ``teacher_llm``: the endpoint (LLMClientConfig fields) of the
    LLM teachers among ``teachers``; each episode caches its replies in its run directory. Failed episodes are
    recorded, not raised. ``log``: trackers each episode also writes (``tensorboard``, ``wandb``)."""
    start = time.perf_counter()
    teachers = parse_teachers(teachers)
    seeds = parse_seeds(seeds)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InvalidConfig(f"Expects --jobs to be a whole number >= 1; actual {jobs!r}.")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidConfig(f"Expects --retries to be a whole number >= 0; actual {retries!r}.")
    if isinstance(gpus_per_episode, bool) or not isinstance(gpus_per_episode, (int, float)) or gpus_per_episode < 0:
        raise InvalidConfig(f"Expects --gpus-per-episode >= 0; actual {gpus_per_episode!r}.")
    address = address or os.environ.get("RAY_ADDRESS") or None
    from envgym.loggers import LOGGERS

    for name in log:
        if name not in LOGGERS:
            raise unknown_name_error("logger (--log)", name, LOGGERS)
    env_kwargs = dict(env_kwargs or {})
    saved = _check_env(env_id, env_kwargs)
    from envgym.runner import check_run_dir

    out = check_run_dir(Path(out).expanduser().resolve(), resume=False)
    lock = acquire_run_lock(out)  # one bench per directory at a time
    try:
        finished = {
            (t, s) for t in teachers for s in seeds if (out / teacher_dir(t) / f"seed{s}" / "report.json").is_file()
        }
        bench = _merged_bench_file(out, teachers, seeds, env_id, saved)
        episodes = plan_episodes(teachers, seeds, out, finished)
        if log:
            episodes = [replace(e, log=tuple(log)) for e in episodes]
        if teacher_llm is not None:
            from agents.registry import takes_llm

            episodes = [replace(e, llm=dict(teacher_llm)) if takes_llm(e.teacher) else e for e in episodes]
        for episode in episodes:
            _check_existing(episode, env_id, saved)
        write_text_atomic(out / BENCH_FILE, dumps(bench, indent=2) + "\n")
        todo = [e for e in episodes if (e.teacher, e.seed) not in finished]
        resumed = sum(_has_checkpoint(Path(e.out)) for e in todo)
        failed: list[dict[str, Any]] = []
        if todo:
            failed = _run_on_ray(
                todo,
                env_id,
                env_kwargs,
                jobs,
                address,
                progress,
                skipped=len(finished),
                retries=retries,
                gpus=gpus_per_episode,
            )
        board = write_leaderboard(out)
    finally:
        lock.release()
    return BenchResult(
        out=out,
        planned=len(episodes),
        ran=len(todo),
        skipped=len(finished),
        resumed=resumed,
        failed=failed,
        leaderboard=board,
        wall_seconds=time.perf_counter() - start,
    )


def _run_on_ray(
    todo: list[Episode],
    env_id: str,
    env_kwargs: dict[str, Any],
    jobs: int | None,
    address: str | None,
    progress: bool,
    skipped: int,
    retries: int,
    gpus: float,
) -> list[dict[str, Any]]:
    import ray

    failed: list[dict[str, Any]] = []
    # Locally Ray's CPUs bound the episodes at once; on a cluster only --jobs, when given, does.
    limit = jobs if address is not None else None
    jobs = jobs or os.cpu_count() or 1
    desc = f"bench ({skipped} finished before)" if skipped else "bench"
    env_vars = dict(WORKER_ENV)
    if "MPLCONFIGDIR" not in os.environ:
        # Else each worker's first run directory would hold matplotlib's cache for all its later episodes.
        env_vars["MPLCONFIGDIR"] = str(Path(todo[0].out).parents[1] / ".matplotlib")
    with ray_session(jobs, address, env_vars) as runtime_env:
        # A student on its own Ray actor (placement="ray") holds the CPUs/GPUs itself: the episode task only
        # drives it. Otherwise the episode trains in its task: 1 CPU, and --gpus-per-episode GPUs.
        on_actor = (env_kwargs.get("student_config") or {}).get("placement") == "ray"
        options: dict[str, Any] = {"num_cpus": 0 if on_actor else 1, "num_gpus": gpus, "max_retries": 0}
        if on_actor and limit is None:
            limit = jobs
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        task = ray.remote(_ray_task).options(**options)
        queue = list(todo)
        refs: dict[tuple[str, int], Any] = {}
        pending: dict[Any, Episode] = {}
        attempts: dict[tuple[str, int], int] = {}
        bar = tqdm(total=len(todo), desc=desc, unit="episode", disable=not progress, dynamic_ncols=True)
        try:
            while queue or pending:
                while queue and (limit is None or len(pending) < limit):
                    episode = queue.pop(0)
                    after = [refs[episode.after]] if episode.after in refs else []
                    ref = task.remote(asdict(episode), env_id, env_kwargs, *after)
                    refs[(episode.teacher, episode.seed)] = ref
                    pending[ref] = episode
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    episode = pending.pop(ref)
                    try:
                        record = ray.get(ref)
                    except Exception as err:  # the worker died (killed, out of memory) or Ray failed
                        message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                        _write_error(episode, type(err).__name__, message, str(err))
                        record = {"teacher": episode.teacher, "seed": episode.seed, "dir": episode.out}
                        record.update(status="failed", error_type=type(err).__name__, message=message)
                    key = (episode.teacher, episode.seed)
                    attempts[key] = attempts.get(key, 0) + 1
                    record["attempts"] = attempts[key]
                    if record["status"] != "finished" and attempts[key] <= retries:
                        # Again, from its last checkpoint: a lost worker or node must not cost the sweep an episode.
                        queue.insert(0, episode)
                        continue
                    if record["status"] != "finished":
                        failed.append(record)
                    bar.update(1)
                    bar.set_postfix(failed=len(failed), refresh=False)
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
    return failed
