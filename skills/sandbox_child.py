"""The sandbox's child process: it confines itself, then runs one untrusted program against its tests.

:mod:`skills.sandbox` starts it as ``python -I -S -B sandbox_child.py JOB_DIR`` in a new session, with a minimal
environment and stdout/stderr going to files in ``JOB_DIR`` (a fresh temporary directory). It reads
``JOB_DIR/job.json``, confines itself, runs the program and writes ``JOB_DIR/result.json``.

Confinement, strongest first; each layer that took hold is reported in the result (``isolation``):

1. Kernel: resource limits (address space, CPU seconds, file size, open files, no core dumps) with hard = soft, so
   the program cannot raise them; a new network namespace (no route to any host, 127.0.0.1 included) and a new
   mount namespace in which every mount is read-only except ``JOB_DIR`` and the parent's home directory is hidden
   behind an empty tmpfs (the Python installation is mounted back where it lives there); then, run as root, the
   unprivileged uid/gid 65534 (``nobody``) with its own process limit, else (a user without privileges) a user
   namespace whose capabilities are dropped; no-new-privileges in both.
2. Python: an audit hook (PEP 578) refuses process creation, signals, sockets, ``ctypes`` and writes or deletions
   outside ``JOB_DIR``. It is what holds where the kernel layers are not available, and a second wall where they
   are.

Standard library only, and nothing of envgym: this file runs inside the sandbox. Its :func:`encode` and
:func:`decode` are also what the parent uses to compare a program's outputs with the expected ones, so values
cross the boundary as plain data (a user object with its own ``__eq__`` cannot claim a pass).
"""

from __future__ import annotations

import io
import json
import math
import os
import sys

JOB_FILE = "job.json"
RESULT_FILE = "result.json"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
NOBODY = 65534
MAX_DEPTH = 64  # deeper outputs are refused rather than recursed into


# -- values across the boundary ----------------------------------------------------------------------------------
def encode(value, depth=0):
    """A JSON form of a plain Python value (None, bool, int, float, str, bytes, list, tuple, set, frozenset, dict,
    complex), exact types only (a subclass could carry its own ``__eq__``). Raises TypeError for anything else."""
    if depth > MAX_DEPTH:
        raise TypeError("output nested deeper than 64 levels")
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        return {"int": str(value)} if abs(value) > 2**53 else value
    if kind is float:
        return {"float": repr(value)} if not math.isfinite(value) else value
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"tuple": [encode(item, depth + 1) for item in value]}
    if kind in (set, frozenset):
        items = [encode(item, depth + 1) for item in value]
        return {kind.__name__: sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}
    if kind is dict:
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [repr(value.real), repr(value.imag)]}
    raise TypeError(f"output of type {kind.__name__} (expects plain data: numbers, strings, lists, dicts, ...)")


