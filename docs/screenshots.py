"""Regenerate the README screenshots: .venv/bin/python docs/screenshots.py (runs offscreen)."""
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from builder import edits
from builder.ui.main_window import MainWindow  # noqa: E402

HERE = Path(__file__).parent


def shot(template, expand, select, name, table_mode=0):
    win = MainWindow()
    win.show()
    win.open_template(template)
    win.doc.push(f"Expand {expand}", lambda g: edits.expand(g, expand))
    app.processEvents()
    win.view.resetTransform()
    win.view.zoom(0.72)
    item = win.scene.blocks[select]
    item.setSelected(True)
    members = [it for bid, it in win.scene.blocks.items() if bid.startswith(expand + ".")]
    rect = members[0].sceneBoundingRect()
    for it in members[1:]:
        rect = rect.united(it.sceneBoundingRect())
    win.view.centerOn(rect.center())
    win.layers.mode.setCurrentIndex(table_mode)
    app.processEvents()
    model = win.layers.proxy
    for row in range(model.rowCount()):
        if model.index(row, 0).data().startswith("inception ("):
            win.layers.view.scrollTo(model.index(row, 0), win.layers.view.ScrollHint.PositionAtTop)
            break
    win.advisor.refresh()  # the advisor's badges, without waiting for its timer
    for _ in range(5):
        app.processEvents()
    win.grab().save(str(HERE / name))
    win.doc.undo_stack.setClean()
    win.close()


app = QApplication.instance() or QApplication([])
shot("googlenet", "inception3a", "inception3a.branch3.1", "googlenet.png", table_mode=2)
shot("inception_v3", "Mixed_6b", "Mixed_6b.branch7x7dbl_2", "inception_v3.png", table_mode=0)
print("wrote", HERE / "googlenet.png", HERE / "inception_v3.png")
