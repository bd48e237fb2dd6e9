"""Fuzzed project files opened in the window (issue 23): each one opens (its blocks on the canvas, as the file
has them) or is refused with one message naming the file, the network shown before kept; no exception reaches
the event loop (pytest-qt fails a test on one)."""
import pytest
from PySide6.QtWidgets import QMessageBox

from builder.ui import opening
from fuzz_projects import Mutator

pytestmark = pytest.mark.timeout(300)


def test_fuzzed_files_open_or_give_one_message_in_the_window(qtbot, make_window, tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(
        lambda parent, title, text, *a, **k: said.append((title, text)) or QMessageBox.Ok))
    win = make_window(size=(1200, 800))
    mutants = Mutator(23)
    outcomes = {"opened": 0, "refused": 0}
    for i in range(36):
        kind, base, data = mutants.mutant(i)
        path = tmp_path / f"mutant{i}.json"
        path.write_bytes(data)
        said.clear()
        before = win.doc.graph
        done = []
        win.opened.connect(lambda: done.append(1))
        win.open_path(str(path), ask=False)
        if path.stat().st_size > opening.BIG_FILE:  # read beside the event loop: opened, or its message
            qtbot.waitUntil(lambda: done or said, timeout=60_000)
        win.opened.disconnect()
        if said:
            assert len(said) == 1, (kind, base, said)
            title, text = said[0]
            assert title == "Cannot open the file" and "Traceback" not in text, (kind, base, text)
            assert path.name in text or str(path) in text, (kind, base, text)
            assert win.doc.graph is before, (kind, base)
            outcomes["refused"] += 1
        else:
            assert done, (kind, base)
            g = win.doc.graph
            assert g is not before and win.doc.path == path
            assert set(win.scene.blocks) == set(g.ids()), (kind, base)  # every block drawn, nothing else
            assert len(win.scene.wires) == g.g.number_of_edges(), (kind, base)
            outcomes["opened"] += 1
        win.doc.undo_stack.setClean()
    print(outcomes)
    assert outcomes["opened"] >= 5 and outcomes["refused"] >= 5, outcomes  # both paths were taken
