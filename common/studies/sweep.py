"""Bit-width sweep: Brevitas PTQ at 1..8 bits, weights and activations together and each
alone, in three schemes, accuracy on the test set.

Schemes:
  po2          the deployable one (symmetric, power-of-two scale, per tensor), built by the
               network's own Brevitas builder: the 8-bit point IS the deployed int8 model
  asym         the seeds' (asymmetric with zero point, float scale), every conv/FC layer
  po2-channel  symmetric power-of-two, per-channel weights, every conv/FC layer
Modes: wa (both kinds at N bits), w (weights only), a (activations only).
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from common.studies.qgeneric import fake_quant_model
from common.studies.report import md_table, new_figure, save_figure, text_table, write_csv, write_text
from common.studies.runner import Context, accuracy, load, run_configs

SCHEMES = ("po2", "asym", "po2-channel")
MODES = ("wa", "w", "a")
SYMMETRIC_NARROW = ("po2", "po2-channel")
ONE_BIT_NOTE = ("1-bit symmetric narrow-range weights hold only the level 0: every weight "
                "is 0, the output is constant and accuracy is chance (~10%); not a result")


def configs(bits: list[int], schemes: list[str], modes: list[str]) -> list[dict]:
    """The float reference followed by every (scheme, mode, bits)."""
    out = [{"scheme": "float"}]
    out += [{"scheme": s, "mode": m, "bits": b} for s in schemes for m in modes for b in bits]
    return out


# The seeds' notebook figures (LeNet-5, MNIST, asymmetric PTQ, full test set), for comparison.
SEEDS_FIGURES = {("lenet", "mnist"): {1: 9.74, 2: 10.5, 3: 75.74, 4: 96.78, 5: 98.7,
                                      6: 98.96, 7: 99.06, 8: 99.04}}
ONE_BIT_SHORT = "not a result: 1-bit narrow weights are all 0 (see note)"


def degenerate(config: dict) -> str | None:
    """Why a configuration holds no information (None if it does)."""
    if (config.get("scheme") in SYMMETRIC_NARROW and config.get("bits") == 1
            and "w" in config.get("mode", "")):
        return ONE_BIT_SHORT
    return None


def widths(config: dict) -> tuple[int | None, int | None]:
    """(weight bits, activation bits) of a configuration; None = float."""
    b, m = config["bits"], config["mode"]
    return (b if "w" in m else None), (b if "a" in m else None)


def build(ctx: Context, config: dict) -> nn.Module:
    """The (calibrated) model of one configuration; po2 comes from the network's own
    deployable builder, so po2/wa/8 is the deployed int8 model."""
    from common.studies.nets import network_for

    ld = load(ctx)
    if config["scheme"] == "float":
        return ld.float_model
    if config["scheme"] == "po2":
        return network_for(ctx.net).build_deployable(ld.float_model, ld.calib, *widths(config))
    return fake_quant_model(ld.float_model, ld.calib, config["scheme"], *widths(config))


def evaluate(ctx: Context, config: dict) -> dict:
    """Accuracy (%) of one configuration on the context's test images."""
    why = degenerate(config)
    if why is not None:
        return {"accuracy": None, "constant": True, "note": why}
    ld = load(ctx)
    acc, constant = accuracy(build(ctx, config), ld.x_test, ld.y_test)
    return {"accuracy": acc, "constant": constant, "images": len(ld.y_test),
            "note": "constant prediction (chance level)" if constant else ""}


def run(ctx: Context, out: Path, bits: list[int], schemes: list[str], modes: list[str],
        jobs: int = 1, ray_address: str | None = None, progress: bool = True) -> list[dict]:
    """Run the sweep, write sweep.csv / sweep.png / sweep.md into ``out``; returns the rows."""
    from common.studies.nets import network_for

    cfgs = configs(bits, schemes, modes)
    results, computed = run_configs("sweep", evaluate, ctx, cfgs, out / "cache", jobs,
                                    ray_address, progress)
    float_acc = results[0]["accuracy"]
    rows = []
    for c, r in zip(cfgs[1:], results[1:]):
        acc = r["accuracy"]
        rows.append({"scheme": c["scheme"], "mode": c["mode"], "bits": c["bits"],
                     "accuracy_pct": None if acc is None else round(acc, 2),
                     "note": r["note"]})
    header = ["scheme", "mode", "bits", "accuracy_pct", "note"]
    table = [[r[h] for h in header] for r in rows]
    write_csv(out / "sweep.csv", header, table + [["float", "-", 32, round(float_acc, 2), ""]])
    _plot(out / "sweep.png", rows, float_acc, ctx)
    net = network_for(ctx.net)
    md = [f"# Bit-width sweep: {ctx.net} on {ctx.dataset}", "",
          f"{results[0]['images']} test images; float accuracy "
          f"{float_acc:.2f}%; calibration on {ctx.n_calib} training images.", "",
          f"- po2 (deployable): {net.deployable_note}.",
          "- asym (the seeds'): Brevitas ShiftedUint8 quantizers (zero point, float scale) "
          "on every conv/FC input and weight, float biases.",
          "- po2-channel: every conv/FC input and weight, symmetric power-of-two scales, one "
          "per output channel for weights; float biases.",
          f"- 1 bit, symmetric narrow range: {ONE_BIT_NOTE}.",
          *(["- the seeds' notebook (asym, wa, their own float model, full test set): "
             + ", ".join(f"{b} bits {a}%" for b, a in
                         SEEDS_FIGURES[(ctx.net, ctx.dataset)].items())]
            if (ctx.net, ctx.dataset) in SEEDS_FIGURES else []), "",
          md_table(header, table)]
    write_text(out / "sweep.md", "\n".join(md) + "\n")
    print(text_table(header, table))
    if any(r["note"] == ONE_BIT_SHORT for r in rows):
        print(f"note: {ONE_BIT_NOTE}")
    print(f"float: {float_acc:.2f}%  ({computed} configurations computed, "
          f"{len(cfgs) - computed} from the cache in {out / 'cache'})")
    return rows


def _plot(path: Path, rows: list[dict], float_acc: float, ctx: Context) -> None:
    fig, ax = new_figure()
    for s, color in zip(SCHEMES, ("C0", "C1", "C2")):
        for m, style in zip(MODES, ("-", "--", ":")):
            pts = [(r["bits"], r["accuracy_pct"]) for r in rows
                   if r["scheme"] == s and r["mode"] == m and r["accuracy_pct"] is not None]
            if pts:
                ax.plot(*zip(*pts), style, color=color, marker="o", label=f"{s} {m}")
    ax.axhline(float_acc, color="k", lw=1, label=f"float {float_acc:.2f}%")
    ax.set_xlabel("bits")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"PTQ bit-width sweep: {ctx.net} on {ctx.dataset}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    save_figure(path, fig)