def decode(data):
    """The value :func:`encode` wrote."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    (tag, inner), *_ = data.items()
    if tag == "int":
        return int(inner)
    if tag == "float":
        return float(inner)
    if tag == "tuple":
        return tuple(decode(item) for item in inner)
    if tag == "set":
        return {decode(item) for item in inner}
    if tag == "frozenset":
        return frozenset(decode(item) for item in inner)
    if tag == "dict":
        return {decode(k): decode(v) for k, v in inner}
    if tag == "bytes":
        return bytes.fromhex(inner)
    if tag == "complex":
        return complex(float(inner[0]), float(inner[1]))
    raise ValueError(f"unknown tag {tag!r}")


# -- kernel confinement ------------------------------------------------------------------------------------------
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    8192,
    16384,
    1 << 18,
)
_KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024, "relatime": 1 << 21}
PR_SET_NO_NEW_PRIVS = 38


def _limits(job):
    import resource
    import signal

    def cap(which, value):
        resource.setrlimit(which, (value, value))

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file-size limit fails instead of killing

    cap(resource.RLIMIT_AS, job["memory_bytes"])
    # SIGXCPU at the soft limit (the parent reads it as a timeout), SIGKILL a second later for a program that
    # catches it.
    resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_seconds"], job["cpu_seconds"] + 1))
    cap(resource.RLIMIT_FSIZE, job["file_bytes"])
    cap(resource.RLIMIT_NOFILE, 64)
    cap(resource.RLIMIT_CORE, 0)
    return f"address space {job['memory_bytes'] >> 20} MiB, {job['cpu_seconds']} CPU s, files {job['file_bytes']} B"


class _Kernel:
    def __init__(self):
        import ctypes

        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)

    def call(self, name, *args):
        result = getattr(self.libc, name)(*args)
        if result != 0:
            errno = self.ctypes.get_errno()
            raise OSError(errno, f"{name}: {os.strerror(errno)}")

    def mount(self, source, target, fstype, flags, data=None):
        encoded = [None if part is None else part.encode() for part in (source, target, fstype, data)]
        self.call("mount", encoded[0], encoded[1], encoded[2], self.ctypes.c_ulong(flags), encoded[3])

    def drop_capabilities(self):
        ctypes = self.ctypes

        class Header(ctypes.Structure):
            _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

        data = (ctypes.c_uint32 * 6)()  # two zeroed __user_cap_data_struct: effective, permitted, inheritable
        self.call("capset", ctypes.byref(Header(0x20080522, 0)), data)


def _mount_points():
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # \040 for a space
            options = {name for name in fields[5].split(",")}
            points.append((point, sum(flag for name, flag in _KEPT_FLAGS.items() if name in options)))
    return points


def _inside(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _filesystem(kernel, job, job_dir):
    """Hide the parent's home (keeping the Python installation), then make every mount but ``job_dir`` read-only."""
    kernel.mount(None, "/", None, MS_REC | MS_PRIVATE)
    hold = os.path.join(job_dir, ".hold")
    for hidden in job["hide"]:
        if not os.path.isdir(hidden) or hidden == "/" or _inside(job_dir, hidden):
            continue
        kept = [path for path in job["keep"] if _inside(path, hidden) and os.path.isdir(path)]
        kept = [path for path in kept if not any(other != path and _inside(path, other) for other in kept)]
        for index, path in enumerate(kept):
            os.makedirs(f"{hold}/{index}")
            kernel.mount(path, f"{hold}/{index}", None, MS_BIND | MS_REC)
        kernel.mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        for index, path in enumerate(kept):
            os.makedirs(path, exist_ok=True)
            kernel.mount(f"{hold}/{index}", path, None, MS_MOVE)
    if os.path.isdir(hold):
        for name in os.listdir(hold):
            os.rmdir(f"{hold}/{name}")
        os.rmdir(hold)
    kernel.mount(job_dir, job_dir, None, MS_BIND)
    os.chdir(job_dir)  # the working directory still pointed into the mount that turns read-only next
    writable = []
    for point, flags in _mount_points():
        if point == job_dir:
            continue
        try:
            kernel.mount(None, point, None, MS_BIND | MS_REMOUNT | MS_RDONLY | flags)
        except OSError as error:
            if error.errno != 2:  # a mount point hidden under the tmpfs above is gone, which is the point
                writable.append(point)
    hidden = ", ".join(path for path in job["hide"] if os.path.isdir(path)) or "nothing"
    left = f"; left writable (could not remount): {', '.join(writable)}" if writable else ""
    return f"read-only mount namespace: writable only the job directory{left}; hidden: {hidden}"


def _confine_kernel(job, job_dir):
    """The kernel layers; returns what holds, or raises OSError when namespaces are not available."""
    kernel = _Kernel()
    facts = {}
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        os.chown(job_dir, NOBODY, NOBODY)
        kernel.call("unshare", CLONE_NEWNS | CLONE_NEWNET)
    else:
        kernel.call("unshare", CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
                handle.write(text)
    facts["network"] = "network namespace (no interfaces up: no host reachable, 127.0.0.1 included)"
    facts["filesystem"] = _filesystem(kernel, job, job_dir)
    kernel.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if uid == 0:
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (job["max_processes"],) * 2)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        facts["user"] = f"uid/gid {NOBODY} (nobody), at most {job['max_processes']} processes"
    else:
        kernel.drop_capabilities()
        facts["user"] = f"uid {uid} in a user namespace, no capabilities"
    return facts


