"""Run the benchmarks: ``python -m benchmarks [name ...]`` (default: all). Figures go to benchmarks/results/."""
import importlib
import sys

NAMES = ["analysis", "compiled", "diff", "explain", "export", "figure", "gui", "import", "import_corpus", "onnx_node_tests", "profile", "responsiveness",
         "startup", "training"]


def main(argv):
    chosen = argv or NAMES
    for name in chosen:
        try:
            mod = importlib.import_module(f"benchmarks.bench_{name}")
        except ModuleNotFoundError as e:
            if e.name == f"benchmarks.bench_{name}":
                print(f"no benchmark {name!r}; have: {', '.join(NAMES)}")
                continue
            raise
        mod.run()


if __name__ == "__main__":
    main(sys.argv[1:])
