"""A paper figure's geometry: units placed in columns along the reading direction, parallel branches in lanes
beside the main one, skips as arcs over it, auxiliary heads in a lane of their own, frames around expanded
composites and folded stages, and rows that wrap at a cut when the figure would be too wide.

Coordinates are (along, across) the reading direction until the very end; ``LR`` maps them to (x, y), ``TB`` to
(y, x). Every number is rounded when written, so one project always gives the same figure.
"""
from __future__ import annotations

import itertools

from builder.core.analysis import analyze

from .cells import FONT, INK, Cell, make_cell
from .draw import LINE, Drawing, Group, Path, Rect, Text
from .structure import structure
from .style import PAPER_WIDTH, Style
from .wires import GAP, MARGIN, Wires

LANE_GAP = 5.0    # between lanes
ROW_GAP = 16.0    # between wrapped rows
AUX_GAP = 10.0    # between the network and its auxiliary heads
PAD = 3.0         # a frame's margin
BAND = FONT * LINE + 1  # a frame's title band


def build_figure(graph, style: Style | None = None, analysis=None) -> Drawing:
    style = style or Style()
    a = analysis if analysis is not None and analysis.describes(graph) else analyze(graph)
    st = structure(graph, a, fold=style.stages)
    return _Layout(graph, a, st, style).run()