# -- Python confinement ------------------------------------------------------------------------------------------
_REFUSED_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "subprocess.Popen",
        "os.kill",
        "os.killpg",
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.cdata",
        "sys.remote_exec",
    }
)
_REFUSED_MODULES = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "multiprocessing", "_multiprocessing"})
_PATH_EVENTS = frozenset(
    {
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.mkdir",
        "os.symlink",
        "os.link",
        "os.chmod",
        "os.chown",
        "os.truncate",
        "os.utime",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.move",
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _audit_hook(job_dir):
    realpath, fspath = os.path.realpath, os.fspath
    root = job_dir.rstrip("/") + "/"

    def outside(path):
        if isinstance(path, int):
            return False  # an open descriptor: only the job's own files are open
        resolved = realpath(fspath(path))
        return not (resolved + "/").startswith(root)

    def hook(event, args, refused=_REFUSED_EVENTS, modules=_REFUSED_MODULES, paths=_PATH_EVENTS):
        if event in refused:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0].partition(".")[0] in modules:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or (flags or 0) & _WRITE_FLAGS
            if writes and path is not None and outside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the job directory is not allowed")
        elif event in paths:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and outside(path):
                    raise PermissionError(f"sandbox: {event} on {path!r} outside the job directory is not allowed")

    sys.addaudithook(hook)


# -- running the program -----------------------------------------------------------------------------------------
class _CappedText(io.TextIOBase):
    """What the program prints, kept up to ``limit`` characters."""

    def __init__(self, limit):
        self.limit, self.parts, self.size = limit, [], 0

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        return len(text)

    def getvalue(self):
        return "".join(self.parts)


def _describe(error):
    return f"{type(error).__name__}: {error}"[:2000]


def _run_tests(job, source):
    """Run the program against each test; returns (status, per-test outcomes, error, printed text)."""
    printed = _CappedText(job["output_chars"])
    sys.stdout = printed
    outcomes = []
    try:
        code = compile(source, "<program>", "exec")
    except (SyntaxError, ValueError) as error:
        return "crash", outcomes, _describe(error), ""
    except MemoryError:
        return "memory", outcomes, "MemoryError while compiling", ""
    namespace = {"__name__": "__program__", "__builtins__": __builtins__}
    if job["kind"] != "stdin":  # this is the sandbox's child: confined before any of the program runs
        try:
            exec(code, namespace)
        except MemoryError:
            return "memory", outcomes, "MemoryError while loading the program", printed.getvalue()
        except BaseException as error:
            return "crash", outcomes, _describe(error), printed.getvalue()
    for test in job["tests"]:
        try:
            if job["kind"] == "stdin":
                output = _run_stdin(code, test, job["output_chars"])
            elif job["kind"] == "assert":
                exec(compile(test, "<test>", "exec"), namespace)
                output = None
            else:
                output = encode(eval(compile(test, "<test>", "eval"), namespace))
            outcomes.append({"output": output})
        except MemoryError:
            return "memory", outcomes, "MemoryError", printed.getvalue()
        except BaseException as error:
            outcomes.append({"error": _describe(error)})
    return "ran", outcomes, "", printed.getvalue()


def _run_stdin(code, stdin, limit):
    """Run the program as ``__main__`` with ``stdin`` as its input; its printed text is the output."""
    out = _CappedText(limit)
    saved = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = io.StringIO(stdin), out
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as stop:
        if stop.code not in (None, 0):
            raise
    finally:
        sys.stdin, sys.stdout = saved
    return out.getvalue()


def main(job_dir):
    job_dir = os.path.realpath(job_dir)
    with open(os.path.join(job_dir, JOB_FILE), encoding="utf-8") as handle:
        job = json.load(handle)
    os.remove(os.path.join(job_dir, JOB_FILE))  # the program never reads its own tests' source back
    isolation = {"limits": _limits(job)}
    if job["isolation"] != "python":
        try:
            isolation.update(_confine_kernel(job, job_dir))
        except OSError as error:
            if job["isolation"] == "kernel":
                raise
            isolation["kernel"] = f"not available ({error})"
    if job["python_guard"]:
        _audit_hook(job_dir)
        isolation["python"] = "audit hook: no processes, signals, sockets, ctypes, or writes outside the job directory"
    result_path = os.path.join(job_dir, RESULT_FILE)
    sys.setrecursionlimit(job["recursion_limit"])
    try:
        status, outcomes, error, printed = _run_tests(job, job["source"])
        result = {"status": status, "outcomes": outcomes, "error": error, "printed": printed}
    except MemoryError:
        result = {"status": "memory", "outcomes": [], "error": "MemoryError", "printed": ""}
    result["isolation"] = isolation
    sys.stdout = sys.__stdout__
    try:
        text = json.dumps(result)
    except (TypeError, ValueError, MemoryError) as error:
        text = json.dumps({"status": "crash", "outcomes": [], "error": _describe(error), "isolation": isolation})
    with open(result_path, "w", encoding="utf-8") as handle:
        handle.write(text)


if __name__ == "__main__":
    main(sys.argv[1])
