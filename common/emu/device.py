"""Devices and tiles (``aie.iron.device``): grid shapes, tile kinds, resource limits."""
from __future__ import annotations

from enum import Enum

from .errors import DesignError


class AIETileType(Enum):
    CoreTile = "compute"
    MemTile = "memtile"
    ShimNOCTile = "shim"
    ShimPLTile = "shim_pl"


KIND_COMPUTE, KIND_MEM, KIND_SHIM = "compute", "memtile", "shim"
_KIND_OF_TYPE = {AIETileType.CoreTile: KIND_COMPUTE, AIETileType.MemTile: KIND_MEM,
                 AIETileType.ShimNOCTile: KIND_SHIM, AIETileType.ShimPLTile: KIND_SHIM}

# per tile kind: (memory bytes, DMA in channels, DMA out channels)
LIMITS = {KIND_COMPUTE: (64 * 1024, 2, 2), KIND_MEM: (512 * 1024, 6, 6), KIND_SHIM: (0, 2, 2)}
DEFAULT_STACK = 1024


class Tile:
    """A (possibly unplaced) tile; equality is by identity like the newest IRON."""

    def __init__(self, col: int | None = None, row: int | None = None, *,
                 tile_type: AIETileType | None = None, packet_type: int = 0,
                 packet_id: int | None = None):
        self.col = None if col is None else int(col)
        self.row = None if row is None else int(row)
        self.tile_type = tile_type
        self.packet_type = packet_type
        self.packet_id = packet_id

    @property
    def is_placed(self) -> bool:
        return self.col is not None and self.row is not None

    @property
    def effective_tile_type(self):
        return self.tile_type

    @property
    def kind(self) -> str | None:
        return None if self.tile_type is None else _KIND_OF_TYPE[self.tile_type]

    def copy(self) -> "Tile":
        return Tile(self.col, self.row, tile_type=self.tile_type,
                    packet_type=self.packet_type, packet_id=self.packet_id)

    def with_type(self, tile_type, *, mismatch_msg=None) -> "Tile":
        if self.tile_type is not None and tile_type is not None and self.tile_type != tile_type:
            raise DesignError(mismatch_msg or f"tile {self} is a {self.tile_type.name}, "
                                              f"not a {tile_type.name}")
        t = self.copy()
        t.tile_type = tile_type
        return t

    @property
    def op(self):
        return None

    def __repr__(self) -> str:
        if self.is_placed:
            return f"Tile({self.col}, {self.row})"
        if self.col is not None:
            return f"Tile(col={self.col})"
        return f"Tile({self.kind or 'any'})"


AnyShimTile = Tile(tile_type=AIETileType.ShimNOCTile)
AnyMemTile = Tile(tile_type=AIETileType.MemTile)
AnyComputeTile = Tile(tile_type=AIETileType.CoreTile)
PlacementTile = Tile


class Device:
    """An NPU array: row 0 shim, row 1 memtiles, rows 2.. compute (NPU families)."""

    arch = "aie2"
    n_cols = 4
    n_rows = 6
    mem_rows = 1          # MemTile rows right above the shim row
    macs_per_cycle = 256

    def __init__(self, *args, **kwargs):
        self.cols = self.n_cols
        self.rows = self.n_rows

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_tile_type(self, col: int, row: int) -> AIETileType:
        if not (0 <= col < self.cols and 0 <= row < self.rows):
            raise DesignError(f"tile ({col}, {row}) is outside the {self.name} grid "
                              f"({self.cols} columns x {self.rows} rows)")
        if row == 0:
            return AIETileType.ShimNOCTile
        if row <= self.mem_rows:
            return AIETileType.MemTile
        return AIETileType.CoreTile

    def kind_at(self, col: int, row: int) -> str:
        return _KIND_OF_TYPE[self.get_tile_type(col, row)]

    def tile_iterator(self):
        for c in range(self.cols):
            for r in range(self.rows):
                yield Tile(c, r, tile_type=self.get_tile_type(c, r))

    def get_shim_tiles(self) -> list[Tile]:
        return [Tile(c, 0, tile_type=AIETileType.ShimNOCTile) for c in range(self.cols)]

    def get_mem_tiles(self) -> list[Tile]:
        return [Tile(c, r, tile_type=AIETileType.MemTile)
                for c in range(self.cols) for r in range(1, 1 + self.mem_rows)]

    def get_compute_tiles(self) -> list[Tile]:
        return [Tile(c, r, tile_type=AIETileType.CoreTile)
                for c in range(self.cols) for r in range(1 + self.mem_rows, self.rows)]

    def get_num_connections(self, tile, output: bool) -> int:
        kind = self.kind_at(tile.col, tile.row)
        return LIMITS[kind][2 if output else 1]

    def __repr__(self) -> str:
        return f"{self.name}()"


def _make(name: str, cols: int, arch: str, macs: int, rows: int = 6, mem_rows: int = 1) -> type:
    return type(name, (Device,), {"n_cols": cols, "arch": arch, "macs_per_cycle": macs,
                                  "n_rows": rows, "mem_rows": mem_rows})


NPU1 = _make("NPU1", 4, "aie2", 256)
NPU1Col1 = _make("NPU1Col1", 1, "aie2", 256)
NPU1Col2 = _make("NPU1Col2", 2, "aie2", 256)
NPU1Col3 = _make("NPU1Col3", 3, "aie2", 256)
NPU2 = _make("NPU2", 8, "aie2p", 512)
_NPU2_COLS = {n: _make(f"NPU2Col{n}", n, "aie2p", 512) for n in range(1, 8)}
NPU2Col1, NPU2Col2, NPU2Col3, NPU2Col4, NPU2Col5, NPU2Col6, NPU2Col7 = (
    _NPU2_COLS[n] for n in range(1, 8))

# Versal parts (grid shape only; their PL shims and AIE1 memory sizes are not modelled)
XCVC1902 = _make("XCVC1902", 50, "aie1", 128, rows=9, mem_rows=0)
XCVE2302 = _make("XCVE2302", 17, "aie2", 256, rows=4)
XCVE2802 = _make("XCVE2802", 38, "aie2", 256, rows=11, mem_rows=2)

DEVICES = {c.__name__: c for c in (NPU1, NPU1Col1, NPU1Col2, NPU1Col3, NPU2,
                                   *_NPU2_COLS.values(), XCVC1902, XCVE2302, XCVE2802)}


def from_name(name: str, *, n_cols: int | None = 1) -> Device:
    """``"npu"``/``"npu1"`` -> NPU1 family, ``"npu2"`` -> NPU2 family."""
    key = name.lower()
    if key in ("npu", "npu1"):
        fam, mx = "NPU1", 4
    elif key == "npu2":
        fam, mx = "NPU2", 8
    elif key.upper() in ("XCVC1902", "XCVE2302", "XCVE2802"):
        return DEVICES[key.upper()]()
    else:
        raise DesignError(f"unknown or unsupported device name {name!r}")
    if n_cols is None or n_cols >= mx:
        return DEVICES[fam]()
    return DEVICES[f"{fam}Col{n_cols}"]()
