"""The ``life`` app: Conway's Game of Life on a torus of tiles, with halo exchange.

The board is ``R·h`` rows by ``C·w`` columns of uint8 cells (1 alive, 0
dead) on a torus, cut into ``R x C`` tiles of ``h x w`` cells; tile ``(r,
c)`` is instance ``tile{r}_{c}``, added row by row (instance ``r·C + c``).
Each iteration is one generation: every tile fires once, computes its next
generation from its cells and a halo of its 8 neighbours' border cells
(a cell is alive next when it has 3 live neighbours, or 2 and is alive), and
sends its new borders to its neighbours: its top row north (``to_n`` to the
northern tile's ``s``), its bottom row south, its columns west and east, its
corner cells to the diagonal neighbours. Every halo edge carries one initial
token, the border of the initial board, so generation ``g`` reads the
borders of generation ``g - 1``. Output ``tile{r}_{c}.count`` is the tile's
live cells after each generation (int64); the tiles' states end as the
final board. On a torus of 1 or 2 tiles a row, a tile's neighbours include
itself or repeat; the edges are still one per direction.

The initial board is ``numpy.random.default_rng(seed).random((R·h, C·w)) <
density``.
"""

from __future__ import annotations

from functools import cache
from math import isqrt

import numpy as np

from ..._checks import number
from ..._jit import njit
from .. import App, In, Out, action
from ._common import count, needs_nodes

__all__ = ["DESCRIPTION", "DIRECTIONS", "grid", "initial_board", "make_life"]

DESCRIPTION = ("Conway's Game of Life on a torus of R x C tiles (one per node), halo "
               "exchange with 8 neighbours per generation")

DIRECTIONS = {  # input port: (row offset, column offset) of the neighbour it comes from
    "n": (-1, 0), "s": (1, 0), "w": (0, -1), "e": (0, 1),
    "nw": (-1, -1), "ne": (-1, 1), "sw": (1, -1), "se": (1, 1),
}


@njit
def _tile(state, n, s, w, e, nw, ne, sw, se,
          to_n, to_s, to_w, to_e, to_nw, to_ne, to_sw, to_se, live):
    h, wd = state.shape
    pad = np.zeros((h + 2, wd + 2), dtype=np.uint8)
    for r in range(h):
        for c in range(wd):
            pad[r + 1, c + 1] = state[r, c]
    for c in range(wd):
        pad[0, c + 1] = n[c]
        pad[h + 1, c + 1] = s[c]
    for r in range(h):
        pad[r + 1, 0] = w[r]
        pad[r + 1, wd + 1] = e[r]
    pad[0, 0] = nw[()]
    pad[0, wd + 1] = ne[()]
    pad[h + 1, 0] = sw[()]
    pad[h + 1, wd + 1] = se[()]
    total = 0
    for r in range(h):
        for c in range(wd):
            k = (pad[r, c] + pad[r, c + 1] + pad[r, c + 2] + pad[r + 1, c]
                 + pad[r + 1, c + 2] + pad[r + 2, c] + pad[r + 2, c + 1] + pad[r + 2, c + 2])
            alive = 1 if k == 3 or (k == 2 and pad[r + 1, c + 1] == 1) else 0
            state[r, c] = alive
            total += alive
    _borders(state, to_n, to_s, to_w, to_e, to_nw, to_ne, to_sw, to_se)
    live[()] = total


@njit
def _borders(cells, to_n, to_s, to_w, to_e, to_nw, to_ne, to_sw, to_se):
    h, wd = cells.shape
    for c in range(wd):
        to_n[c] = cells[0, c]
        to_s[c] = cells[h - 1, c]
    for r in range(h):
        to_w[r] = cells[r, 0]
        to_e[r] = cells[r, wd - 1]
    to_nw[()] = cells[0, 0]
    to_ne[()] = cells[0, wd - 1]
    to_sw[()] = cells[h - 1, 0]
    to_se[()] = cells[h - 1, wd - 1]


