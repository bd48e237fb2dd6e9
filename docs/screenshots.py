"""Regenerate the README screenshots: .venv/bin/python docs/screenshots.py [name ...] (runs offscreen, about a
minute: one shot trains LeNet-5 for a few hundred steps to show the Train panel during a run; names: see SHOTS)."""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from builder.insight import advisor
from builder.core import edits  # noqa: E402
from builder.ui.main_window import MainWindow  # noqa: E402

HERE = Path(__file__).parent
app = QApplication.instance() or QApplication([])


def settle(win, until=None, timeout=60.0):
    """Let the event loop run: queued analyses, the table's and the advisor's timers (and ``until``, if given)."""
    deadline = time.monotonic() + timeout
    quiet = time.monotonic() + 0.4
    while time.monotonic() < deadline:
        app.processEvents()
        if until is not None and until():
            break
        if until is None and time.monotonic() > quiet:
            break
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()


def window(template, size=(1440, 900)):
    win = MainWindow()
    win.resize(*size)
    win.show()
    win.open_template(template)
    settle(win)
    return win


def save(win, name, widget=None):
    (widget or win).grab().save(str(HERE / name))
    print("wrote", HERE / name)


def done(win):
    win.doc.undo_stack.setClean()
    win.close()


def expanded(template, expand, select, name, table_mode=0):
    win = window(template)
    win.doc.push(f"Expand {expand}", lambda g: edits.expand(g, expand))
    settle(win)
    win.view.resetTransform()
    win.view.zoom(0.72)
    win.scene.blocks[select].setSelected(True)
    members = [it for bid, it in win.scene.blocks.items() if bid.startswith(expand + ".")]
    rect = members[0].sceneBoundingRect()
    for it in members[1:]:
        rect = rect.united(it.sceneBoundingRect())
    win.view.centerOn(rect.center())
    win.layers.mode.setCurrentIndex(table_mode)
    settle(win)
    model = win.layers.proxy
    for row in range(model.rowCount()):
        if model.index(row, 0).data().startswith("inception ("):
            win.layers.view.scrollTo(model.index(row, 0), win.layers.view.ScrollHint.PositionAtTop)
            break
    win.advisor.refresh()
    settle(win)
    save(win, name)
    done(win)


def overview(template, name, select=None):
    win = window(template)
    win.view.fit()
    if select:
        win.go_to_block(select)
    settle(win)
    save(win, name)
    done(win)


def small_screen():
    win = window("googlenet", (1366, 768))
    win.train_dock.raise_()
    win.say("Saved googlenet", Path.home() / "projects" / "googlenet.json")
    settle(win)
    save(win, "window_1366x768.png")
    done(win)


def training_run():
    win = window("lenet5", (1440, 900))
    win.train_dock.raise_()
    panel = win.trainer
    panel.dataset.setCurrentText("fashion-mnist" if panel.dataset.currentText() == "fashion-mnist" else "synthetic")
    panel.epochs.setValue(4)
    panel.max_steps.setValue(0)
    panel.out.setText(str(Path("/tmp") / "block-builder-screenshot-run"))
    if panel.dataset.currentText() == "synthetic":
        panel.editors["synthetic_size"].setValue(4096)
    panel.start()
    settle(win, until=lambda: len(panel.val_acc) >= 3, timeout=600)
    save(win, "training.png")
    panel.shutdown()
    done(win)


def advisor_preview():
    win = window("googlenet")
    win.advisor_dock.raise_()
    win.advisor.refresh()
    tree = win.advisor.tree
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        if top.childCount() and "5x5" in top.text(0) or (top.childCount() and "asymmetric" in top.text(0)):
            top.setExpanded(True)
            tree.setCurrentItem(top.child(0))
            break
    settle(win)
    save(win, "advisor.png")
    done(win)


