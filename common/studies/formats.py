"""Number formats: every conv/FC input (mode ``inputs``), and weights too (mode
``inputs+weights``), stored in another format and read back; compute stays float32.

Formats: float16, bfloat16, float8_e4m3fn, float8_e5m2 (torch's casts, round to nearest
even), posit8 es=0 and es=2 (common.studies.posit), int8 power of two (per tensor:
scale 2^ceil(log2(max|x| / 127)) with max|x| from the calibration images for inputs, from
the tensor itself for weights; round half to even, saturate to [-128, 127]).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from common.studies.posit import quantize_posit8
from common.studies.qgeneric import input_stats, quant_layer_names
from common.studies.report import md_table, new_figure, save_figure, text_table, write_csv, write_text
from common.studies.runner import Context, accuracy, load, run_configs

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16,
                "float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2}
FORMATS = (*TORCH_DTYPES, "posit8_es0", "posit8_es2", "int8_po2")
MODES = ("inputs", "inputs+weights")


def po2_scale(maxabs: float) -> float:
    """Power-of-two int8 scale so that maxabs fits in [-127, 127] (1.0 for maxabs 0)."""
    return 2.0 ** math.ceil(math.log2(maxabs / 127.0)) if maxabs > 0 else 1.0


def store(x: torch.Tensor, fmt: str, scale: float | None = None) -> torch.Tensor:
    """x stored in ``fmt`` and read back as float32 (``scale``: int8_po2's, else computed)."""
    if fmt in TORCH_DTYPES:
        return x.to(TORCH_DTYPES[fmt]).to(torch.float32)
    if fmt.startswith("posit8_es"):
        return quantize_posit8(x, int(fmt[-1]))
    if fmt == "int8_po2":
        s = scale if scale is not None else po2_scale(float(x.abs().max()))
        return torch.clamp(torch.round(x / s), -128, 127) * s
    raise ValueError(f"unknown format {fmt!r}; known: {list(FORMATS)}")


def input_maxabs(model: nn.Module, calib: torch.Tensor) -> dict[str, float]:
    """max |input| of each Conv2d/Linear over the calibration images."""
    return {k: v[0] for k, v in input_stats(model, calib).items()}


def stored_model(float_model: nn.Module, calib: torch.Tensor, fmt: str, mode: str) -> nn.Module:
    """A copy of ``float_model`` whose conv/FC inputs (and weights, per ``mode``) go
    through ``fmt``."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {list(MODES)}")
    model = copy.deepcopy(float_model).eval()
    scales = ({n: po2_scale(v) for n, v in input_maxabs(model, calib).items()}
              if fmt == "int8_po2" else {})
    for name in quant_layer_names(model):
        m = model.get_submodule(name)
        hook: Callable = (lambda mod, args, s=scales.get(name): (store(args[0], fmt, s),))
        m.register_forward_pre_hook(hook)
        if mode == "inputs+weights":
            with torch.no_grad():
                m.weight.copy_(store(m.weight, fmt))
    return model


def evaluate(ctx: Context, config: dict) -> dict:
    """Accuracy (%) of one (format, mode) on the context's test images."""
    ld = load(ctx)
    model = (ld.float_model if config["format"] == "float32"
             else stored_model(ld.float_model, ld.calib, config["format"], config["mode"]))
    acc, constant = accuracy(model, ld.x_test, ld.y_test)
    return {"accuracy": acc, "constant": constant, "images": len(ld.y_test)}


# The seeds' figures (LeNet-5, MNIST, their own float model; conv inputs stored).
SEEDS_FIGURES = {("lenet", "mnist"): "float32 96.42%, float16 96.37%, posit8 (es=0 likely, "
                 "fp32 ops) 89.37%, int8 PTQ 98%"}


def run(ctx: Context, out: Path, formats: list[str], modes: list[str], jobs: int = 1,
        ray_address: str | None = None, progress: bool = True) -> list[dict]:
    """Run the study, write formats.csv / formats.png / formats.md into ``out``."""
    cfgs = [{"format": "float32", "mode": "-"}]
    cfgs += [{"format": f, "mode": m} for m in modes for f in formats]
    results, computed = run_configs("formats", evaluate, ctx, cfgs, out / "cache", jobs,
                                    ray_address, progress)
    ref = results[0]["accuracy"]
    header = ["mode", "format", "accuracy_pct", "delta_vs_float32"]
    table = [[c["mode"], c["format"], round(r["accuracy"], 2), round(r["accuracy"] - ref, 2)]
             for c, r in zip(cfgs, results)]
    write_csv(out / "formats.csv", header, table)
    fig, ax = new_figure(8, 4.5)
    width = 0.8 / max(1, len(modes))
    for j, m in enumerate(modes):
        accs = [r["accuracy"] for c, r in zip(cfgs, results) if c["mode"] == m]
        ax.bar([i + j * width for i in range(len(formats))], accs, width, label=m)
    ax.axhline(ref, color="k", lw=1, label=f"float32 {ref:.2f}%")
    ax.set_xticks([i + width * (len(modes) - 1) / 2 for i in range(len(formats))])
    ax.set_xticklabels(formats, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Storage formats, compute float32: {ctx.net} on {ctx.dataset}")
    ax.legend(fontsize=8)
    save_figure(out / "formats.png", fig)
    md = [f"# Number formats: {ctx.net} on {ctx.dataset}", "",
          f"{results[0]['images']} test images; float32 reference {ref:.2f}%. Every conv/FC "
          "input (mode inputs) and also every weight (inputs+weights) is stored in the format "
          "and read back; arithmetic is float32.",
          "float formats: torch's casts (float8_e4m3fn saturates at +-448; float16 and "
          "float8_e5m2 overflow to inf). posit8: Posit Standard rounding (es=0: SoftPosit's "
          "format, maxpos 64; es=2: the 2022 Standard, maxpos 2^24). int8_po2: per-tensor "
          f"power-of-two scale from {ctx.n_calib} calibration images (inputs) or the tensor "
          "itself (weights).",
          *([f"The seeds' notebook reported: {SEEDS_FIGURES[(ctx.net, ctx.dataset)]}."]
            if (ctx.net, ctx.dataset) in SEEDS_FIGURES else []), "", md_table(header, table)]
    write_text(out / "formats.md", "\n".join(md) + "\n")
    print(text_table(header, table))
    print(f"({computed} configurations computed, {len(cfgs) - computed} from the cache)")
    return [dict(zip(header, r)) for r in table]
