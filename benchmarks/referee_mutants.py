"""The referee's mutants, and a seeded sample of them for estimating the mutation score.

A full ``mutmut run`` over the referee is a day of CPU on 2 cores (see CONTRIBUTING.md), so the score is estimated
from a random sample drawn with a fixed seed from the referee's mutants, and reported with a Wilson interval.

Usage (after ``mutmut run "zzz.none*"`` has generated the mutants without testing any)::

    mutmut results --all true > mutants.txt
    python benchmarks/referee_mutants.py sample mutants.txt          # prints the sampled names
    mutmut run --max-children 2 $(python benchmarks/referee_mutants.py sample mutants.txt)
    mutmut results --all true > mutants.txt
    python benchmarks/referee_mutants.py score mutants.txt           # killed/survived of the sample, with its CI
    python benchmarks/referee_mutants.py score mutants.txt --equivalent NAME ...  # and over the non-equivalent
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
from pathlib import Path

# The referee: plan validation (all of plans.py but its JSON export), held-out keys and splits (all of splits.py),
# and core.py's budget accounting, verification, reward and checkpoint/resume.
WHOLE_MODULES = {"envgym.plans": {"to_json"}, "skills.splits": set()}
CORE_FUNCTIONS = {
    "_referee",
    "step",
    "_plan",
    "_reward",
    "reset",
    "evaluate",
    "_draw_fixed_pool",
    "save_checkpoint",
    "load_checkpoint",
    "snapshot",
    "restore",
    "_state",
    "_set_state",
    "_attribute",
    "register_plan_kind",
    "_remember",
    "reported_errors",
}
CORE_PREFIXES = ("_data_for_",)
SEED = 20261207
SAMPLE_SIZE = 60

# mutmut 3 names a mutant ``module.xǁClassǁmethod__mutmut_N`` or ``module.x_function__mutmut_N``.
_NAME = re.compile(r"^(?P<module>[\w.]+?)\.x(?:ǁ\w+ǁ|_)(?P<function>\w+?)__mutmut_\d+$")


def function_of(mutant: str) -> tuple[str, str]:
    match = _NAME.match(mutant)
    if match is None:
        raise ValueError(
            f"Expects a mutmut 3 mutant name such as 'envgym.core.xǁTeachingEnvǁstep__mutmut_3', actual {mutant!r}"
        )
    return match["module"], match["function"]


def is_referee(mutant: str) -> bool:
    module, function = function_of(mutant)
    if module in WHOLE_MODULES:
        return function not in WHOLE_MODULES[module]
    return module == "envgym.core" and (function in CORE_FUNCTIONS or function.startswith(CORE_PREFIXES))


def read_results(path: Path) -> dict[str, str]:
    """``mutmut results --all true`` lines (``name: status``) as {name: status}."""
    results = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, status = line.strip().partition(": ")
        if name:
            results[name] = status.strip()
    return results


def sample(
    names: list[str], size: int = SAMPLE_SIZE, seed: int = SEED, exclude: tuple[tuple[int, int], ...] = ()
) -> list[str]:
    """``size`` of the referee's mutants drawn with ``seed``, leaving out the earlier samples ``exclude`` names as
    ``(seed, size)`` pairs, each drawn as it was (with the samples before it left out): a fresh sample after the
    earlier ones' survivors were killed estimates the score without their bias."""
    referee = sorted(name for name in names if is_referee(name))
    earlier: set[str] = set()
    for position, (earlier_seed, earlier_size) in enumerate(exclude):
        earlier.update(sample(names, earlier_size, earlier_seed, exclude[:position]))
    referee = [name for name in referee if name not in earlier]
    return random.Random(seed).sample(referee, min(size, len(referee)))


def wilson(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def _seed_and_size(text: str) -> tuple[int, int]:
    seed, _, size = text.partition(",")
    try:
        return int(seed), int(size)
    except ValueError:
        raise SystemExit(f"--exclude expects SEED,SIZE such as 20261207,60, actual {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sample", "score"])
    parser.add_argument("results", type=Path, help="the output of `mutmut results --all true`")
    parser.add_argument("--size", type=int, default=SAMPLE_SIZE)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="SEED,SIZE",
        help="leave out an earlier sample (e.g. 20261207,60); repeat it, in the order they were drawn, for several",
    )
    parser.add_argument(
        "--equivalent",
        action="append",
        default=[],
        metavar="MUTANT",
        help="a survivor read and found equivalent (it changes no behaviour); repeat it. The score is then also "
        "given over the non-equivalent mutants, the usual definition of a mutation score",
    )
    args = parser.parse_args(argv)
    results = read_results(args.results)
    exclude = tuple(_seed_and_size(text) for text in args.exclude)
    drawn = sample(list(results), args.size, args.seed, exclude)
    if args.command == "sample":
        print(" ".join(drawn))
        return 0
    referee = sum(is_referee(name) for name in results)
    checked = {name: results[name] for name in drawn if results[name] in {"killed", "survived", "timeout"}}
    killed = sum(status != "survived" for status in checked.values())
    low, high = wilson(killed, len(checked))
    left_out = f", leaving out the samples of seeds {', '.join(str(seed) for seed, _ in exclude)}" if exclude else ""
    print(f"referee mutants: {referee} of {len(results)}; sample: {len(drawn)} (seed {args.seed}{left_out})")
    print(f"checked {len(checked)}: {killed} killed (timeouts count as killed), {len(checked) - killed} survived")
    if checked:
        print(f"score {killed / len(checked):.0%} [Wilson 95%: {low:.0%}, {high:.0%}]")
    equivalent = [name for name in args.equivalent if checked.get(name) == "survived"]
    not_survivors = sorted(set(args.equivalent) - set(equivalent))
    if not_survivors:
        raise SystemExit(f"--equivalent expects survivors of this sample; actual {', '.join(not_survivors)}")
    if equivalent:
        relevant = len(checked) - len(equivalent)
        low, high = wilson(killed, relevant)
        print(
            f"non-equivalent {relevant}: score {killed / relevant:.0%} [Wilson 95%: {low:.0%}, {high:.0%}] "
            f"({len(equivalent)} equivalent)"
        )
    for name in drawn:
        if results[name] == "survived":
            print(f"survived{' (equivalent)' if name in equivalent else ''}: {name}")
    unchecked = [name for name in drawn if name not in checked]
    if unchecked:
        print(f"unchecked ({len(unchecked)}): {' '.join(unchecked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
