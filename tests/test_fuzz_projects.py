"""A few hundred mutants of the fuzzer in tests/fuzz_projects.py (its own run takes --count 10000): every one is
refused with the project's error, or loads and then analyses, saves, compiles and exports without any other
exception, and no worker process is killed."""
import pytest

from fuzz_projects import KINDS, Mutator, run


@pytest.mark.timeout(600)
def test_mutants_are_refused_cleanly_or_survive_everything(capsys):
    report = run(240, seed=0, workers=1, chunk=240)
    with capsys.disabled():
        print(f"\nproject fuzzing: {report['mutants']} mutants, {report.get('refused', 0)} refused, "
              f"{report.get('ok', 0)} survived analysis, save, compile and export, {report.get('failed', 0)} failed, "
              f"{report['killed_processes']} processes killed ({report['seconds']} s)")
    assert report["killed_processes"] == 0, report["killed"]
    assert report.get("failed", 0) == 0, report["distinct_failures"]
    assert report.get("ok", 0) >= 40 and report.get("refused", 0) >= 40  # both paths were exercised
    assert set(report["kinds"]) == set(KINDS)  # ids from nn.Module's attributes, hostile text, cycles into aux...


def test_the_mutants_carry_what_the_issue_names():
    m = Mutator(0)
    m.seed_text = "0"
    seen = {"torch name": False, "surrogate": False, "separator": False, "aux cycle": False}
    names = set(m.names)
    from blocks.names import TORCH_ATTRIBUTES
    torch_names = sorted(TORCH_ATTRIBUTES | {n for n in names if n.startswith("_")})
    for i in range(400):
        kind, _, data = m.mutant(i)
        if kind not in ("id", "text", "cycle_aux"):
            continue  # byte flips need not be text
        text = data.decode("utf-8", "surrogatepass")
        if kind == "id" and any(f'"id": "{n}"' in text or f'.{n}"' in text for n in torch_names):
            seen["torch name"] = True
        if kind == "text" and any(s in text for s in ("\\ud800", "\\udfff", "\ud800", "\udfff", "\\udcff")):
            seen["surrogate"] = True
        if kind == "text" and any(s in text for s in ("\\u2028", "\u2028", "\\u2029", "\u2029", "\\u0085")):
            seen["separator"] = True
        if kind == "cycle_aux":
            seen["aux cycle"] = True
    assert all(seen.values()), seen
    assert {"double", "training", "forward", "class", "__init__"} <= names
