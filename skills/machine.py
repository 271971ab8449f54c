"""What a number was measured on: float results differ across CPUs (kernels differ by ISA and thread count), so
build records and run reports say which torch, how many threads and which CPU produced them."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_record(threads: int | None = None) -> dict[str, Any]:
    """torch and transformers versions, the torch thread count (``threads`` if given, else torch's current one),
    the CPU model, architecture and the SIMD level torch dispatches to (e.g. ``AVX512``), and CUDA if present."""
    import torch
    import transformers

    record: dict[str, Any] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": int(threads if threads is not None else torch.get_num_threads()),
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        record["cuda"] = {"version": torch.version.cuda, "device": torch.cuda.get_device_name(0)}
    return record
