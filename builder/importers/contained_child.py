"""The child process of :mod:`builder.importers.contained`: it imports the user's factory, writes what it found
(or what went wrong) into the folder it is given, and exits at once, whatever the user's code does."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..core.errors import ModelImportError
from ..core.files import write_bytes
from .contained import ERROR, RESULT, bound_memory


def _child(job: dict) -> int:
    """In the child: import, write the result or what went wrong; whatever the user's code does."""
    bound_memory(job["memory_gib"])
    out = Path(job["out"])
    source = job["source"]

    def fail(problems):
        write_bytes(out / ERROR, json.dumps({"source": source, "problems": problems}).encode("utf-8"))
    try:
        from . import import_source, progress
        from .contained import PROGRESS
        progress.to_file(out / PROGRESS)
        imported = import_source(source, tuple(job["input_shape"]) if job["input_shape"] else None,
                                 weights=job["weights"], contained=False)
        from ..core import project
        from ..train.weights import save_tensors
        save_tensors(imported.state, out / "state.safetensors")
        doc = {"project": project.to_dict(imported.graph), "keys": list(imported.state),
               "notes": [str(n) for n in imported.notes]}
        write_bytes(out / RESULT, json.dumps(doc).encode("utf-8"))
    except ModelImportError as e:
        fail([[p.kind, p.path, p.why] for p in e.problems])
    except SystemExit as e:
        fail([["source", source, f"the model's code called sys.exit({e.code!r}) during the import"]])
    except MemoryError:
        fail([["source", source, "ran out of memory during the import (--memory or BLOCK_BUILDER_IMPORT_MEMORY "
                                 "sets the limit)"]])
    except BaseException as e:  # noqa: BLE001  the user's own code: anything it raises is its message
        fail([["source", source, f"{type(e).__name__} during the import: {str(e).splitlines()[0] if str(e) else ''}"
               .rstrip(": ")]])
    return 0


if __name__ == "__main__":
    os._exit(_child(json.loads(sys.argv[1])))  # exit at once: the user's atexit handlers and threads do not run
