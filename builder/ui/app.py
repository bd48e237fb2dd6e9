"""Start the desktop app."""
from __future__ import annotations

import sys


def main(file: str | None = None, template: str | None = None, argv=None) -> int:
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
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
