import json
import os

import pytest

import templates
from builder.core import project
from builder.core.analysis import analyze
from builder.core.errors import ProjectError


@pytest.mark.parametrize("name", list(templates.TEMPLATES))
def test_save_load_save_is_byte_identical(tmp_path, name):
    g = templates.build(name)
    p1, p2 = tmp_path / "a.json", tmp_path / "b.json"
    project.save(g, p1)
    g2 = project.load(p1)
    project.save(g2, p2)
    assert p1.read_bytes() == p2.read_bytes()
    assert g2.signature() == g.signature()
    a, b = analyze(g), analyze(g2)
    assert (a.training.params, a.training.macs) == (b.training.params, b.training.macs)


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    project.save(templates.build("lenet5"), path)
    before = path.read_bytes()

    import builtins

    from builder.core import files
    real_open = builtins.open

    class Boom:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])  # half of it reaches the disk ...
            raise OSError(28, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(files, "open", lambda p, mode: Boom(real_open(p, mode)), raising=False)
    with pytest.raises(ProjectError, match="No space left on device.*unchanged"):
        project.save(templates.build("googlenet"), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]  # no temporary file left behind
    assert project.load(path).name == "LeNet-5"


def test_interrupted_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    project.save(templates.build("lenet5"), path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(ProjectError):
        project.save(templates.build("vgg11"), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 1


def _write(tmp_path, text, name="bad.json"):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_truncated_file(tmp_path):
    good = project.dumps(templates.build("googlenet"))
    p = _write(tmp_path, good[: len(good) // 2])
    with pytest.raises(ProjectError) as e:
        project.load(p)
    assert str(p) in str(e.value) and "truncated" in str(e.value)


@pytest.mark.parametrize("text,needle", [
    ("", "empty"),
    ("{", "not valid JSON"),
    ("[1, 2]", "top level is a JSON list"),
    ('{"format": "something-else"}', "not a project file"),
    ('{"format": "block-builder-project", "version": 99, "blocks": [], "edges": []}', "newer Block Builder"),
    ('{"format": "block-builder-project", "version": "2", "blocks": [], "edges": []}', "positive integer"),
    ('{"format": "block-builder-project", "version": 2, "blocks": {}, "edges": []}', "'blocks' must be a list"),
    ('{"format": "block-builder-project", "version": 2, "blocks": [{"id": "a", "type": "warp_drive"}], '
     '"edges": []}', "unknown block type 'warp_drive'"),
    ('{"format": "block-builder-project", "version": 2, "blocks": [{"id": "a", "type": "conv2d", '
     '"params": {"kernel": 1000000000}}], "edges": []}', "kernel"),
    ('{"format": "block-builder-project", "version": 2, "blocks": [{"id": "a", "type": "relu", "pos": [NaN, 1]}],'
     ' "edges": []}', "NaN"),
    ('{"format": "block-builder-project", "version": 2, "blocks": [{"id": "os.system(1)", "type": "relu"}], '
     '"edges": []}', "block id"),
    ('{"format": "block-builder-project", "version": 2, "blocks": [{"id": "a", "type": "relu"}], '
     '"edges": [{"src": "a", "dst": "zzz", "port": "x"}]}', "dst 'zzz' is not a block"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_bad_files_give_one_clear_error(tmp_path, text, needle):
    p = _write(tmp_path, text)
    with pytest.raises(ProjectError) as e:
        project.load(p)
    assert needle in str(e.value)
    assert str(e.value).startswith(str(p))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        project.load(tmp_path / "nope.json")
    with pytest.raises(ProjectError, match="folder"):
        project.load(tmp_path)


def test_version_1_files_are_migrated(tmp_path):
    old = {"format": "block-builder-project", "version": 1, "name": "old",
           "nodes": [{"id": "i", "type": "input", "params": {"channels": 1, "height": 8, "width": 8}, "x": 1, "y": 2},
                     {"id": "c", "type": "conv2d", "params": {"out_channels": 4, "kernel": 3}, "x": 3, "y": 4},
                     {"id": "o", "type": "output"}],
           "links": [["i", "c", "x"], ["c", "o", "x"]]}
    g = project.load(_write(tmp_path, json.dumps(old)))
    assert g.block("c").pos == (3.0, 4.0)
    a = analyze(g)
    assert a.ok and a.blocks["o"].out_shape == (4, 6, 6)
    assert json.loads(project.dumps(g))["version"] == project.VERSION


def test_loaded_cycle_is_kept_and_reported(tmp_path):
    doc = {"format": "block-builder-project", "version": 2, "name": "c", "meta": {},
           "blocks": [{"id": "i", "type": "input"}, {"id": "a", "type": "add"}, {"id": "r", "type": "relu"},
                      {"id": "o", "type": "output"}],
           "edges": [{"src": "i", "dst": "a", "port": "in0"}, {"src": "r", "dst": "a", "port": "in1"},
                     {"src": "a", "dst": "r", "port": "x"}, {"src": "r", "dst": "o", "port": "x"}]}
    g = project.load(_write(tmp_path, json.dumps(doc)))
    assert {e.block for e in analyze(g).errors if e.code == "cycle"} == {"a", "r"}


def test_text_that_no_file_can_hold_is_replaced_so_a_save_never_fails(tmp_path):
    """A lone surrogate (\\udfff) in a label, a name or meta loaded, but made every later save fail."""
    import json as _json
    doc = _json.loads(project.dumps(templates.build("lenet5")))
    doc["name"] = "net \udfff"
    doc["meta"]["note"] = "x\ud800y"
    doc["blocks"][1]["label"] = "conv \udfff one"
    f = tmp_path / "s.json"
    f.write_text(_json.dumps(doc))  # ASCII escapes: a valid JSON file
    g = project.load(f)
    assert g.name == "net \ufffd" and g.meta["note"] == "x\ufffdy" and g.blocks()[1].label == "conv \ufffd one"
    g.set_label("c1", "edit \udc80")
    assert g.block("c1").label == "edit \ufffd"
    g.name = "renamed \udfff"  # even set directly, the save cleans it
    project.save(g, tmp_path / "out.json")
    assert project.load(tmp_path / "out.json").name == "renamed \ufffd"


def test_a_number_too_large_for_a_float_in_meta_is_refused_on_load(tmp_path):
    f = tmp_path / "big.json"
    f.write_text(project.dumps(templates.build("lenet5")).replace('"meta": {', '"meta": {"scale": 1e400, ', 1))
    with pytest.raises(ProjectError, match=r"meta.scale is inf, not a finite number") as e:
        project.load(f)
    assert str(f) in str(e.value)


def test_saves_honour_the_umask_and_clear_leftovers_of_interrupted_saves(tmp_path):
    f = tmp_path / "m.json"
    old = os.umask(0o022)
    try:
        project.save(templates.build("lenet5"), f)
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    os.chmod(f, 0o640)
    leftover = tmp_path / ".m.json.abc123.tmp"  # what a kill between write and rename leaves
    leftover.write_text("{half")
    other = tmp_path / ".other.json.xyz.tmp"  # another file's: not ours to remove
    other.write_text("{")
    project.save(templates.build("lenet5"), f)
    assert f.stat().st_mode & 0o777 == 0o640  # the existing file keeps its mode
    assert not leftover.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.xyz.tmp", "m.json"]


KILLER = r"""
import json, os, random, select, signal, sys, time
from pathlib import Path
import templates
from builder.core import project
target, kills = Path(sys.argv[1]), int(sys.argv[2])
a, b = templates.build("inception_v3"), templates.build("googlenet")
versions = {project.dumps(a), project.dumps(b)}
os.umask(0o022)
project.save(a, target)
rng = random.Random(0)
corrupt = mid_save = most_temps = 0
temps = lambda: list(target.parent.glob(f".{target.name}.*.tmp"))
for i in range(kills):
    ready, started = os.pipe()
    pid = os.fork()
    if pid == 0:  # the saver: saves the two versions in turn until it is killed, saying when each begins
        try:
            os.close(ready)
            k = 0
            while True:
                os.write(started, b"s")
                project.save((a, b)[k % 2], target)
                k += 1
        finally:
            os._exit(1)
    os.close(started)
    for _ in range(rng.randint(1, 4)):  # the n-th save has begun
        assert select.select([ready], [], [], 30)[0], "the saver never started a save"
        os.read(ready, 1)
    if i % 2:  # every other kill waits (bounded) for the temporary file: between its write and the rename
        deadline = time.monotonic() + 30
        while not temps() and time.monotonic() < deadline:
            pass
    os.kill(pid, signal.SIGKILL)
    os.close(ready)
    os.waitpid(pid, 0)
    corrupt += target.read_text() not in versions
    mid_save += bool(temps())
    most_temps = max(most_temps, len(temps()))
project.save(a, target)  # the next save clears what the killed ones left
print(json.dumps({"corrupt": corrupt, "kills_mid_save": mid_save, "most_temp_files": most_temps,
                  "temp_files_after_next_save": len(temps()), "mode": oct(target.stat().st_mode & 0o777),
                  "other_files": sorted(p.name for p in target.parent.iterdir() if p != target)}))
"""


@pytest.mark.timeout(300)
def test_a_hundred_kills_during_save(tmp_path):
    """SIGKILL a process while it saves, 100 times: the file is always the old or the new version, the next save
    leaves no temp file behind, and the file's mode is 0644 under umask 022."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "work").mkdir()
    r = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "work" / "net.json"), "100"], cwd=root,
                       capture_output=True, text=True, timeout=280, env=dict(os.environ, PYTHONPATH=str(root)))
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    print(result)
    assert result["corrupt"] == 0
    assert result["kills_mid_save"] > 0  # some kills did land between writing and renaming
    assert result["temp_files_after_next_save"] == 0 and result["other_files"] == []
    assert result["mode"] == "0o644"


def test_meta_nested_too_deeply_is_one_message_not_a_recursion_error(tmp_path):
    import json

    import templates
    from builder.core import project
    from builder.core.errors import ProjectError
    doc = project.to_dict(templates.build("lenet5"))
    for depth, ok in ((project.MAX_META_DEPTH - 1, True), (900, False)):
        doc["meta"] = cur = {}
        for _ in range(depth):
            cur["n"] = {}
            cur = cur["n"]
        path = tmp_path / f"deep{depth}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        if ok:
            project.save(project.load(path).copy(), tmp_path / "again.json")  # read, copied and saved
            continue
        with pytest.raises(ProjectError) as e:
            project.load(path)
        assert str(e.value).startswith(f"{path}: meta.n.n.n") and "nested deeper than 64 levels" in str(e.value)
