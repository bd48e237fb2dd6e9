"""Write templates/zoo/NAME.json: torchvision's models imported by Block Builder's importer (no weights).

    .venv/bin/python scripts/make_zoo_templates.py

tests/test_templates.py imports them again and checks the files are what the importer gives today.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.core import project  # noqa: E402
from builder.importers import import_source  # noqa: E402
from templates.zoo import ZOO  # noqa: E402

if __name__ == "__main__":
    for name in ZOO:
        g = import_source(f"torchvision:{name}").graph
        g.meta.pop("weights", None)
        project.save(g, ROOT / "templates" / "zoo" / f"{name}.json")
        print(f"wrote templates/zoo/{name}.json ({len(g)} blocks)")
