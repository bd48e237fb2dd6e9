"""Project-file fuzzing: mutants of real GoogLeNet, Inception-v3 and ResNet-50 files, each loaded and then taken
through everything a loaded file meets (analysis, save and reload, compile and a forward pass, export to PyTorch
code that is run, the DOT diagram). A mutant passes when it is refused with the project's own error type, or
when every step works (or refuses the graph's errors with CompileError / ExportError) and agrees with the others:
the compiled and the exported network give the analysis's output shape, and a saved file loads back equal.

Anything else is a failure: its traceback's last line and the mutant are kept (``--keep DIR``) to reproduce it.
Mutants run in worker processes, so a crash (a killed process) is counted, never hidden.

    python -m tests.fuzz_projects --count 10000 [--seed 0] [--workers 2] [--keep failures/] [--json]

The test suite runs a few hundred (tests/test_fuzz_projects.py). Forward passes run on torch's meta device:
shapes are checked without computing, so a mutant costs milliseconds.
"""
from __future__ import annotations

import argparse
import json
import keyword
import os
import random
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASES = ("googlenet", "inception_v3", "resnet50")
HOSTILE_TEXT = ["\ud800", "\udfff", "x\udcffy", "\u2028", "\u2029", "\x85", "\x0c", "\x00", "\x1b[31m", "\ufffe",
                "\u200b", "\r\n", '"; }\ndigraph {', "'''", '"""', "\\", "${x}", "<b>", "&amp;", "A" * 5000, "",
                "名前", "🙂", "INPUT_SHAPE", "F", "nn", "torch", "build_model", "self", "Network", "class"]
NUMBERS = [0, 1, 2, 3, 7, -1, -7, 1000, 65536, 2 ** 31, 2 ** 63, 10 ** 400, 0.5, -0.0, 1e-300, 1e308, True,
           False, None, "3", "same", "", [3, 3], [0, 0], [1, 2, 3], [], {}, {"a": 1}]
KINDS = ("flip", "truncate", "splice", "value", "param", "id", "text", "rewire", "cycle_aux", "remove", "duplicate",
         "type", "group", "meta", "port")


def _module_attributes() -> list[str]:
    from torch import nn

    from blocks.names import TORCH_ATTRIBUTES
    names = {n for n in dir(nn.Module)} | set(vars(nn.Module())) | TORCH_ATTRIBUTES
    return sorted(names | set(keyword.kwlist) | {"__init__", "__class__", "__dict__", "x\n", "a.b", "0", "1a",
                                                  "a..b", ".", "a.", "a" * 300, "é", "INPUT_SHAPE", "F", "torch"})


