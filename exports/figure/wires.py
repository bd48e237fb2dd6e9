"""A figure's wires: orthogonal with rounded corners, bending in the gaps between columns (never through a block);
skips along the main lane drawn as arcs over what they pass; a wire that wraps to the next row goes round the
row's end into a junction at the start of the next one; auxiliary heads hang off a dashed wire.

Coordinates are (along, across) the reading direction, as in :mod:`.layout`."""
from __future__ import annotations

from dataclasses import dataclass

from .cells import INK
from .draw import Group, Path

GAP = 9.0      # between columns: wires bend here
BEND = 3.0     # the radius of a wire's corners
RISE = 4.0     # how far an arc clears what it passes, and one arc another
MARGIN = 4.0   # round the figure
JUNCTION = MARGIN + 1  # where a wire wrapped from the row before comes in, before the row's first column


@dataclass
class Arc:
    row: int
    src: str | None      # None: the row's junction (the wire came from the row before)
    dst: str
    lo: int              # columns it passes over: lo < column < hi
    hi: int
    floor: float         # the highest it must go to clear blocks and frames (relative to the row's main line)
    top: float = 0.0


def rounded(points) -> tuple:
    """A polyline through ``points`` with rounded corners, as path steps."""
    pts = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    steps = [("M",) + pts[0]]
    for i in range(1, len(pts) - 1):
        (ax, ay), (bx, by), (cx, cy) = pts[i - 1], pts[i], pts[i + 1]
        d1, d2 = abs(bx - ax) + abs(by - ay), abs(cx - bx) + abs(cy - by)
        r = min(BEND, d1 / 2, d2 / 2)
        if r <= 0:
            continue
        ux, uy = (bx - ax) / d1, (by - ay) / d1
        vx, vy = (cx - bx) / d2, (cy - by) / d2
        steps.append(("L", bx - ux * r, by - uy * r))
        steps.append(("C", bx, by, bx, by, bx + vx * r, by + vy * r))
    steps.append(("L",) + pts[-1])
    return tuple(steps)


class Wires:
    def __init__(self, layout):
        self.l = layout
        self.arcs_by_row: dict = {}
        self.ink = INK[layout.style.colour]["wire"]

    # ------------------------------------------------------------ arcs, before rows are stacked
    def _is_arc(self, u, v) -> bool:
        if v.lane != 0:
            return False
        if u is None:
            return v.col > 0
        return u.lane == 0 and u.row == v.row and v.col - u.col > 1

    def arcs(self, main_cells, extents) -> None:
        cells = self.l.cells
        for s, d in self.l.st.edges:
            u, v = cells[s], cells[d]
            if u.lane is None or v.lane is None:
                continue
            src = None if u.row < v.row else u
            if not self._is_arc(src, v):
                continue
            lo = src.col if src else -1
            between = [c for c in main_cells[v.row] if lo < c.col < v.col]
            floor = min((c.axis - c.ext[1] for c in between), default=-8.0) - RISE
            self.arcs_by_row.setdefault(v.row, []).append(Arc(v.row, s if src else None, d, lo, v.col, floor))
        for r in self.arcs_by_row:
            self._restack(r, extents)

    def _restack(self, r, extents) -> None:
        placed: list = []
        for arc in sorted(self.arcs_by_row.get(r, ()), key=lambda a: (a.hi - a.lo, a.lo, a.dst)):
            arc.top = min([arc.floor] + [p.top - RISE for p in placed if p.lo < arc.hi and arc.lo < p.hi])
            placed.append(arc)
            extents[r][0] = max(extents[r][0], -arc.top + 1)

    def arc_top(self, r, cell_id) -> float:
        """The highest arc that ends at ``cell_id`` (a frame around the cell encloses it)."""
        return min((a.top for a in self.arcs_by_row.get(r, ()) if a.dst == cell_id), default=float("inf"))

    def raise_over(self, r, box, extents) -> None:
        """Arcs that pass over the whole of a frame clear it."""
        lo, hi = box[0], box[2]
        changed = False
        for a in self.arcs_by_row.get(r, ()):
            start = self._column_end(r, a.lo)
            end = self.l.cells[a.dst].main0
            if start < lo and end > hi and a.floor > box[1] - RISE:
                a.floor = box[1] - RISE
                changed = True
        if changed:
            self._restack(r, extents)

    def _column_end(self, r, col) -> float:
        if col < 0:
            return 0.0
        if not hasattr(self, "_col_ends"):
            self._col_ends: dict = {}
            for c in self.l.cells.values():
                key = (c.row, c.col)
                self._col_ends[key] = max(self._col_ends.get(key, 0.0), c.main0 + c.colw)
        return self._col_ends[(r, col)]

    # ------------------------------------------------------------ drawing, after rows are stacked
    def draw(self, offset, extents) -> list:
        cells = self.l.cells
        out: list = []
        arcs = {(a.src, a.dst, a.row): a for r in self.arcs_by_row for a in self.arcs_by_row[r]}
        junction_done = set()
        aux_first = {ids[0]: anchor for anchor, ids in self.l.st.aux}
        for s, d in self.l.st.edges:
            u, v = cells[s], cells[d]
            dashed = v.lane is None or u.lane is None
            if u.row < v.row:
                if u.row not in junction_done:
                    junction_done.add(u.row)
                    out.append(Group("connector", {"from": s, "row": v.row},
                                     [Path(self._connector(u, v.row, offset, extents), self.ink, arrow=False)]))
                start = (JUNCTION, offset[v.row])
                arc = arcs.get((None, d, v.row))
                bend = start[0] + GAP / 2
            else:
                start = u.ports(self.l.dir)[1]
                arc = arcs.get((s, d, v.row))
                bend = u.main0 + u.colw + GAP / 2
            end = v.ports(self.l.dir)[0]
            if arc is not None:
                m2 = v.main0 - GAP / 2
                top = arc.top + offset[v.row]
                pts = [start, (bend, start[1]), (bend, top), (m2, top), (m2, end[1]), end]
            elif abs(start[1] - end[1]) < 1e-6:
                pts = [start, end]
            else:
                if u.row == v.row and u.lane not in (0, None) and v.lane == 0:
                    bend = v.main0 - GAP / 2
                pts = [start, (bend, start[1]), (bend, end[1]), end]
            role = "aux" if d in aux_first or dashed else "wire"
            out.append(Group("wire", {"from": s, "to": d, "role": role},
                             [Path(rounded(pts), self.ink, dash=role == "aux")]))
        return out

    def _row_ends(self) -> dict:
        """Where each row's last block (its aux heads included) ends along the reading direction."""
        if not hasattr(self, "_ends"):
            self._ends: dict = {}
            for c in self.l.cells.values():
                self._ends[c.row] = max(self._ends.get(c.row, 0.0), c.main0 + c.colw)
        return self._ends

    def _connector(self, u, next_row, offset, extents) -> tuple:
        """From the last block of a row round to the next row's junction: out, across the gap between the rows,
        back along it, and in."""
        start = u.ports(self.l.dir)[1]
        r = u.row
        mid = offset[r] + extents[r][1] + (offset[next_row] - extents[next_row][0] - offset[r] - extents[r][1]) / 2
        out = max(start[0], self._row_ends()[r]) + GAP / 2
        return rounded([start, (out, start[1]), (out, mid), (JUNCTION, mid), (JUNCTION, offset[next_row])])