class _Layout:
    def __init__(self, graph, analysis, st, style):
        self.graph, self.a, self.st, self.style = graph, analysis, st, style
        self.dir = style.direction
        self.cells: dict = {}
        self.succ: dict = {}
        self.pred: dict = {}
        for u, v in st.edges:
            self.succ.setdefault(u, []).append(v)
            self.pred.setdefault(v, []).append(u)
        for unit in st.units:
            for b in unit.ids:
                self._cell(b, unit.repeat if unit.cut and unit.period == 1 else 1,
                           unit.hidden if b == unit.ids[0] else ())
        for _, ids in st.aux:
            for b in ids:
                self._cell(b)
        self.rows: list = []      # [[unit index, ...], ...]
        self.groups: list = []

    def _cell(self, b, repeat=1, hidden=()):
        c = make_cell(self.graph.block(b), self.a.blocks.get(b), self.style, repeat, hidden)
        c.ext = c.extents(self.dir, self.style.font)
        self.cells[b] = c

    # ------------------------------------------------------------ units into columns and lanes
    def _columns(self, i, unit) -> list:
        """The unit's columns: lists of cells, each cell's lane set."""
        if unit.cut:
            c = self.cells[unit.ids[0]]
            c.lane = 0
            return [[c]]
        inside = set(unit.ids)
        layer: dict = {}
        for b in unit.ids:
            layer[b] = 1 + max((layer[p] for p in self.pred.get(b, ()) if p in inside), default=-1)
        end = max(unit.ids, key=lambda b: (layer[b], -self.st.order[b]))
        spine, b = [end], end
        while layer[b] > 0:
            b = min((p for p in self.pred.get(b, ()) if p in inside and layer[p] == layer[b] - 1),
                    key=self.st.order.__getitem__)
            spine.append(b)
        spine.reverse()
        chains, taken = [spine], set(spine)
        for b in unit.ids:
            if b in taken:
                continue
            chain = [b]
            while True:
                nxt = [s for s in self.succ.get(chain[-1], ()) if s in inside]
                if len(nxt) != 1 or nxt[0] in taken or nxt[0] in chain:
                    break
                if [p for p in self.pred.get(nxt[0], ()) if p in inside] != [chain[-1]]:
                    break
                chain.append(nxt[0])
            chains.append(chain)
            taken.update(chain)
        # branches side by side in the order they join (Inception: 1x1, 3x3, 5x5, pool), the longest on the
        # main lane; a branch that joins inside the unit goes after them
        joins = self._join_order(i)
        chains.sort(key=lambda ch: joins.get(ch[-1], (len(joins) + self.st.order[ch[0]],)))
        main = chains.index(spine)
        lane = {b: i - main for i, ch in enumerate(chains) for b in ch}
        cols: list = [[] for _ in range(max(layer.values()) + 1)]
        for b in unit.ids:
            cell = self.cells[b]
            cell.lane = lane[b]
            cols[layer[b]].append(cell)
        return cols

    def _join_order(self, i) -> dict:
        """Block -> (its place among the inputs of the cut after unit ``i``), for the blocks that feed it."""
        if i + 1 >= len(self.st.units):
            return {}
        after = self.st.units[i + 1].ids[0]
        return {src: (k,) for k, (_, src) in enumerate(self.graph.inputs(after))}

    def _lanes(self, cols) -> None:
        """Each lane's line across the reading direction, relative to the main lane's."""
        ext: dict = {}
        for col in cols:
            for c in col:
                neg, pos = ext.get(c.lane, (0.0, 0.0))
                ext[c.lane] = (max(neg, c.ext[1]), max(pos, c.ext[2]))
        where = {0: 0.0}
        for k in sorted(k for k in ext if k > 0):
            where[k] = where[k - 1] + ext[k - 1][1] + LANE_GAP + ext[k][0]
        for k in sorted((k for k in ext if k < 0), reverse=True):
            where[k] = where[k + 1] - ext[k + 1][0] - LANE_GAP - ext[k][1]
        for col in cols:
            for c in col:
                c.axis = where[c.lane]

    # ------------------------------------------------------------ the whole figure
    def run(self) -> Drawing:
        unit_cols = []
        for i, u in enumerate(self.st.units):
            cols = self._columns(i, u)
            self._lanes(cols)
            unit_cols.append(cols)
        widths = [[max(c.ext[0] for c in col) for col in cols] for cols in unit_cols]
        self.lead = self._leads()
        span = [sum(w) + GAP * (len(w) - 1) + self.lead[i] for i, w in enumerate(widths)]
        limit = self.style.width if self.dir == "LR" else self.style.width * 1.25
        rows = self._pack(span, limit)
        self._place(rows, unit_cols, widths)
        return self._draw(rows)

    def _leads(self) -> list:
        """Room before each unit for the title bands of the frames that open at it, in a top-down figure (the
        bands lie along the reading way there): one band and its margins per frame."""
        if self.dir != "TB":
            return [0.0] * len(self.st.units)
        opens = [1 if u.repeat > 1 and (u.period > 1 or not u.cut) else 0 for u in self.st.units]
        first: dict = {}  # frame (an expanded composite, or one it is inside) -> the unit its first block is in
        groups = {str(self.graph.block(b).group.get("id")) for u in self.st.units for b in u.ids
                  if self.graph.block(b).group}
        for i, u in enumerate(self.st.units):
            for b in u.ids:
                g = self.graph.block(b).group
                if not g:
                    continue
                parts = str(g.get("id")).split(".")
                for k in range(1, len(parts) + 1):
                    gid = ".".join(parts[:k])
                    if gid in groups:
                        first.setdefault(gid, i)
        for i in first.values():
            opens[i] += 1
        return [n * (BAND + 2 * PAD) for n in opens]

    def _breaks(self) -> list:
        """Where a row may end: after a cut that is not inside a folded period."""
        ok, inside = [], 0
        for u in self.st.units:
            if u.repeat > 1:
                inside = u.period
            inside -= 1
            ok.append(u.cut and inside <= 0)
        return ok

    def _aux_reach(self) -> dict:
        """The length an auxiliary head adds after the unit it hangs off."""
        where = {b: i for i, u in enumerate(self.st.units) for b in u.ids}
        reach: dict = {}
        for anchor, ids in self.st.aux:
            i = where.get(anchor, 0)
            length = sum(self.cells[b].ext[0] for b in ids) + GAP * len(ids)
            reach[i] = max(reach.get(i, 0.0), length)
        return reach

    def _pack(self, span, limit) -> list:
        """Units into rows no longer than ``limit``, each ending at a cut; a figure that nearly fits stays one row
        (scaled), and a last stretch that nearly fits stays on the row before."""
        n = len(span)
        reach = self._aux_reach()
        ends = list(itertools.accumulate(w + (GAP if i else 0.0) for i, w in enumerate(span)))
        whole = max([ends[-1] if ends else 0.0] + [ends[i] + r for i, r in reach.items()])
        if whole <= limit / 0.85:
            return [list(range(n))]
        ok = self._breaks()
        rows, row, base = [], [], 0.0  # base: where the current row starts in the one-row layout

        def length(last):  # the row from its start to unit ``last``, with the heads hanging off it
            far = max([ends[last]] + [ends[j] + reach[j] for j in row + pending if j in reach])
            return far - base

        pending: list = []
        for i in range(n):
            pending.append(i)
            if not ok[i] and i < n - 1:
                continue
            fits = length(i) <= (limit / 0.9 if i == n - 1 else limit)
            if row and not fits:
                rows.append(row)
                row, base = [], ends[row[-1]] + GAP
            row += pending
            pending = []
        if row:
            rows.append(row)
        return rows

    def _place(self, rows, unit_cols, widths) -> None:
        self.rows = rows
        self.row_of: dict = {}
        for r, row in enumerate(rows):
            at = MARGIN + GAP  # room for the wire that comes from the row before
            col = 0
            for i in row:
                at += self.lead[i]
                for cells, w in zip(unit_cols[i], widths[i]):
                    for c in cells:
                        c.row, c.col, c.main0, c.colw = r, col, at, w
                        self.row_of[c.id] = r
                    at += w + GAP
                    col += 1
        # auxiliary heads: after the column of the block they hang off, in lanes past the network's
        self.aux_lanes: list = []   # (row, lane number, [cells])
        taken: dict = {}            # (row, lane) -> last end along
        for anchor, ids in self.st.aux:
            a = self.cells.get(anchor)
            r = a.row if a else 0
            start = (a.main0 + a.colw + GAP) if a else MARGIN + GAP
            k = 0
            while taken.get((r, k), -1e9) > start - GAP:
                k += 1
            at = start
            cells = [self.cells[b] for b in ids]
            for c in cells:
                c.row, c.col, c.main0, c.colw, c.lane = r, -1, at, c.ext[0], None
                self.row_of[c.id] = r
                at += c.ext[0] + GAP
            taken[(r, k)] = at
            self.aux_lanes.append((r, k, cells))

    def aux_cells(self, row, lane) -> list:
        return [c for r, k, cells in self.aux_lanes if (r, k) == (row, lane) for c in cells]

    # ------------------------------------------------------------ drawing
    def _draw(self, rows) -> Drawing:
        main_cells = {r: [] for r in range(len(rows))}
        for c in self.cells.values():
            if c.lane is not None:
                main_cells[c.row].append(c)
        # each row's lanes first (relative to its main line), then arcs and frames, then rows stacked
        w = Wires(self)
        extents = []
        for r in range(len(rows)):
            neg = max((c.ext[1] - c.axis for c in main_cells[r]), default=10.0)
            pos = max((c.ext[2] + c.axis for c in main_cells[r]), default=10.0)
            extents.append([neg, pos])
        w.arcs(main_cells, extents)
        frames = self._frames(w, extents)
        bottom: dict = {}  # (row, aux lane) -> where it ends across
        for r, lane, cells in sorted(self.aux_lanes, key=lambda t: (t[0], t[1])):  # below the rest of the row
            above = bottom.get((r, lane - 1), extents[r][1] + AUX_GAP - LANE_GAP)
            neg = max(c.ext[1] for c in self.aux_cells(r, lane))
            axis = above + LANE_GAP + neg
            for c in cells:
                c.axis = axis
            bottom[(r, lane)] = max(bottom.get((r, lane), 0.0), axis + max(c.ext[2] for c in cells))
        for (r, _), end in bottom.items():
            extents[r][1] = max(extents[r][1], end)
        offset, at = [], MARGIN
        for neg, pos in extents:
            offset.append(at + neg)
            at += neg + pos + ROW_GAP
        for c in self.cells.values():
            c.axis += offset[c.row]
        groups = []
        for gid, r, box, (title, across) in frames:
            box = (box[0], box[1] + offset[r], box[2], box[3] + offset[r])
            groups.append(self._frame(gid, box, title, across + offset[r]))
        groups += w.draw(offset, extents)
        for b, c in sorted(self.cells.items(), key=lambda kv: self.st.order[kv[0]]):  # in running order
            items, body = c.draw(self.dir, self.style.font)
            report = self.a.blocks.get(b)
            shape = "x".join(map(str, report.out_shape)) if report is not None and report.out_shape else ""
            groups.append(Group("block", {"id": b, "kind": c.kind, "shape": shape, "ids": list(c.ids),
                                          "bbox": body}, items))
        along = max((c.main0 + c.colw for c in self.cells.values()), default=0.0) + MARGIN + GAP
        across = at - ROW_GAP + MARGIN
        width, height = (along, across) if self.dir == "LR" else (across, along)
        if self.dir == "TB":
            groups = [_transpose(g) for g in groups]
        scale = min(1.0, self.style.width / width) if width else 1.0
        return Drawing(width, height, self.style.font, groups, self.graph.name, scale)

    def _frames(self, wires, extents) -> list:
        """Frames around expanded composites (their blocks and the arcs that end in them) and folded periods, in
        (along, across) relative to their row's main line; nested frames enclose their inner ones."""
        own: dict = {}
        for b, c in self.cells.items():
            g = self.graph.block(b).group
            if g and c.lane is not None:
                own.setdefault(str(g.get("id")), []).append(c)
        members = {gid: [c for other, cs in own.items() if other == gid or other.startswith(gid + ".") for c in cs]
                   for gid in own}
        titles = {}
        for b in self.cells:
            g = self.graph.block(b).group
            if g:
                titles.setdefault(str(g.get("id")), g.get("label") or str(g.get("id")))
        boxes = []
        for i, u in enumerate(self.st.units):
            if u.repeat > 1 and (u.period > 1 or not u.cut):
                cells = [self.cells[b] for v in self.st.units[i:i + u.period] for b in v.ids]
                boxes.append((f"repeat:{u.ids[0]}", cells, f"x{u.repeat}"))
        for gid in sorted(members, key=lambda g: -g.count(".")):
            boxes.append((gid, members[gid], titles.get(gid, gid)))
        done: list = []
        for gid, cells, title in sorted(boxes, key=lambda t: (t[0].startswith("repeat:"), -t[0].count("."))):
            for r in sorted({c.row for c in cells}):
                mine = [c for c in cells if c.row == r]
                lo = min(c.main0 for c in mine) - PAD
                hi = max(c.main0 + c.colw for c in mine) + PAD
                top = min(c.axis - c.ext[1] for c in mine)
                bottom = max(c.axis + c.ext[2] for c in mine)
                top = min([top] + [wires.arc_top(r, c.id) for c in mine])
                ids = {c.id for c in mine}
                for _, rr, (x0, y0, x1, y1), _t, inner in done:  # enclose the frames inside it
                    if rr == r and inner <= ids:
                        top, bottom = min(top, y0), max(bottom, y1)
                        lo, hi = min(lo, x0 - PAD), max(hi, x1 + PAD)
                box = (lo, top - PAD - (BAND if self.style.labels == "on" else 0), hi, bottom + PAD)
                if self.dir == "TB":  # the title band lies along the reading way: in the room kept before it
                    box = (lo - (BAND if self.style.labels == "on" else 0), top - PAD, hi, bottom + PAD)
                # its title: at the top left; top down, level with its blocks (an arc may run down its left side)
                done.append((gid, r, box, (title, min(c.axis - c.cross / 2 for c in mine)), ids))
                extents[r][0] = max(extents[r][0], -box[1])
                extents[r][1] = max(extents[r][1], box[3])
                wires.raise_over(r, box, extents)
        return [(gid, r, box, title if self.style.labels == "on" else ("", 0.0)) for gid, r, box, title, _ in done]

    def _frame(self, gid, box, title, across) -> Group:
        x0, y0, x1, y1 = box
        ink = INK[self.style.colour]
        items = [Rect(x0, y0, x1 - x0, y1 - y0, "none", ink["frame"], dash=True, round=2.0, width=0.5)]
        if title:
            if self.dir == "LR":
                items.append(Text(x0 + 2, y0 + FONT * 1.05, title, FONT, "start", fill=ink["title"]))
            else:  # at the top left once turned to read downward: its band is along the reading way
                items.append(Text(x0 + FONT * 1.05, across, title, FONT, "start", fill=ink["title"]))
        return Group("frame", {"id": gid, "title": title}, items)


def _transpose(group: Group) -> Group:
    """A group drawn along x moved to read along y (a top-down figure); cells draw themselves the right way."""
    if group.role == "block":
        return group
    out = []
    for it in group.items:
        if isinstance(it, Rect):
            out.append(Rect(it.y, it.x, it.h, it.w, it.fill, it.stroke, it.dash, it.round, it.width))
        elif isinstance(it, Path):
            steps = tuple((s[0],) + tuple(v for i in range(1, len(s), 2) for v in (s[i + 1], s[i])) for s in it.steps)
            out.append(Path(steps, it.stroke, it.dash, it.arrow, it.width))
        elif isinstance(it, Text):
            out.append(Text(it.y, it.x, it.text, it.size, it.anchor, it.bold, it.fill))
        else:
            out.append(it)
    return Group(group.role, group.attrs, out)


__all__ = ["build_figure", "PAPER_WIDTH", "Cell"]