def compare_view():
    """Inception-v3 against an edited copy (a wider Mixed_5b, an efficient grid reduction), the first row chosen."""
    win = window("inception_v3")
    edited = win.doc.graph.copy()
    edited.set_params("Mixed_5b", {"pool_features": 64})
    advisor.apply(edited, next(r for r in advisor.refactors(advisor.check(edited)) if r.code == "efficient_reduction"))
    cv = win.comparing.open(win.doc.graph, edited, "Inception-v3", "edited")
    cv.resize(1400, 900)
    settle(win)
    cv.table.selectRow(0)
    settle(win)
    save(win, "compare.png", cv)
    cv.close()
    done(win)


def gallery():
    from builder.ui.dialogs import TemplateGallery
    dlg = TemplateGallery()
    dlg.show()
    deadline = time.monotonic() + 60
    while dlg._pending and time.monotonic() < deadline:
        app.processEvents()
    dlg.select("inception_v3")
    for _ in range(5):
        app.processEvents()
    dlg.grab().save(str(HERE / "gallery.png"))
    print("wrote", HERE / "gallery.png")
    dlg.close()


def figure_panel():
    """GoogLeNet with inception (3a) expanded, its paper figure beside the canvas."""
    win = window("googlenet", size=(1600, 950))
    win.doc.push("Expand inception3a", lambda g: edits.expand(g, "inception3a"))
    settle(win)
    win.show_figure()
    settle(win, until=lambda: not win.figure.stale)
    win.view.fit()
    settle(win)
    save(win, "figure_panel.png")
    done(win)


def explain_panel():
    """LeNet-5: Grad-CAM on c3 for a Fashion-MNIST test image, the image followed through every block."""
    win = window("lenet5", size=(1500, 950))
    win.explain_dock.show()
    win.explain_dock.raise_()
    win.explain.index.setValue(12)
    win.select_block("c3")
    win.explain.follow.setChecked(True)
    win.explain.run()
    settle(win, until=lambda: win.explain.explanation is not None and win.explain.outputs is not None)
    win.figure_dock.hide()
    win.resizeDocks([win.explain_dock], [330], Qt.Vertical)
    win.view.resetTransform()
    win.view.zoom(0.85)
    win.view.centerOn(win.scene.blocks["s4"])
    settle(win)
    save(win, "explain.png")
    done(win)


def search_panel():
    """LeNet-5 with candidates on c1 and c3, a short study on synthetic data in the Search dock."""
    import tempfile
    from builder.search.space import set_choice
    win = window("lenet5", size=(1500, 950))
    win.doc.push("Candidates", lambda g: (set_choice(g, "c1.out_channels", [4, 6, 8]),
                                          set_choice(g, "c3.kernel", [3, 5])))
    win.search_dock.show()
    win.search_dock.raise_()
    p = win.search
    p.trials.setValue(8)
    p.steps.setValue(20)
    p.dataset.setCurrentText("synthetic")
    p.start(out=tempfile.mkdtemp(prefix="bb-search-shot-"))
    settle(win, until=lambda: not p.running, timeout=600)
    p.table.selectRow(0)
    win.select_block("c1")
    win.resizeDocks([win.search_dock], [380], Qt.Vertical)
    settle(win)
    save(win, "search_panel.png")
    done(win)


SHOTS = {
    "googlenet": lambda: expanded("googlenet", "inception3a", "inception3a.branch3.1", "googlenet.png", table_mode=2),
    "inception_v3": lambda: expanded("inception_v3", "Mixed_6b", "Mixed_6b.branch7x7dbl_2", "inception_v3.png",
                                     table_mode=0),
    "overview_googlenet": lambda: overview("googlenet", "overview_googlenet.png"),
    "overview_inception_v3": lambda: overview("inception_v3", "overview_inception_v3.png", select="Mixed_6e"),
    "small_screen": small_screen,
    "advisor": advisor_preview,
    "compare": compare_view,
    "figure_panel": figure_panel,
    "explain": explain_panel,
    "search": search_panel,
    "gallery": gallery,
    "training": training_run,
}

if __name__ == "__main__":  # imported (for window() and settle()), it shoots nothing
    for shot in sys.argv[1:] or SHOTS:  # python docs/screenshots.py [name ...]: only those
        SHOTS[shot]()
