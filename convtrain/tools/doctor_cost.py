"""Doctor check 4: where the parameters and the FLOPs are, and the epoch time they cost."""
from __future__ import annotations

from ..fmt import fmt_flops
from .doctor_check import PASS, TITLES, WARN, Check

# A single layer holding more than this fraction of params / FLOPs is named;
# an estimated epoch longer than this many minutes is a WARN (too slow: count FLOPs).
DOMINANT = 0.5
SLOW_EPOCH_MINUTES = 15.0


def check_cost(cfg, input_shape, splits=None, state: dict | None = None) -> Check:
    """Where the parameters and the FLOPs are; an estimate of the epoch time when measured."""
    from ..nn.network import Network

    net = Network.build(cfg.model, input_shape, allocate=False, source=cfg.source)
    rows = net.summary_rows()
    total_params = sum(r["params"] for r in rows)
    total_flops = sum(r["flops"] for r in rows)
    layers = [{"name": r["name"], "type": r["type"], "output_shape": r["output_shape"],
               "params": r["params"], "flops": r["flops"],
               "params_share": r["params"] / total_params if total_params else 0.0,
               "flops_share": r["flops"] / total_flops if total_flops else 0.0} for r in rows]
    flags = []
    top_p = max(layers, key=lambda r: r["params"])
    top_f = max(layers, key=lambda r: r["flops"])
    if total_params and top_p["params_share"] > DOMINANT:
        flags.append(f"{top_p['name']} holds {100 * top_p['params_share']:.0f}% of the parameters")
    if total_flops and top_f["flops_share"] > DOMINANT:
        flags.append(f"{top_f['name']} does {100 * top_f['flops_share']:.0f}% of the FLOPs")
    details = {"total_params": total_params, "total_flops": total_flops, "layers": layers,
               "flags": flags}
    summary = f"{total_params:,} parameters, {fmt_flops(total_flops)} FLOPs per image"
    if flags:
        summary += "; " + "; ".join(flags)
    speed = state.get("images_per_s") if state else None
    if speed and splits is not None:
        n_train = len(splits.train.y)
        minutes = n_train / speed / 60.0
        details.update(images_per_s=speed, epoch_minutes_estimate=minutes)
        summary += f"; ~{speed:,.0f} img/s training (batch {state['speed_batch']}), " \
                   f"~{_fmt_minutes(minutes)} per epoch"
        if minutes > SLOW_EPOCH_MINUTES:
            return Check("cost", TITLES["cost"], WARN, summary,
                         f"too slow: count FLOPs ({top_f['name']} does "
                         f"{100 * top_f['flops_share']:.0f}%): fewer or smaller filters, a stride, "
                         f"or pool earlier", details)
    return Check("cost", TITLES["cost"], PASS, summary,
                 "" if not flags else "information only (dense layers usually hold the "
                 "parameters, convolutions the FLOPs)", details)


def _fmt_minutes(m: float) -> str:
    return f"{m * 60:.0f} s" if m < 1 else f"{m:.1f} min"