@cache
def _tile_action(h: int, w: int):
    """The tile action for ``h x w`` tiles (made once per size)."""
    side = {"n": (w,), "s": (w,), "w": (h,), "e": (h,),
            "nw": (), "ne": (), "sw": (), "se": ()}
    ins = {d: In("u1", shape) for d, shape in side.items()}
    # a border goes the opposite way to where it is read from: my top row is my
    # northern neighbour's southern halo
    outs = {f"to_{d}": Out("u1", shape) for d, shape in
            (("n", (w,)), ("s", (w,)), ("w", (h,)), ("e", (h,)),
             ("nw", ()), ("ne", ()), ("sw", ()), ("se", ()))}
    outs["count"] = Out("i8")
    return action(_tile, inputs=ins, outputs=outs, state=("u1", (h, w)), name="life_tile")


def grid(n_nodes: int) -> tuple[int, int]:
    """``(R, C)`` for ``n_nodes`` nodes: ``R = floor(sqrt(n))``, ``C = n // R``."""
    R = max(isqrt(n_nodes), 1)
    return R, max(n_nodes // R, 1)


def initial_board(rows: int, cols: int, h: int, w: int, seed: int,
                  density: float = 0.35) -> np.ndarray:
    """The initial board: uint8 ``[rows·h, cols·w]``."""
    rng = np.random.default_rng(seed)
    return (rng.random((rows * h, cols * w)) < density).astype(np.uint8)


_OPPOSITE = {"n": "s", "s": "n", "w": "e", "e": "w",
             "nw": "se", "ne": "sw", "sw": "ne", "se": "nw"}


def make_life(n_nodes: int, *, rows: int | None = None, cols: int | None = None,
              h: int = 8, w: int = 8, seed: int = 0, density: float = 0.35) -> App:
    """Game of Life on ``rows x cols`` tiles of ``h x w`` cells.

    Args:
        n_nodes: the nodes available (one tile per node).
        rows, cols: ``R`` and ``C`` (default :func:`grid` of ``n_nodes``;
            one given: the other as large as fits).
        h, w: cells per tile, >= 1 each.
        seed: seed of the initial board, >= 0.
        density: chance that a cell starts alive, in [0, 1].

    Returns:
        The app ``life``; outputs ``tile{r}_{c}.count``.
    """
    if rows is None and cols is None:
        R, C = grid(n_nodes)
    else:
        R = count("life", "rows", rows if rows is not None else max(n_nodes // cols, 1), 1)
        C = count("life", "cols", cols if cols is not None else max(n_nodes // R, 1), 1)
    h = count("life", "h", h, 1)
    w = count("life", "w", w, 1)
    seed = count("life", "seed", seed, 0)
    density = number("life.density", density, lo=0, hi=1)
    needs_nodes("life", R * C, n_nodes, f"rows={R}, cols={C}")
    board = initial_board(R, C, h, w, seed, density)
    tile = _tile_action(h, w)
    app = App("life")
    cells = {}
    for r in range(R):
        for c in range(C):
            cells[r, c] = board[r * h:(r + 1) * h, c * w:(c + 1) * w].copy()
            app.add(f"tile{r}_{c}", tile, state=cells[r, c], node=r * C + c)
    for r in range(R):
        for c in range(C):
            borders = [np.zeros(p.shape, np.uint8) for p in tile.outputs[:8]]
            _borders(cells[r, c], *borders)
            sent = dict(zip(("n", "s", "w", "e", "nw", "ne", "sw", "se"), borders,
                            strict=True))
            for d, (dr, dc) in DIRECTIONS.items():
                # the border sent towards direction d is read by that neighbour's
                # halo port of the opposite direction
                rr, cc = (r + dr) % R, (c + dc) % C
                app.connect(f"tile{r}_{c}.to_{d}", f"tile{rr}_{cc}.{_OPPOSITE[d]}",
                            initial=sent[d][None, ...])
    return app
