"""Per-layer fixed-point search with cost metrics (after arXiv 2102.02147, Goyal et al.).

Format (signed, narrow range), per layer and per kind (weights, biases, activations):
    q = clip(round(x * 2^F), -(2^(BW-1) - 1), 2^(BW-1) - 1) / 2^F     (round half to even)
Baseline F = BW - 1 - ceil(log2 max|x|) (nothing clips by more than one step: a max|x|
that is an exact power of two lands on 2^(BW-1) and clips to 2^(BW-1) - 1). Activations are quantized at each
Conv2d/Linear output; for a following ReLU that equals quantizing after it (the format is
symmetric and rounds negatives to <= 0). Weights and biases go through a torch
parametrization, activations through a forward hook, on a copy of any float nn.Module.

Search (one kind at a time: weights, biases, activations; layer i of N in order; layers
set earlier stay quantized; score = relative loss (acc_float - acc) / acc_float of the
whole network on a validation split taken from the TRAINING data; p = budget / 2):
  budgets: weights p * i / N, biases p, activations p + p * i / N
  1. start at BW 12 / 8 / 12 (weights / biases / activations), baseline F; add 4 bits
     while the loss is above p;
  2. lower BW and F together while the loss stays within the layer's budget, trying one
     step past the first failure;
  3. lower BW alone at that F while within budget;
  4. 3x3 neighbourhood (BW +-1, F +-1): of the points within budget, a loss better by
     >= 0.0015 wins, otherwise the lower BW.
Costs: memory = sum of BW x element count over weights, biases and activations (output
elements per image), KiB = bits / 8 / 1024; multiplication cost = sum over layers of
BW_w x weight count x BW_a(output) x output positions (H_out x W_out; 1 for Linear).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize
from tqdm import tqdm

from common.studies.qgeneric import QUANT_LAYERS, quant_layer_names
from common.studies.report import md_table, new_figure, save_figure, text_table, write_csv, write_text
from common.studies.runner import Context, load, predictions, run_configs

KINDS = ("weights", "biases", "activations")
START_BITS = {"weights": 12, "biases": 8, "activations": 12}
MAX_BITS = 32
STEP1_ADD = 4
NEIGHBOUR_MARGIN = 0.0015
NPU_MAX_BITS = 8


@dataclass(frozen=True)
class Fxp:
    """A signed narrow-range fixed-point format: BW bits, F fraction bits (scale 2^-F)."""

    bw: int
    f: int


def fxp_quantize(x: torch.Tensor, bw: int, f: int) -> torch.Tensor:
    """clip(round(x * 2^F), -(2^(BW-1)-1), 2^(BW-1)-1) / 2^F."""
    if bw < 1:
        raise ValueError(f"fixed-point width must be >= 1 bit, got {bw}")
    lim = 2.0 ** (bw - 1) - 1
    s = 2.0 ** f
    return torch.clamp(torch.round(x * s), -lim, lim) / s


def baseline_f(bw: int, maxabs: float) -> int:
    """F = BW - 1 - ceil(log2 max|x|) (the paper's baseline; BW - 1 for max|x| = 0)."""
    return bw - 1 - (math.ceil(math.log2(maxabs)) if maxabs > 0 else 0)


@dataclass(frozen=True)
class LayerInfo:
    """Sizes of one Conv2d/Linear layer (per image for activations)."""

    name: str
    kind: str              # "conv" or "linear"
    weight_count: int
    bias_count: int
    out_elems: int         # output elements per image
    out_positions: int     # H_out * W_out (1 for linear)


@torch.no_grad()
def layer_infos(model: nn.Module, sample: torch.Tensor) -> list[LayerInfo]:
    """LayerInfo of each Conv2d/Linear, from one forward pass on ``sample`` (N >= 1)."""
    infos: dict[str, LayerInfo] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, QUANT_LAYERS):
            def hook(mod, args, out, name=name):
                conv = isinstance(mod, nn.Conv2d)
                infos[name] = LayerInfo(
                    name, "conv" if conv else "linear", mod.weight.numel(),
                    0 if mod.bias is None else mod.bias.numel(), out[0].numel(),
                    out.shape[-1] * out.shape[-2] if conv else 1)
            hooks.append(m.register_forward_hook(hook))
    try:
        model.eval()
        model(sample[:1])
    finally:
        for h in hooks:
            h.remove()
    return [infos[n] for n in quant_layer_names(model)]


