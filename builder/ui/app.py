"""Start the desktop app."""
from __future__ import annotations

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
    win.offer_recovery()
    return app.exec()


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
