"""The ``aie`` import shim: fake ``aie.iron`` / ``aie.helpers`` modules installed into
``sys.modules`` only while an emulated design loads or runs (see :func:`emulated_aie`)."""
from __future__ import annotations

import contextlib
import sys
import threading
import types

from . import algorithms, controlflow, device, hostapi, jit as _jit, kernel_lib, taplib, util
from .hostapi import get_current_device, set_current_device
from .buffer import Buffer, GlobalBuffer, LocalBuffer
from .fifo import Link, ObjectFifo, ObjectFifoHandle
from .kernel import ExternalFunction, Kernel
from .program import Placer, Program, SequentialPlacer
from .runtime import Runtime, RuntimeData, TaskGroup, sync_parameters
from .worker import Worker, WorkerRuntimeBarrier

class _Marker:
    """Stand-in for ``In``/``Out``/``CompileTime[...]`` annotations."""

    def __class_getitem__(cls, item):
        return cls


In = Out = InOut = CompileTime = Compile = DispatchTime = _Marker


def _mod(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__path__ = []          # behave like a package so submodule imports resolve
    m.__dict__.update(attrs)
    return m


def _jit_names() -> dict:
    """``iron.jit`` and the host tensor constructors (also under ``aie.utils``)."""
    names = ("jit", "tensor", "zeros", "ones", "full", "zeros_like", "arange", "rand",
             "randint", "ceildiv", "set_tensor_class")
    out = {k: getattr(_jit, k) for k in names}
    out.update(Tensor=_jit.Tensor, ensure_current_device=get_current_device)
    return out


def _build() -> dict[str, types.ModuleType]:
    dev_names = {k: getattr(device, k) for k in (
        "Device", "Tile", "AnyShimTile", "AnyMemTile", "AnyComputeTile", "PlacementTile",
        "from_name", "AIETileType")}
    dev_names.update(device.DEVICES)
    dataflow = dict(ObjectFifo=ObjectFifo, ObjectFifoHandle=ObjectFifoHandle,
                    ObjectFifoLink=Link, ObjectFifoEndpoint=object,
                    StreamDims=list[tuple[int, int]], PadDims=list[tuple[int, int]])
    runtime = dict(Runtime=Runtime, RuntimeData=RuntimeData, TaskGroup=TaskGroup,
                   sync_parameters=sync_parameters)
    scf = dict(_for=controlflow.range_, for_=controlflow.range_, range_=controlflow.range_,
               if_=controlflow.if_, else_=controlflow.else_, yield_=controlflow.yield_)
    taps = dict(TensorAccessPattern=taplib.TensorAccessPattern,
                TensorAccessSequence=taplib.TensorAccessSequence, TileGrid=taplib.TileGrid,
                TensorTiler2D=taplib.TensorTiler2D, Layout=taplib.Layout)
    utils = {k: getattr(util, k) for k in (
        "np_ndarray_type_get_shape", "np_ndarray_type_get_dtype", "flatten_fn_args")}
    utils["np_dtype_to_mlir_type"] = hostapi.np_dtype_to_mlir_type
    kernels = _mod("aie.iron.kernels", **kernel_lib.module_attrs())
    algos = _mod("aie.iron.algorithms", **algorithms.module_attrs())
    iron = dict(Buffer=Buffer, GlobalBuffer=GlobalBuffer, LocalBuffer=LocalBuffer,
                Kernel=Kernel, ExternalFunction=ExternalFunction, Program=Program,
                Worker=Worker, WorkerRuntimeBarrier=WorkerRuntimeBarrier,
                str_to_dtype=util.str_to_dtype, dtype_to_str=util.dtype_to_str,
                set_current_device=set_current_device, get_current_device=get_current_device,
                In=In, Out=Out, InOut=InOut, CompileTime=CompileTime, Compile=Compile,
                DispatchTime=DispatchTime, CoreFunction=ExternalFunction,
                kernels=kernels, algorithms=algos,
                **_jit_names(), **dataflow, **runtime)
    mods = {
        "aie": _mod("aie"),
        "aie.iron": _mod("aie.iron", **iron),
        "aie.iron.device": _mod("aie.iron.device", **dev_names),
        "aie.iron.device.device": _mod("aie.iron.device.device", **dev_names),
        "aie.iron.device.tile": _mod("aie.iron.device.tile", **dev_names),
        "aie.iron.kernels": kernels,
        "aie.iron.algorithms": algos,
        "aie.iron.controlflow": _mod("aie.iron.controlflow", range_=controlflow.range_,
                                     yield_=controlflow.yield_),
        "aie.iron.placers": _mod("aie.iron.placers", Placer=Placer,
                                 SequentialPlacer=SequentialPlacer),
        "aie.iron.dataflow": _mod("aie.iron.dataflow", **dataflow),
        "aie.iron.dataflow.endpoint": _mod("aie.iron.dataflow.endpoint", **dataflow),
        "aie.iron.dataflow.objectfifo": _mod("aie.iron.dataflow.objectfifo", **dataflow),
        "aie.iron.runtime": _mod("aie.iron.runtime", **runtime),
        "aie.iron.worker": _mod("aie.iron.worker", Worker=Worker,
                                WorkerRuntimeBarrier=WorkerRuntimeBarrier),
        "aie.iron.buffer": _mod("aie.iron.buffer", Buffer=Buffer),
        "aie.iron.globalbuffer": _mod("aie.iron.globalbuffer", GlobalBuffer=GlobalBuffer),
        "aie.iron.localbuffer": _mod("aie.iron.localbuffer", LocalBuffer=LocalBuffer),
        "aie.iron.kernel": _mod("aie.iron.kernel", Kernel=Kernel,
                                ExternalFunction=ExternalFunction),
        "aie.iron.program": _mod("aie.iron.program", Program=Program),
        "aie.helpers": _mod("aie.helpers"),
        "aie.helpers.taplib": _mod("aie.helpers.taplib", **taps),
        "aie.helpers.tensortiler": _mod("aie.helpers.tensortiler", **taps),
        "aie.helpers.taplib.tap": _mod("aie.helpers.taplib.tap", **taps),
        "aie.helpers.taplib.tas": _mod("aie.helpers.taplib.tas", **taps),
        "aie.helpers.taplib.tensortiler2d": _mod("aie.helpers.taplib.tensortiler2d", **taps),
        "aie.iron.dtype": _mod("aie.iron.dtype", str_to_dtype=util.str_to_dtype,
                               dtype_to_str=util.dtype_to_str),
        "aie.helpers.util": _mod("aie.helpers.util", **utils),
        "aie.helpers.dialects": _mod("aie.helpers.dialects"),
        "aie.helpers.dialects.scf": _mod("aie.helpers.dialects.scf", **scf),
        "aie.helpers.dialects.ext": _mod("aie.helpers.dialects.ext"),
        "aie.helpers.dialects.ext.scf": _mod("aie.helpers.dialects.ext.scf", **scf),
    }
    for name, attrs in hostapi.module_specs(_jit_names()).items():
        mods[name] = _mod(name, **attrs)
    for name, m in mods.items():            # parent.child attributes
        if "." in name:
            parent, _, child = name.rpartition(".")
            if parent in mods:
                setattr(mods[parent], child, m)
    return mods


_LOCK = threading.RLock()
_DEPTH = [0]
_SAVED: dict = {}
_SHIM: dict = {}


def _aie_keys() -> list[str]:
    return [k for k in sys.modules if k[:3] == "aie" and (len(k) == 3 or k[3] == ".")]


@contextlib.contextmanager
def emulated_aie():
    """Install the shim ``aie`` modules for the duration of the block, then restore
    whatever ``aie*`` modules (a real mlir-aie, or none) were there before. The shim
    modules are built once per process (they hold no run state)."""
    with _LOCK:
        if _DEPTH[0] == 0:
            _SAVED.clear()
            for k in _aie_keys():
                _SAVED[k] = sys.modules.pop(k)
            if not _SHIM:
                _SHIM.update(_build())
            sys.modules.update(_SHIM)
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                for k in _aie_keys():
                    del sys.modules[k]
                sys.modules.update(_SAVED)
                _SAVED.clear()
