"""Start the desktop app."""
from __future__ import annotations

import os
import sys


def main(file: str | None = None, template: str | None = None, argv=None) -> int:
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    install_error_dialog()
    app.setApplicationName("Block Builder")
    app.setOrganizationName("BlockBuilder")
    win = MainWindow()
    if file:
        win.open_path(file, ask=False)
    elif template:
        win.open_template(template)
    else:
        win.new_file()
    win.show()
    if os.environ.get("BLOCK_BUILDER_STARTUP_PROBE"):
        _probe(app, win)
    else:
        win.offer_recovery()
    return app.exec()


def _probe(app, win):
    """benchmarks/bench_startup.py: one JSON line when the canvas has first painted (the wall-clock time, whether
    torch was loaded, the memory in use), then quit, saying when the quit began."""
    import json
    import time

    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Paint and not getattr(self, "seen", False):
                self.seen = True
                QTimer.singleShot(0, report)
            return False

    def report():
        rss = next((int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmRSS")),
                   None) if os.path.exists("/proc/self/status") else None
        print(json.dumps({"painted": PAINTED[0], "torch": "torch" in sys.modules, "rss_mb": rss,
                          "blocks": len(win.doc.graph)}), flush=True)
        print(json.dumps({"quitting": time.time()}), flush=True)
        win.doc.undo_stack.setClean()
        win.close()
        app.quit()

    PAINTED = [0.0]
    watcher = FirstPaint(win)

    class Stamp(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Paint and not PAINTED[0]:
                PAINTED[0] = time.time()
            return False
    stamp = Stamp(win)
    win.view.viewport().installEventFilter(stamp)
    win.view.viewport().installEventFilter(watcher)


def install_error_dialog():
    """An unexpected error shows a short message (details go to a log file), never a traceback."""
    import traceback

    from PySide6.QtWidgets import QApplication, QMessageBox

    from .recovery import config_dir

    def hook(kind, value, tb):
        log = config_dir() / "errors.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write("".join(traceback.format_exception(kind, value, tb)) + "\n")
        except OSError:
            log = None
        parent = QApplication.activeWindow()
        QMessageBox.warning(parent, "Something went wrong",
                            f"{kind.__name__}: {str(value)[:300]}\n\nYour work is safe (autosave keeps it)."
                            + (f" Details are in {log}." if log else ""))
    sys.excepthook = hook
