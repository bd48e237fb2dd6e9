"""A user's own model factory (``package.module:callable``) or an ONNX file imported in a child process: the
factory's import, its call and the trace of its forward (or the file's checks, folding and conversion) run there,
bounded in time and memory, so code that loops, sleeps, allocates without end, crashes or ends the process
(``sys.exit``, ``os._exit``), or a file made to keep the importer busy, becomes one message and never takes the
caller with it.

The child writes what it found as files, never pickles: the graph as a project document (JSON), its weights in
safetensors, its notes as JSON; or a JSON record of what went wrong. Limits: ``BLOCK_BUILDER_IMPORT_TIMEOUT``
(seconds, default 120) and ``BLOCK_BUILDER_IMPORT_MEMORY`` (GiB of address space, default 16), or the arguments."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..core.errors import ImportProblem, ModelImportError
from . import progress

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_GIB = 16.0
RESULT, ERROR, PROGRESS = "result.json", "error.json", "progress.txt"
_ROOT = Path(__file__).resolve().parents[2]


def limits(timeout_s=None, memory_gib=None) -> tuple[float, float]:
    """The limits that apply: the arguments, else the environment's, else the defaults."""
    def pick(value, env, default):
        if value is not None:
            return float(value)
        try:
            return float(os.environ.get(env, default))
        except ValueError:
            return default
    return (pick(timeout_s, "BLOCK_BUILDER_IMPORT_TIMEOUT", DEFAULT_TIMEOUT_S),
            pick(memory_gib, "BLOCK_BUILDER_IMPORT_MEMORY", DEFAULT_MEMORY_GIB))


def import_contained(source: str, input_shape=None, weights=None, timeout_s=None, memory_gib=None):
    """:func:`builder.importers.import_source` of ``source`` run in a child process; an
    :class:`~builder.importers.torch_module.Imported`, or a :class:`ModelImportError` saying what happened."""
    timeout, memory = limits(timeout_s, memory_gib)
    with tempfile.TemporaryDirectory(prefix="bb-import-") as out:
        job = {"source": source, "input_shape": list(input_shape) if input_shape else None,
               "weights": str(weights) if weights is not None else None, "out": out, "memory_gib": memory}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT)] + [p for p in sys.path if p]),
               "PYTHONUNBUFFERED": "1"}
        err_path = Path(out) / "stderr.txt"
        try:
            with open(err_path, "wb") as err_file:
                proc = subprocess.Popen([sys.executable, "-m", "builder.importers.contained_child", json.dumps(job)],
                                        cwd=os.getcwd(), env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True)
        except OSError as e:
            raise _failure(source, f"cannot start the process that imports it: {e.strerror or e}") from None
        deadline = time.monotonic() + timeout
        while True:  # the child's steps shown as this process's own while it works
            try:
                proc.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                progress.follow(Path(out) / PROGRESS)
                if time.monotonic() >= deadline:
                    _kill(proc)
                    why = "is the file this big, or made to keep the importer busy?" if source.endswith(".onnx") \
                        else "does the factory or the model's forward loop or wait?"
                    raise _failure(source, f"did not finish within {timeout:g} s ({why}); --timeout or "
                                           "BLOCK_BUILDER_IMPORT_TIMEOUT sets the limit") from None
        err = err_path.read_bytes()[-20000:].decode("utf-8", "replace")
        return _read(source, Path(out), proc.returncode, err, memory)


def bound_memory(memory_gib: float) -> None:
    """Limit this process's address space (the child calls it first, before the user's code is imported)."""
    try:
        import resource
        limit = int(memory_gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not POSIX, or a limit below what is in use: run unbounded
        pass


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the factory's own children too
    except (OSError, AttributeError):
        proc.kill()
    proc.wait()


def _failure(source: str, why: str) -> ModelImportError:
    return ModelImportError(source, [ImportProblem("source", source, why)])


def _report(path: Path):
    """What the child wrote (each file whole: it writes atomically), or None when it wrote nothing readable (it
    was killed, or ran out of memory, before it finished)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read(source: str, out: Path, code: int, err: str, memory_gib: float):
    doc = _report(out / ERROR)
    if doc is not None:
        raise ModelImportError(doc["source"], [ImportProblem(*p) for p in doc["problems"]])
    doc = _report(out / RESULT) if code == 0 else None
    if doc is not None:
        from ..core import project
        from ..train.weights import load_tensors
        from .torch_module import Imported
        graph = project.from_dict(doc["project"], f"the import of {source}")
        tensors = load_tensors(out / "state.safetensors")  # (safetensors sorts its keys: the model's order back)
        return Imported(graph, {k: tensors[k] for k in doc["keys"]}, doc["notes"])
    last = next((line for line in reversed(err.strip().splitlines()) if line.strip()), "")
    said = f" (its last words: {last[:300]})" if last else ""
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if -code == signal.SIGABRT and "bad_alloc" in last:  # C++'s allocator gave up: the memory limit
            raise _failure(source, f"ran out of memory during the import (the limit is {memory_gib:g} GiB; "
                                   f"{last.strip()[:200]})")
        hint = f" (out of memory? the limit is {memory_gib:g} GiB)" if -code in (signal.SIGKILL, signal.SIGSEGV) \
            else ""
        raise _failure(source, f"the import was ended by signal {name}{hint}{said}")
    if any(w in last.lower() for w in ("memory", "alloc")):  # a library that gave up (OpenBLAS, a C allocator)
        raise _failure(source, f"ran out of memory during the import (exit status {code}; the limit is "
                               f"{memory_gib:g} GiB: --memory or BLOCK_BUILDER_IMPORT_MEMORY sets it){said}")
    raise _failure(source, f"the model's code ended the import (exit status {code}, e.g. sys.exit or os._exit) "
                           f"before it finished{said}")
