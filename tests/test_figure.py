"""Paper figures: parsed back from the SVG, every visible block is one labelled element whose shape is the
analysis's, no two boxes overlap, branches sit side by side, skips arc over what they pass, aux heads sit apart;
output is byte-identical run to run, fits a two-column paper, and the PDF and TikZ files are real vector files."""
from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from builder.cli import main as cli
from builder.core import edits
from builder.core.analysis import analyze
from builder.core.project import load as load_project, save as save_project
from exports import export_graph
from exports.figure import PAPER_WIDTH, Style, build_figure, render
from exports.figure.cells import FONT
from exports.figure.draw import text_width
from templates import build

SVG = "{http://www.w3.org/2000/svg}"
NUM = re.compile(r"-?\d+(?:\.\d+)?")


def parse(svg: bytes):
    root = ET.fromstring(svg)
    return root, [g for g in root.iter(f"{SVG}g") if g.get("class") == "block"]


def body(g) -> tuple:
    """A block's drawn box (rects, polygons, circles; not its label), read from the SVG's own numbers."""
    xs, ys = [], []
    for el in g:
        if el.tag == f"{SVG}rect":
            x, y, w, h = (float(el.get(k)) for k in ("x", "y", "width", "height"))
            xs += [x, x + w]
            ys += [y, y + h]
        elif el.tag == f"{SVG}polygon":
            pts = [float(v) for v in NUM.findall(el.get("points"))]
            xs += pts[0::2]
            ys += pts[1::2]
        elif el.tag == f"{SVG}circle":
            cx, cy, r = (float(el.get(k)) for k in ("cx", "cy", "r"))
            xs += [cx - r, cx + r]
            ys += [cy - r, cy + r]
    return min(xs), min(ys), max(xs), max(ys)


def labels(g) -> list:
    """Each label line's box, from its position, anchor and the font's widths."""
    out = []
    for t in g.iter(f"{SVG}text"):
        x, y, size = float(t.get("x")), float(t.get("y")), float(t.get("font-size"))
        w = text_width(t.text, size) * (1.1 if t.get("font-weight") == "bold" else 1.0)
        x0 = {"start": x, "middle": x - w / 2, "end": x - w}[t.get("text-anchor")]
        out.append((x0, y - size * 0.8, x0 + w, y + size * 0.2))
    return out


def overlap(a, b, eps=0.05) -> bool:
    return a[0] < b[2] - eps and b[0] < a[2] - eps and a[1] < b[3] - eps and b[1] < a[3] - eps


def expanded(name, *ids):
    g = build(name)
    for bid in ids:
        edits.expand(g, bid)
    return g


CASES = {
    "lenet5": lambda: build("lenet5"),
    "googlenet": lambda: build("googlenet"),
    "inception_v3": lambda: build("inception_v3"),
    "resnet50": lambda: build("resnet50"),
    "googlenet expanded": lambda: expanded("googlenet", "inception3a", "inception4a"),
    "resnet18 expanded": lambda: expanded("resnet18", "layer1.0", "layer2.0"),
    "inception_v3 expanded": lambda: expanded("inception_v3", "Mixed_5b", "Mixed_6a", "Mixed_7c"),
    "resnet50 expanded, stages": lambda: expanded("resnet50", "layer1.1", "layer1.2", "layer2.0"),
}