Config = dict[str, dict[str, "Fxp | None"]]   # layer -> kind -> format (None = float)


def uniform_config(infos: list[LayerInfo], bits: int) -> Config:
    """Every kind of every layer at ``bits`` (F = 0; costs do not depend on F)."""
    return {i.name: {k: Fxp(bits, 0) for k in KINDS} for i in infos}


def _bits(c: Fxp | None) -> int:
    return 32 if c is None else c.bw


def layer_memory_bits(info: LayerInfo, lc: dict[str, Fxp | None]) -> int:
    """Bits of one layer's weights, biases and output activations (float counts 32)."""
    return (_bits(lc["weights"]) * info.weight_count + _bits(lc["biases"]) * info.bias_count
            + _bits(lc["activations"]) * info.out_elems)


def layer_mult_cost(info: LayerInfo, lc: dict[str, Fxp | None]) -> int:
    """BW_w x weight count x BW_a(output) x output positions."""
    return (_bits(lc["weights"]) * info.weight_count * _bits(lc["activations"])
            * info.out_positions)


def memory_kib(infos: list[LayerInfo], config: Config) -> float:
    """Total memory of weights, biases and activations in KiB."""
    return sum(layer_memory_bits(i, config[i.name]) for i in infos) / 8 / 1024


def mult_cost(infos: list[LayerInfo], config: Config) -> int:
    """Total multiplication cost (bit products)."""
    return sum(layer_mult_cost(i, config[i.name]) for i in infos)


class _Quant(nn.Module):
    """Parametrization / hook body reading its format from a shared settings cell."""

    def __init__(self, cell: dict, kind: str):
        super().__init__()
        self.cell, self.kind = cell, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cell[self.kind]
        return x if c is None else fxp_quantize(x, c.bw, c.f)


class FxpNet:
    """A copy of a float model whose Conv2d/Linear layers follow a ``Config``."""

    def __init__(self, float_model: nn.Module):
        self.model = copy.deepcopy(float_model).eval()
        self.names = quant_layer_names(self.model)
        self.cells: Config = {n: {k: None for k in KINDS} for n in self.names}
        for n in self.names:
            m = self.model.get_submodule(n)
            parametrize.register_parametrization(m, "weight", _Quant(self.cells[n], "weights"))
            if m.bias is not None:
                parametrize.register_parametrization(m, "bias", _Quant(self.cells[n], "biases"))
            act = _Quant(self.cells[n], "activations")
            m.register_forward_hook(lambda mod, args, out, act=act: act(out))

    def set(self, config: Config) -> None:
        for n in self.names:
            self.cells[n].update(config[n])


@torch.no_grad()
def _maxabs(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, dict[str, float]]:
    """max |weights|, |biases| and |outputs over x| per layer of the float model."""
    out = {n: {"activations": 0.0} for n in names}
    hooks = []
    for n in names:
        m = model.get_submodule(n)
        out[n]["weights"] = float(m.weight.abs().max())
        out[n]["biases"] = float(m.bias.abs().max()) if m.bias is not None else 0.0

        def hook(mod, args, o, n=n):
            out[n]["activations"] = max(out[n]["activations"], float(o.abs().max()))
        hooks.append(m.register_forward_hook(hook))
    try:
        model.eval()
        for i in range(0, len(x), 256):
            model(x[i:i + 256])
    finally:
        for h in hooks:
            h.remove()
    return out