class Mutator:
    def __init__(self, seed: int):
        import templates
        from builder.core import project
        self.rng = random.Random(seed)
        self.bases = {name: project.dumps(templates.build(name)) for name in BASES}
        self.names = _module_attributes()
        from blocks import REGISTRY
        self.types = sorted(s.type_id for s in REGISTRY)

    def json_value(self, depth=0):
        r = self.rng
        pick = r.random()
        if depth > 2 or pick < 0.5:
            return r.choice(NUMBERS + HOSTILE_TEXT[:8])
        if pick < 0.75:
            return [self.json_value(depth + 1) for _ in range(r.randint(0, 3))]
        return {r.choice(["id", "type", "params", "x", "graph", "nodes"]): self.json_value(depth + 1)
                for _ in range(r.randint(0, 3))}

    def mutant(self, i: int) -> tuple[str, str, bytes]:
        """(kind, base, file bytes) of mutant ``i`` (the same for the same seed and i)."""
        r = self.rng = random.Random(f"{self.seed_text}-{i}")
        base = r.choice(BASES)
        kind = r.choice(KINDS)
        text = self.bases[base]
        if kind == "flip":
            raw = bytearray(text.encode())
            for _ in range(r.randint(1, 12)):
                raw[r.randrange(len(raw))] = r.randrange(256)
            return kind, base, bytes(raw)
        if kind == "truncate":
            raw = text.encode()
            return kind, base, raw[:r.randrange(len(raw))]
        if kind == "splice":
            raw = text.encode()
            at = r.randrange(len(raw))
            return kind, base, raw[:at] + json.dumps(self.json_value()).encode() + raw[at:]
        doc = json.loads(text)
        getattr(self, f"_{kind}")(doc)
        return kind, base, json.dumps(doc, ensure_ascii=r.random() < 0.5).encode("utf-8", "surrogatepass")

    seed_text = "0"

    # ------------------------------------------------------------------ structured mutations
    def _block(self, doc):
        return self.rng.choice(doc["blocks"])

    def _value(self, doc):
        r = self.rng
        target = r.choice(["blocks", "edges", "name", "version", "meta", "format"])
        if target in ("blocks", "edges") and doc[target] and r.random() < 0.8:
            item = r.choice(doc[target])
            item[r.choice(sorted(item) + ["extra"])] = self.json_value()
        else:
            doc[target] = self.json_value()

    def _param(self, doc):
        r = self.rng
        for _ in range(r.randint(1, 3)):
            b = self._block(doc)
            params = b.setdefault("params", {})
            from blocks import REGISTRY
            spec = REGISTRY.get(b["type"])
            keys = [p.name for p in spec.params] if spec else list(params)
            if keys:
                params[r.choice(keys)] = r.choice(NUMBERS)

    def _rename(self, doc, old, new):
        for b in doc["blocks"]:
            if b["id"] == old:
                b["id"] = new
        for e in doc["edges"]:
            for end in ("src", "dst"):
                if e[end] == old:
                    e[end] = new

    def _id(self, doc):
        r = self.rng
        b = self._block(doc)
        new = r.choice(self.names)
        if r.random() < 0.3:
            new = f"{r.choice(self.names)}.{new}"
        self._rename(doc, b["id"], new)

    def _text(self, doc):
        r = self.rng
        where = r.choice(["label", "name", "group"])
        t = "".join(r.choice(HOSTILE_TEXT) for _ in range(r.randint(1, 3)))
        if where == "name":
            doc["name"] = t
        elif where == "label":
            self._block(doc)["label"] = t
        else:
            groups = [b for b in doc["blocks"] if b["type"] == "group" or b.get("group")]
            b = r.choice(groups) if groups else self._block(doc)
            if b["type"] == "group":
                b["params"]["name"] = t
            elif b.get("group"):
                b["group"]["id"] = t

    def _rewire(self, doc):
        r = self.rng
        ids = [b["id"] for b in doc["blocks"]]
        for _ in range(r.randint(1, 3)):
            if doc["edges"] and r.random() < 0.5:
                doc["edges"].pop(r.randrange(len(doc["edges"])))
            else:
                doc["edges"].append({"src": r.choice(ids), "dst": r.choice(ids),
                                     "port": r.choice(["x", "in0", "in1", "in7", "a", "b"])})

    def _cycle_aux(self, doc):
        """A wire from a late block back into an early one that feeds an aux output (or any early block)."""
        r = self.rng
        ids = [b["id"] for b in doc["blocks"]]
        aux = [b["id"] for b in doc["blocks"] if b["type"] == "output" and b.get("params", {}).get("role") == "aux"]
        feeding = [e["src"] for e in doc["edges"] if e["dst"] in aux]
        dst = r.choice(feeding) if feeding else r.choice(ids[: max(2, len(ids) // 3)])
        src = r.choice(ids[len(ids) // 2:])
        doc["edges"].append({"src": src, "dst": dst, "port": r.choice(["x", "in5", "in1"])})

    def _remove(self, doc):
        b = doc["blocks"].pop(self.rng.randrange(len(doc["blocks"])))
        if self.rng.random() < 0.5:
            doc["edges"] = [e for e in doc["edges"] if b["id"] not in (e["src"], e["dst"])]

    def _duplicate(self, doc):
        b = json.loads(json.dumps(self._block(doc)))
        b["id"] = self.rng.choice([b["id"], b["id"] + "_copy", b["id"] + ".inner"])
        doc["blocks"].append(b)

    def _type(self, doc):
        self._block(doc)["type"] = self.rng.choice(self.types + ["nope", "", "Conv2d"])

    def _group(self, doc):
        r = self.rng
        b = self._block(doc)
        choice = r.random()
        if choice < 0.4:
            b["group"] = {"id": r.choice(self.names), "type": r.choice(self.types), "params": {}}
        elif choice < 0.7 and b["type"] != "group":
            b["type"] = "group"
            inner = r.choice(self.names)
            b["params"] = {"name": r.choice(HOSTILE_TEXT), "graph": {
                "nodes": [[inner, r.choice(["relu", "conv2d", "batchnorm2d", "maxpool2d"]), {}]],
                "edges": [["@in", inner, "x"]], "output": inner}}
        else:
            b["group"] = self.json_value()

    def _meta(self, doc):
        meta = doc.setdefault("meta", {})
        meta[self.rng.choice(["recipe", "renamed_blocks", "x", "input", "notes"])] = self.json_value()

    def _port(self, doc):
        if doc["edges"]:
            e = self.rng.choice(doc["edges"])
            e["port"] = self.rng.choice(["in\u00b2", "in-1", "in01", "in99999999999999999999", "x\n", "", "in 1",
                                         "in1", "in0", "y"])


# ---------------------------------------------------------------------- what a loaded mutant must survive

def _meta_forward(model, shape):
    import torch
    with torch.device("meta"):
        return model(torch.empty(2, *shape))


def check(data: bytes, where: Path) -> str:
    """'refused' or 'ok'; raises on anything else."""
    import torch

    from builder.core import project
    from builder.core.analysis import analyze
    from builder.backend.compiler import compile_graph
    from builder.core.errors import CompileError, ProjectError
    from exports.diagram import to_dot
    from exports.errors import ExportError
    from exports.pytorch import generate

    where.write_bytes(data)
    try:
        graph = project.load(where)
    except ProjectError as e:
        assert str(where) in str(e), f"the error does not name the file: {e}"
        return "refused"
    analysis = analyze(graph)
    again = where.with_name("again.json")
    project.save(graph, again)
    assert project.load(again).signature() == graph.signature(), "a saved file loads back different"
    dot = to_dot(graph, analysis)
    assert all(c.isprintable() or c == "\n" for c in dot), "the DOT text holds unprintable characters"
    try:
        with torch.device("meta"):
            model = compile_graph(graph, analysis).eval()
    except CompileError:
        assert analysis.errors, "CompileError without an analysis error"
        try:
            generate(graph, analysis)
        except (CompileError, ExportError):
            return "ok"
        raise AssertionError("the exporter wrote code for a graph with errors")
    import networkx as nx
    used = set(analysis.outputs).union(*(nx.ancestors(graph.g, o) for o in analysis.outputs))
    feeding = [e for e in analysis.errors if e.block in used or e.block is None]
    assert not feeding, f"compiled a graph with errors in blocks that feed an output: {feeding[:2]}"
    want = analysis.blocks[analysis.outputs[0]].out_shape
    shape = model.input_shapes[0]
    out = _meta_forward(model, shape)
    assert tuple(out.shape[1:]) == tuple(want), f"compiled output {tuple(out.shape)} but analysis says {want}"
    source = generate(graph, analysis)
    namespace: dict = {"__name__": "fuzzed_export"}
    exec(compile(source, "<exported>", "exec"), namespace)  # our generator's code: user text only via repr()
    with torch.device("meta"):
        exported = namespace["build_model"]().eval()
    assert set(exported.state_dict()) == set(model.state_dict()), "exported state_dict keys differ"
    out = _meta_forward(exported, shape)
    assert tuple(out.shape[1:]) == tuple(want), f"exported output {tuple(out.shape)} but analysis says {want}"
    return "ok"


def _signature(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    frame = next((f for f in reversed(tb) if str(ROOT) in f.filename and "fuzz_projects" not in f.filename),
                 tb[-1] if tb else None)
    at = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
    return f"{type(exc).__name__} at {at}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def run_chunk(seed: int, start: int, stop: int, keep: str | None) -> dict:
    """Mutants start..stop-1, in this process."""
    import tempfile
    m = Mutator(seed)
    m.seed_text = str(seed)
    counts, kinds, failures = Counter(), Counter(), []
    with tempfile.TemporaryDirectory() as d:
        where = Path(d) / "mutant.json"
        for i in range(start, stop):
            kind, base, data = m.mutant(i)
            kinds[kind] += 1
            try:
                counts[check(data, where)] += 1
            except Exception as e:  # noqa: BLE001  what the fuzzer is for
                counts["failed"] += 1
                failures.append({"mutant": i, "kind": kind, "base": base, "error": _signature(e)})
                if keep:
                    Path(keep).mkdir(parents=True, exist_ok=True)
                    (Path(keep) / f"mutant-{seed}-{i}.json").write_bytes(data)
    return {"counts": dict(counts), "kinds": dict(kinds), "failures": failures}


def run(count: int, seed: int = 0, workers: int = 2, chunk: int = 250, keep: str | None = None,
        timeout_s: float = 1800) -> dict:
    """Every mutant, in worker processes of ``chunk`` mutants each (a crashed worker is counted as killed)."""
    chunks = [(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    totals, kinds, failures, killed = Counter(), Counter(), [], []
    running: list = []
    t0 = time.monotonic()
    while chunks or running:
        while chunks and len(running) < workers:
            a, b = chunks.pop(0)
            cmd = [sys.executable, "-m", "tests.fuzz_projects", "--chunk", str(a), str(b), "--seed", str(seed)]
            if keep:
                cmd += ["--keep", keep]
            running.append(((a, b), subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE, text=True)))
        (a, b), proc = running.pop(0)
        try:
            out, err = proc.communicate(timeout=max(timeout_s - (time.monotonic() - t0), 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode != 0:
            killed.append({"mutants": [a, b], "returncode": proc.returncode, "stderr": err[-2000:]})
            continue
        part = json.loads(out.strip().splitlines()[-1])
        totals.update(part["counts"])
        kinds.update(part["kinds"])
        failures += part["failures"]
    return {"mutants": count, "seed": seed, "seconds": round(time.monotonic() - t0, 1), **dict(totals),
            "killed_processes": len(killed), "kinds": dict(kinds),
            "distinct_failures": dict(Counter(f["error"] for f in failures).most_common()),
            "failures": failures[:50], "killed": killed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", help="write every failing mutant to this folder")
    ap.add_argument("--json", action="store_true", help="print the whole report as JSON")
    ap.add_argument("--chunk", nargs=2, type=int, help=argparse.SUPPRESS)  # a worker: mutants A..B-1
    args = ap.parse_args(argv)
    if args.chunk:
        print(json.dumps(run_chunk(args.seed, *args.chunk, args.keep)), flush=True)
        return 0
    report = run(args.count, args.seed, args.workers, keep=args.keep)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{report['mutants']} mutants (seed {args.seed}) in {report['seconds']} s: "
              f"{report.get('refused', 0)} refused with the project's error, {report.get('ok', 0)} loaded and went "
              f"through analysis, save, compile and export, {report.get('failed', 0)} failed, "
              f"{report['killed_processes']} worker processes killed")
        for error, n in report["distinct_failures"].items():
            print(f"  {n:5d}  {error}")
    return 0 if not report.get("failed") and not report["killed_processes"] else 1


if __name__ == "__main__":
    sys.exit(main())