@pytest.mark.parametrize("direction", ["LR", "TB"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_labelled_element_per_block_with_its_shape_and_no_overlaps(case, direction):
    graph = CASES[case]()
    a = analyze(graph)
    stages = "stages" in case
    root, blocks = parse(render(build_figure(graph, Style(direction=direction, stages=stages)), ".svg"))
    drawn = [b for g in blocks for b in g.get("data-ids").split()]
    assert sorted(drawn) == sorted(a.blocks) and len(drawn) == len(a.blocks)  # every block once
    if not stages:
        assert [g.get("data-id") for g in blocks] == list(a.blocks)  # in running order
    for g in blocks:
        rep = a.blocks[g.get("data-id")]
        assert g.get("data-shape") == "x".join(map(str, rep.out_shape))
        texts = [t.text for t in g.iter(f"{SVG}text")]
        assert texts[-1] == (f"{rep.out_shape[0]}@{rep.out_shape[1]}x{rep.out_shape[2]}" if len(rep.out_shape) == 3
                             else "x".join(map(str, rep.out_shape)))
    boxes = {g.get("data-id"): body(g) for g in blocks}
    texts = {g.get("data-id"): labels(g) for g in blocks}
    ids = list(boxes)
    for i, u in enumerate(ids):
        for v in ids[i + 1:]:
            assert not overlap(boxes[u], boxes[v]), (u, v, boxes[u], boxes[v])
            for t in texts[u]:
                assert not overlap(t, boxes[v]), (u, "label over", v)
            for t in texts[v]:
                assert not overlap(t, boxes[u]), (v, "label over", u)
    # a frame encloses its own blocks and crosses no other
    for f in (g for g in root.iter(f"{SVG}g") if g.get("class") == "frame"):
        fb = body(f)
        title = f.get("data-title")
        for bid, b in boxes.items():
            inside = fb[0] <= b[0] and b[2] <= fb[2] and fb[1] <= b[1] and b[3] <= fb[3]
            assert inside or not overlap(fb, b), (title, bid)
    # everything inside the page
    vb = [float(v) for v in root.get("viewBox").split()]
    for x0, y0, x1, y1 in boxes.values():
        assert 0 <= x0 and x1 <= vb[2] and 0 <= y0 and y1 <= vb[3]


@pytest.mark.parametrize("name", ["lenet5", "googlenet", "inception_v3", "resnet50"])
def test_fits_a_two_column_paper_and_is_the_same_bytes_every_time(name):
    graph = build(name)
    svg = render(build_figure(graph), ".svg")
    width = float(ET.fromstring(svg).get("width").removesuffix("pt"))
    assert width <= PAPER_WIDTH + 1e-6
    assert render(build_figure(build(name)), ".svg") == svg
    assert render(build_figure(build(name)), ".pdf") == render(build_figure(graph), ".pdf")
    assert render(build_figure(build(name)), ".tex") == render(build_figure(graph), ".tex")


def test_a_saved_and_reopened_project_gives_the_same_figure(tmp_path):
    graph = expanded("googlenet", "inception3a")
    graph.meta["figure"] = {"direction": "TB", "colour": "mono"}
    save_project(graph, tmp_path / "g.json")
    again = load_project(tmp_path / "g.json")
    export_graph(graph, "figure", tmp_path / "a.svg")
    export_graph(again, "figure", tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    fills = set(re.findall(r'fill="(#[0-9A-F]{6})"', (tmp_path / "a.svg").read_text()))
    assert all(f[1:3] == f[3:5] == f[5:7] for f in fills), fills  # monochrome: greys only


def test_inception_branches_side_by_side_and_the_concat_after_them():
    graph = expanded("googlenet", "inception3a")
    _, blocks = parse(render(build_figure(graph), ".svg"))
    box = {g.get("data-id"): body(g) for g in blocks}
    firsts = ["inception3a.branch1", "inception3a.branch2.0", "inception3a.branch3.0", "inception3a.branch4.0"]
    assert all(f in box for f in firsts), sorted(box)
    xs = [box[f][0] for f in firsts]
    ys = [(box[f][1] + box[f][3]) / 2 for f in firsts]
    assert max(xs) - min(xs) < 3          # one column
    assert ys == sorted(ys) and len(set(ys)) == 4  # stacked in the paper's order: 1x1, 3x3, 5x5, pool
    concat = box["inception3a.concat"]
    assert concat[0] > max(box[f][2] for f in firsts)


def test_a_residual_skip_is_an_arc_over_the_blocks_it_passes():
    graph = expanded("resnet18", "layer1.0")
    root, blocks = parse(render(build_figure(graph), ".svg"))
    box = {g.get("data-id"): body(g) for g in blocks}
    skip = [g for g in root.iter(f"{SVG}g") if g.get("class") == "wire" and g.get("data-from") == "maxpool"
            and g.get("data-to") == "layer1.0.add"]
    assert len(skip) == 1
    ys = [float(v) for v in NUM.findall(skip[0].find(f"{SVG}path").get("d"))][1::2]
    passed = [box[b] for b in ("layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2")]
    assert min(ys) < min(b[1] for b in passed)  # above every block it passes
    frame = [g for g in root.iter(f"{SVG}g") if g.get("class") == "frame"]
    assert [f.get("data-title") for f in frame] == ["layer1.0"]


def test_aux_heads_sit_below_the_network_on_dashed_wires():
    graph = build("googlenet")
    root, blocks = parse(render(build_figure(graph), ".svg"))
    box = {g.get("data-id"): body(g) for g in blocks}
    anchor = box["inception4a"]
    assert box["aux1"][1] > anchor[3]  # below the block it hangs off
    wire = [g for g in root.iter(f"{SVG}g") if g.get("data-to") == "aux1"]
    assert wire[0].get("data-role") == "aux" and wire[0].find(f"{SVG}path").get("stroke-dasharray")


def test_stages_fold_repeats_as_papers_draw_resnet():
    graph = build("resnet50")
    _, blocks = parse(render(build_figure(graph, Style(stages=True)), ".svg"))
    names = [next(g.iter(f"{SVG}text")).text for g in blocks]
    assert [n for n in names if re.search(r" x\d+$", n)] == ["Bottleneck x3", "Bottleneck x4", "Bottleneck x6",
                                                          "Bottleneck x3"]
    folded = {g.get("data-id"): g.get("data-ids").split() for g in blocks}
    assert folded["layer3.0"] == [f"layer3.{i}" for i in range(6)]
    assert len(blocks) == len(graph) - (2 + 3 + 5 + 2)
    # unfolded, every block is drawn
    _, every = parse(render(build_figure(graph), ".svg"))
    assert len(every) == len(graph)


def test_stages_fold_an_expanded_period_into_one_frame():
    graph = expanded("resnet50", "layer1.1", "layer1.2")  # two equal expanded blocks
    root, blocks = parse(render(build_figure(graph, Style(stages=True)), ".svg"))
    drawn = {g.get("data-id"): g for g in blocks}
    assert "layer1.1.conv1" in drawn and "layer1.2.conv1" not in drawn
    assert set(drawn["layer1.1.conv1"].get("data-ids").split()) == {"layer1.1.conv1", *(
        b for b in graph.ids() if b.startswith("layer1.2."))}
    frames = [f.get("data-title") for f in root.iter(f"{SVG}g") if f.get("class") == "frame"]
    assert frames == ["layer1.1", "x2"]
    frame_box = {f.get("data-title"): body(f) for f in root.iter(f"{SVG}g") if f.get("class") == "frame"}
    inner, outer = frame_box["layer1.1"], frame_box["x2"]
    assert outer[0] < inner[0] and outer[1] < inner[1] and outer[2] > inner[2] and outer[3] > inner[3]


def test_top_down_reads_downward_and_left_to_right_reads_right():
    graph = build("lenet5")
    for direction, axis in (("LR", 0), ("TB", 1)):
        _, blocks = parse(render(build_figure(graph, Style(direction=direction)), ".svg"))
        starts = [body(g)[axis] for g in blocks]
        assert starts == sorted(starts), direction


def test_pdf_is_vector_with_searchable_text_and_the_figure_size():
    import io

    import pypdf
    graph = build("googlenet")
    drawing = build_figure(graph)
    pdf = pypdf.PdfReader(io.BytesIO(render(drawing, ".pdf")))
    page = pdf.pages[0]
    assert float(page.mediabox.width) == pytest.approx(drawing.width * drawing.scale, abs=0.01)
    text = page.extract_text()
    for word in ("Inception", "832@7x7", "Aux classifier", "1024@1x1"):
        assert word in text
    assert not page.images  # nothing rasterised


def test_tikz_compiles_with_pdflatex(tmp_path):
    assert shutil.which("pdflatex"), "pdflatex (Debian texlive-latex-base) is one of make test's system packages"
    graph = expanded("googlenet", "inception3a")
    graph.name = "A & B_{1} 100% #1 ~x^2 \\end{document}"  # LaTeX's specials in user text
    (tmp_path / "fig.tex").write_bytes(render(build_figure(graph), ".tex"))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "fig.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    import pypdf
    page = pypdf.PdfReader(tmp_path / "fig.pdf").pages[0]
    drawing = build_figure(graph)
    assert float(page.mediabox.width) == pytest.approx(drawing.width * drawing.scale, abs=0.5)
    assert "256@28x28" in page.extract_text()


def test_labels_off_and_fonts():
    graph = build("lenet5")
    root, blocks = parse(render(build_figure(graph, Style(labels="off", font="serif")), ".svg"))
    assert "Times" in root.get("font-family")
    assert not [t for g in blocks for t in g.iter(f"{SVG}text") if g.get("data-kind") != "output"]


def test_hostile_names_stay_text():
    graph = build("lenet5")
    graph.name = "<script>alert(1)</script>\u2028\x07"
    graph.set_label("c1", "a\nb <g>")
    svg = render(build_figure(graph), ".svg")
    root = ET.fromstring(svg)  # well-formed XML
    assert root.find(f"{SVG}title").text == "<script>alert(1)</script>\\u2028\\u0007"
    assert b"<script>" not in svg


def test_cli_export_figure(tmp_path, capsys):
    for suffix in (".svg", ".pdf", ".tex"):
        out = tmp_path / f"fig{suffix}"
        assert cli(["export", "googlenet", "--format", "figure", "-o", str(out), "--stages", "--direction", "TB"]) == 0
        assert out.stat().st_size > 1000
    assert cli(["export", "googlenet", "--format", "figure", "-o", str(tmp_path / "fig.png")]) == 2
    assert "a figure is written as .svg, .pdf or .tex" in capsys.readouterr().err
    assert cli(["export", "googlenet", "--format", "py", "-o", str(tmp_path / "m.py"), "--stages"]) == 2
    assert "--stages applies to --format figure only" in capsys.readouterr().err
    assert cli(["export", "googlenet", "--format", "figure", "-o", str(tmp_path / "f.svg"), "--width", "5"]) == 2
    assert "--width: must be a number of points" in capsys.readouterr().err
    assert not (tmp_path / "f.svg").exists()


def test_cli_uses_the_projects_style_and_names_a_bad_one(tmp_path, capsys):
    graph = build("lenet5")
    graph.meta["figure"] = {"direction": "TB"}
    save_project(graph, tmp_path / "p.json")
    assert cli(["export", str(tmp_path / "p.json"), "--format", "figure", "-o", str(tmp_path / "a.svg")]) == 0
    assert (tmp_path / "a.svg").read_bytes() == render(build_figure(graph, Style(direction="TB")), ".svg")
    graph.meta["figure"] = {"colour": "purple"}
    save_project(graph, tmp_path / "bad.json")
    assert cli(["export", str(tmp_path / "bad.json"), "--format", "figure", "-o", str(tmp_path / "b.svg")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "meta.figure.colour: 'purple' is not one of kind, mono" in err


def test_wraps_a_long_network_into_rows_within_the_width():
    graph = build("lenet5")
    prev = "f6_act"
    for i in range(60):  # a long classifier tail
        bid = graph.add_block("linear", {"out_features": 84}, f"extra{i}")
        (port, src), = graph.inputs("output_fc")
        graph.disconnect(src, "output_fc", port)
        graph.connect(src, bid)
        graph.connect(bid, "output_fc", port)
        prev = bid
    assert prev
    drawing = build_figure(graph)
    assert drawing.scale >= 0.9 and drawing.width * drawing.scale <= PAPER_WIDTH + 1e-6
    root, blocks = parse(render(drawing, ".svg"))
    rows = {round(body(g)[1] + body(g)[3]) // 60 for g in blocks}
    assert len(rows) >= 3
    assert [g for g in root.iter(f"{SVG}g") if g.get("class") == "connector"]


def test_font_metric_is_helvetica():
    assert text_width("Conv", 10) == pytest.approx((722 + 556 + 556 + 500) / 100)
    assert FONT == 6.0