def budgets(p: float, i: int, n: int) -> dict[str, float]:
    """Per-kind relative-loss budget of layer i (1-based) of n, from parameter p."""
    return {"weights": p * i / n, "biases": p, "activations": p + p * i / n}


@dataclass
class SearchResult:
    """Outcome of ``search``: the chosen config, the float accuracy and the step log."""

    config: Config
    infos: list[LayerInfo]
    acc_float: float          # on the validation split, %
    loss: float               # final relative loss on the validation split
    log: list[dict]           # per (kind, layer): budget, chosen format, its loss
    evaluations: int


def search(float_model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor,
           budget: float = 0.01, progress: bool = True) -> SearchResult:
    """Run the per-layer search (module docstring) on a validation split."""
    if not budget > 0:
        raise ValueError(f"budget must be > 0, got {budget}")
    if len(y_val) == 0:
        raise ValueError("empty validation split")
    p = budget / 2
    net = FxpNet(float_model)
    names = net.names
    infos = layer_infos(float_model, x_val)
    maxabs = _maxabs(float_model, x_val, names)
    cfg: Config = {n: {k: None for k in KINDS} for n in names}
    memo: dict[tuple, float] = {}

    def acc_of(c: Config) -> float:
        key = tuple((n, k, c[n][k]) for n in names for k in KINDS)
        if key not in memo:
            net.set(c)
            memo[key] = 100.0 * float((predictions(net.model, x_val) == y_val).float().mean())
        return memo[key]

    acc_float = acc_of(cfg)
    if acc_float <= 0:
        raise ValueError("float accuracy on the validation split is 0: nothing to keep")

    def loss_with(name: str, kind: str, fx: Fxp) -> float:
        c = {n: dict(v) for n, v in cfg.items()}
        c[name][kind] = fx
        return (acc_float - acc_of(c)) / acc_float

    log = []
    todo = [(k, i, n) for k in KINDS for i, n in enumerate(names, 1)
            if not (k == "biases" and infos[i - 1].bias_count == 0)]
    for kind, i, name in tqdm(todo, desc="fxp-search", disable=not progress):
        b = budgets(p, i, len(names))[kind]
        m = maxabs[name][kind]
        # 1. start point, widened while the loss is above p
        bw = START_BITS[kind]
        cur = Fxp(bw, baseline_f(bw, m))
        lc = loss_with(name, kind, cur)
        while lc > p and cur.bw + STEP1_ADD <= MAX_BITS:
            bw = cur.bw + STEP1_ADD
            cur = Fxp(bw, baseline_f(bw, m))
            lc = loss_with(name, kind, cur)
        # 2. BW and F down together, one step past the first failure
        cand, failed = Fxp(cur.bw - 1, cur.f - 1), 0
        while cand.bw >= 1:
            lo = loss_with(name, kind, cand)
            if lo <= b:
                cur, lc, failed = cand, lo, 0
            else:
                failed += 1
                if failed > 1:
                    break
            cand = Fxp(cand.bw - 1, cand.f - 1)
        # 3. BW alone
        while cur.bw > 1:
            cand = Fxp(cur.bw - 1, cur.f)
            lo = loss_with(name, kind, cand)
            if lo > b:
                break
            cur, lc = cand, lo
        # 4. 3x3 neighbourhood
        best, lb = cur, lc
        for dbw in (-1, 0, 1):
            for df in (-1, 0, 1):
                cand = Fxp(cur.bw + dbw, cur.f + df)
                if (dbw, df) == (0, 0) or cand.bw < 1 or cand.bw > MAX_BITS:
                    continue
                lo = loss_with(name, kind, cand)
                if lo > b:
                    continue
                if abs(lo - lb) >= NEIGHBOUR_MARGIN:
                    if lo < lb:
                        best, lb = cand, lo
                elif cand.bw < best.bw:
                    best, lb = cand, lo
        cfg[name][kind] = best
        log.append({"kind": kind, "layer": name, "budget": b, "bw": best.bw, "f": best.f,
                    "loss": lb, "within_budget": lb <= b})
    net.set(cfg)
    final = (acc_float - acc_of(cfg)) / acc_float
    return SearchResult(cfg, infos, acc_float, final, log, len(memo))


