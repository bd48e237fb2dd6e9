"""Run history: every training run leaves ``run.json`` in its folder (settings, the graph it trained, its totals,
its curves and final metrics), so runs can be listed, compared and their graph reopened (no Qt, no torch)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .core import project
from .core.errors import ProjectError

RUN_FILE = "run.json"
FORMAT = "block-builder-run"


class RunRecorder:
    """Collects a run's events and keeps ``run.json`` up to date (written atomically at start, every epoch and at
    the end), so a run that is killed still leaves its record up to its last epoch."""

    def __init__(self, folder, graph, settings: dict, totals: dict, resume: bool = False):
        self.path = Path(folder) / RUN_FILE
        self.started = False  # nothing is written before training starts: a run that cannot start (a corrupt
        #                       checkpoint to resume from) leaves the folder's record as it was
        self.doc = {"format": FORMAT, "version": 1, "started": time.time(), "finished": None, "status": "running",
                    "name": graph.name, "settings": settings, "totals": totals, "project": project.to_dict(graph),
                    "epochs": [], "steps": [], "final": None, "error": None}
        earlier = find_runs(folder)[:1] if resume else []
        if earlier and earlier[0].folder == self.path.parent:  # a resumed run continues its record
            for key in ("epochs", "steps", "started"):
                if isinstance(earlier[0].doc.get(key), type(self.doc[key])):
                    self.doc[key] = earlier[0].doc[key]

    def write(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            project.atomic_write(self.path, json.dumps(self.doc))
        except (OSError, ProjectError):
            pass  # the run itself matters more than its record; its checkpoints say where they are

    def event(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "step":
            self.doc["steps"].append([e["step"], e["loss"]])
        elif kind == "epoch":
            self.doc["epochs"] = [x for x in self.doc["epochs"] if x.get("epoch") != e.get("epoch")]
            self.doc["epochs"].append({k: e[k] for k in ("epoch", "train_loss", "train_accuracy", "val_loss",
                                                           "val_accuracy") if k in e})
            self.write()
        elif kind == "start":
            self.started = True
            self.doc["start"] = {k: e[k] for k in ("device", "dataset", "train_size", "val_size", "total_steps",
                                                   "params", "trainable_params") if k in e}
            self.write()
        elif kind == "done":
            self.doc.update(final={k: v for k, v in e.items() if k != "event"}, finished=time.time(),
                            status="stopped" if e.get("stopped") else "done")
            self.write()

    def failed(self, message: str) -> None:
        """A run that failed: recorded when it had started, or when the folder has no record yet."""
        self.doc.update(status="error", error=message, finished=time.time())
        if self.started or not self.path.exists():
            self.write()


@dataclass
class Run:
    folder: Path
    doc: dict

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def val_accuracy(self) -> float | None:
        final = self.doc.get("final") or {}
        if isinstance(final.get("val_accuracy"), (int, float)):
            return final["val_accuracy"]
        epochs = self.doc.get("epochs") or []
        return epochs[-1].get("val_accuracy") if epochs else None

    def curve(self, key: str = "val_accuracy") -> tuple[list, list]:
        pts = [(e["epoch"], e[key]) for e in self.doc.get("epochs") or [] if isinstance(e, dict) and key in e]
        return [p[0] for p in pts], [p[1] for p in pts]

    def graph(self):
        """The graph this run trained (a ProjectError if the record's copy cannot be read)."""
        return project.from_dict(self.doc.get("project"), str(self.folder / RUN_FILE))

    def summary(self) -> str:
        s = self.doc.get("settings") or {}
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.doc.get("started") or 0))
        acc = self.val_accuracy
        return (f"{self.name}: {self.doc.get('name', '?')}, {s.get('recipe', '?')}, lr {s.get('lr') or 'recipe'}, "
                f"{len(self.doc.get('epochs') or [])} epochs, {self.doc.get('status', '?')}, "
                + (f"val accuracy {acc * 100:.2f}%" if isinstance(acc, (int, float)) else "no accuracy yet")
                + f" ({when})")


RUNS_ROOT = "runs"  # where runs go unless told (train.settings.run_folder makes their folders)


def latest_run_folder(name: str, root=RUNS_ROOT) -> Path | None:
    """The newest run of the network ``name`` under ``root`` (what ``--resume`` without ``--out`` continues)."""
    runs = [r for r in find_runs(root) if r.doc.get("name") == name]
    return runs[0].folder if runs else None


def find_runs(folder) -> list[Run]:
    """Every run record in ``folder`` and the folders one and two levels below it, newest first; records that are
    not readable are left out."""
    root = Path(folder)
    paths = [root / RUN_FILE] + sorted(root.glob(f"*/{RUN_FILE}")) + sorted(root.glob(f"*/*/{RUN_FILE}"))
    runs = [r for r in map(read_run, (p.parent for p in paths)) if r is not None]
    runs.sort(key=lambda r: r.doc.get("started") or 0, reverse=True)
    return runs


def read_run(folder) -> Run | None:
    """The run recorded in ``folder`` (its ``run.json``), or None when there is none or it cannot be read."""
    p = Path(folder) / RUN_FILE
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return Run(p.parent, doc) if isinstance(doc, dict) and doc.get("format") == FORMAT else None