def npu_runnable(info: LayerInfo, lc: dict[str, Fxp | None]) -> str:
    """'yes' or why not, for the NPU's int8 kernels (power-of-two scales, int8 operands,
    int32 biases)."""
    why = []
    for kind, limit in (("weights", NPU_MAX_BITS), ("activations", NPU_MAX_BITS),
                        ("biases", 32)):
        c = lc[kind]
        if c is not None and c.bw > limit:
            why.append(f"{kind} {c.bw} bits > {limit}")
    return "yes" if not why else "no: " + "; ".join(why)


def config_to_json(cfg: Config) -> dict:
    return {n: {k: None if v is None else [v.bw, v.f] for k, v in lc.items()}
            for n, lc in cfg.items()}


def config_from_json(d: dict) -> Config:
    return {n: {k: None if v is None else Fxp(*v) for k, v in lc.items()} for n, lc in d.items()}


def evaluate(ctx: Context, config: dict) -> dict:
    """Run the search on the context's validation split; accuracies on its test set."""
    from common.studies.nets import network_for

    ld = load(ctx)
    xv, yv = network_for(ctx.net).val_set(ctx.dataset, ctx.data_dir, ctx.n_val, ctx.seed)
    res = search(ld.float_model, xv, yv, config["budget"])
    net = FxpNet(ld.float_model)

    def test_acc(c: Config | None) -> float:
        if c is not None:
            net.set(c)
        model = ld.float_model if c is None else net.model
        return 100.0 * float((predictions(model, ld.x_test) == ld.y_test).float().mean())

    # fixed 8 bits everywhere, baseline F (the paper's reference point)
    ma = _maxabs(ld.float_model, xv, net.names)
    fixed8 = {n: {k: Fxp(8, baseline_f(8, ma[n][k])) for k in KINDS} for n in net.names}
    for n, info in zip(net.names, res.infos):
        if info.bias_count == 0:
            fixed8[n]["biases"] = None
    return {"config": config_to_json(res.config), "val_acc_float": res.acc_float,
            "val_loss": res.loss, "log": res.log, "evaluations": res.evaluations,
            "infos": [vars(i) for i in res.infos], "test_acc_float": test_acc(None),
            "test_acc_fxp": test_acc(res.config), "test_acc_fixed8": test_acc(fixed8),
            "images_test": len(ld.y_test), "images_val": len(yv)}


def run(ctx: Context, out: Path, budget: float = 0.01, jobs: int = 1,
        ray_address: str | None = None, progress: bool = True) -> dict:
    """Run the search, write fxp.csv / fxp.png / fxp.md into ``out``; returns the totals."""
    (r,), computed = run_configs("fxp-search", evaluate, ctx,
                                 [{"budget": budget}], out / "cache", jobs, ray_address, False)
    infos = [LayerInfo(**i) for i in r["infos"]]
    cfg = config_from_json(r["config"])
    eight = uniform_config(infos, 8)
    header = ["layer", "type", "w_bw", "w_f", "b_bw", "b_f", "a_bw", "a_f", "weights",
              "biases", "out_elems", "out_positions", "memory_bits", "mult_cost",
              "memory_bits_8bit", "mult_cost_8bit", "npu_int8"]
    rows = []
    for i in infos:
        lc = cfg[i.name]
        cell = [(None, None) if lc[k] is None else (lc[k].bw, lc[k].f) for k in KINDS]
        rows.append([i.name, i.kind, *cell[0], *cell[1], *cell[2], i.weight_count,
                     i.bias_count, i.out_elems, i.out_positions, layer_memory_bits(i, lc),
                     layer_mult_cost(i, lc), layer_memory_bits(i, eight[i.name]),
                     layer_mult_cost(i, eight[i.name]), npu_runnable(i, lc)])
    write_csv(out / "fxp.csv", header, rows)
    mem, mem8 = memory_kib(infos, cfg), memory_kib(infos, eight)
    mul, mul8 = mult_cost(infos, cfg), mult_cost(infos, eight)
    totals = {"memory_kib": mem, "memory_kib_8bit": mem8,
              "memory_saved_pct": 100 * (1 - mem / mem8), "mult_cost": mul,
              "mult_cost_8bit": mul8, "mult_saved_pct": 100 * (1 - mul / mul8),
              "test_acc_float": r["test_acc_float"], "test_acc_fxp": r["test_acc_fxp"],
              "test_acc_fixed8": r["test_acc_fixed8"], "val_loss": r["val_loss"]}
    _plot(out / "fxp.png", infos, cfg, ctx, totals)
    short = ["layer", "w_bw", "w_f", "b_bw", "b_f", "a_bw", "a_f", "memory_bits", "mult_cost",
             "npu_int8"]
    sel = [[row[header.index(h)] for h in short] for row in rows]
    rel = lambda a: 100 * (r["test_acc_float"] - a) / r["test_acc_float"]  # noqa: E731
    summary = [
        f"budget {100 * budget:.2f}% relative loss (p = {budget / 2:g}); search on "
        f"{r['images_val']} seeded training images (validation split), "
        f"{r['evaluations']} evaluations; validation loss {100 * r['val_loss']:.2f}%",
        f"test ({r['images_test']} images): float {r['test_acc_float']:.2f}%, fxp "
        f"{r['test_acc_fxp']:.2f}% (relative loss {rel(r['test_acc_fxp']):.2f}%), fixed "
        f"8-bit {r['test_acc_fixed8']:.2f}% ({rel(r['test_acc_fixed8']):.2f}%)",
        f"memory {mem:.2f} KiB vs {mem8:.2f} KiB at 8 bits: {totals['memory_saved_pct']:.1f}% "
        f"saved; multiplication cost {mul} vs {mul8}: {totals['mult_saved_pct']:.1f}% saved",
    ]
    md = [f"# Per-layer fixed-point search: {ctx.net} on {ctx.dataset}", "",
          *[f"- {s}" for s in summary],
          "- npu_int8: the NPU's int8 kernels take power-of-two scales (every fixed-point "
          "format has one), weights and activations of at most 8 bits (narrower ones run "
          "as int8, without the memory saving) and int32 biases.",
          "- Activations are quantized at each conv/FC output (before BatchNorm where the "
          "float model has it unfolded).", "", md_table(short, sel)]
    write_text(out / "fxp.md", "\n".join(md) + "\n")
    print(text_table(short, sel))
    print("\n".join(summary))
    print(f"({'computed now' if computed else 'from the cache'})")
    return totals


def _plot(path: Path, infos: list[LayerInfo], cfg: Config, ctx: Context, totals: dict) -> None:
    fig, ax = new_figure(max(6.0, 0.6 * len(infos) + 3), 4.5)
    w = 0.27
    for j, k in enumerate(KINDS):
        ax.bar([x + (j - 1) * w for x in range(len(infos))],
               [0 if cfg[i.name][k] is None else cfg[i.name][k].bw for i in infos], w, label=k)
    ax.axhline(8, color="k", lw=1, ls="--", label="fixed 8 bits / NPU int8")
    ax.set_xticks(range(len(infos)))
    ax.set_xticklabels([i.name for i in infos], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("bits")
    ax.set_title(f"fxp search {ctx.net}/{ctx.dataset}: memory -{totals['memory_saved_pct']:.1f}%,"
                 f" mult cost -{totals['mult_saved_pct']:.1f}% vs 8-bit")
    ax.legend(fontsize=8)
    save_figure(path, fig)
