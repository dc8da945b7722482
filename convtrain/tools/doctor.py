"""`convtrain doctor`: the practitioner's checklist as one command.

The lecture's "What if it does not work?" list, run in order on a config:

1. gradients  the numerical gradient check (float64, central differences, a batch of 2 random
              inputs), as `convtrain gradcheck`;
2. init       initialisation health on a real batch of normalised training images: per layer the
              mean and standard deviation of the outputs, the fraction of dead ReLU units (zero for
              every image of the batch) and of saturated tanh/sigmoid units, and per parametrised
              layer the ratio |grad W| / |W|;
3. overfit    train a fresh net on a tiny subset (default 64 training images, no augmentation, the
              config's optimiser at a constant rate) until the training error is 0, within a budget;
4. cost       parameters and FLOPs per layer; the layers holding most of them; the measured speed;
5. lr         (optional) Bottou's learning-rate search on a subset, compared with the config's rate.

Each check ends as PASS, WARN or FAIL with a summary line, a one-line hint and JSON-friendly
details. `run` yields the checks one by one so the command can print them as they finish.
The module never prints; a check that raises is reported as FAIL with the exception.
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .. import data as datamod
from ..errors import ConvtrainError

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}

# Gradient check: max relative error for PASS / WARN (above: FAIL).
GRAD_PASS, GRAD_WARN = 1e-5, 1e-3
# Initialisation health.
DEAD_WARN = 0.5          # a ReLU layer with more than half its units dead over the batch
SATURATED_WARN = 0.2     # a tanh/sigmoid layer with more than a fifth of its outputs saturated
STD_LOW, STD_HIGH = 0.1, 10.0   # a parametrised layer's output std relative to the input's
GRAD_SPREAD_WARN = 1e3   # max / min of |grad W| / |W| across layers: vanishing or exploding
# Overfitting the subset: fraction of the subset still wrong that is a WARN rather than a FAIL.
OVERFIT_WARN = 0.05
# Cost: a single layer holding more than this fraction of params / FLOPs is named;
# an estimated epoch longer than this many minutes is a WARN (too slow: count FLOPs).
DOMINANT = 0.5
SLOW_EPOCH_MINUTES = 15.0


@dataclass
class Check:
    name: str          # gradients | init | overfit | cost | lr
    title: str
    status: str        # PASS | WARN | FAIL
    summary: str
    hint: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "hint": self.hint, "details": _jsonable(self.details)}


def overall(checks) -> str:
    """The worst status of the checks (PASS when there are none)."""
    worst = PASS
    for c in checks:
        if _RANK[c.status] > _RANK[worst]:
            worst = c.status
    return worst


def run(cfg, *, subset: int = 64, steps: int = 300, lr: bool = False, lr_subset: int = 512,
        splits=None) -> Iterator[Check]:
    """Run the checks on `cfg` in order, yielding each as it finishes.

    `splits` may be passed in (tests); otherwise the config's data set is loaded. When the data
    cannot be loaded, the gradient and cost checks still run and the data checks FAIL with the
    reason."""
    if subset < 1:
        raise ValueError("subset must be >= 1")
    data_error = None
    if splits is None:
        try:
            splits = datamod.load(cfg.data, seed=cfg.seed, input_shape=cfg.input)
        except ConvtrainError as e:
            data_error = str(e)
    input_shape = tuple(cfg.input) if cfg.input is not None else (
        tuple(splits.input_shape) if splits is not None else None)
    if input_shape is not None:
        # a model that does not fit its input or its labels is a config error, not four FAILs
        from ..nn.network import Network
        shell = Network.build(cfg.model, input_shape, allocate=False, source=cfg.source)
        if splits is not None:
            shell.require_labels(splits)
    state: dict = {}

    def guarded(name, title, fn: Callable[[], Check]) -> Check:
        t0 = time.perf_counter()
        try:
            check = fn()
        except ConvtrainError as e:   # the message names the problem: no traceback to look for
            check = Check(name, title, FAIL, str(e), "fix the config or the data named above")
        except Exception as e:   # a broken layer: report it and go on with the other checks
            check = Check(name, title, FAIL, f"raised {type(e).__name__}: {e}", _ERROR_HINT,
                          {"traceback": traceback.format_exc(limit=6)})
        check.details["seconds"] = round(time.perf_counter() - t0, 2)
        return check

    def needs_data(name, title, fn):
        if splits is None:
            return Check(name, title, FAIL, f"cannot load the data: {data_error}",
                         "fix data.path (or install the data set) and rerun",
                         {"seconds": 0.0})
        return guarded(name, title, fn)

    if input_shape is None:
        yield Check("gradients", TITLES["gradients"], FAIL,
                    f"cannot load the data and the config has no `input:` shape: {data_error}",
                    "set `input: [C, H, W]` in the config or fix the data path", {"seconds": 0.0})
    else:
        yield guarded("gradients", TITLES["gradients"],
                      lambda: check_gradients(cfg, input_shape, state))
    yield needs_data("init", TITLES["init"],
                     lambda: check_init(cfg, splits, batch=min(subset, 128)))
    yield needs_data("overfit", TITLES["overfit"],
                     lambda: check_overfit(cfg, splits, subset=subset, steps=steps, state=state))
    if input_shape is not None:
        yield guarded("cost", TITLES["cost"], lambda: check_cost(cfg, input_shape, splits, state))
    if lr:
        yield needs_data("lr", TITLES["lr"], lambda: check_lr(cfg, splits, subset=lr_subset))


TITLES = {"gradients": "gradient check", "init": "initialisation health",
          "overfit": "overfit a tiny subset", "cost": "parameters and FLOPs",
          "lr": "learning-rate search"}

_ERROR_HINT = "a layer raised an error: run the failing step alone (e.g. `convtrain gradcheck`) " \
              "for the traceback"


# --- 1. gradients -------------------------------------------------------------------------------

def check_gradients(cfg, input_shape, state: dict | None = None, *, batch: int = 2,
                    samples: int = 20) -> Check:
    """Finite differences against backprop on a float64 copy of the net (random inputs)."""
    from .gradcheck import run_config_gradcheck
    from ..nn.network import Network

    results = run_config_gradcheck(cfg, input_shape, batch=batch, seed=cfg.seed, samples=samples)
    worst = max(results, key=lambda r: r.max_rel_error)
    checked = sum(r.checked for r in results)
    kinks = sum(r.kinks for r in results)
    bad = [r for r in results if r.max_rel_error > GRAD_PASS]
    failing = [r for r in results if r.max_rel_error > GRAD_WARN]
    details = {"batch": batch, "dtype": "float64", "checked": checked, "kinks": kinks,
               "tensors": [{"name": r.name, "shape": list(r.shape), "checked": r.checked,
                            "kinks": r.kinks, "max_rel_error": r.max_rel_error} for r in results]}
    if state is not None:
        state["gradients_failed"] = bool(failing)
    where = f"{len(results)} tensors, {checked} entries (batch {batch}, float64"
    where += f", {kinks} on kinks skipped)" if kinks else ")"
    if failing and any(lc.common.init is not None for lc in cfg.model):
        # Weights drawn tiny (e.g. {normal: 0.001}) leave activations smaller than the finite-
        # difference step, which then crosses ReLU kinks everywhere: check the code again with
        # the variance-preserving default init before blaming backprop.
        retry = _gradcheck_default_init(cfg, input_shape, batch=batch, samples=samples)
        if all(r.max_rel_error <= GRAD_PASS for r in retry):
            if state is not None:
                state["gradients_failed"] = False
            details["default_init_max_rel_error"] = max(r.max_rel_error for r in retry)
            return Check("gradients", TITLES["gradients"], WARN,
                         f"max relative error {worst.max_rel_error:.2e} ({worst.name}) with the "
                         f"config's init, but backprop checks out with the default init",
                         "the configured init makes activations too small for finite differences "
                         "(see initialisation health): the code is right, the scale is not",
                         details)
    if failing:
        net = Network.build(cfg.model, input_shape, allocate=False, source=cfg.source)
        suspects = _suspect_layers(net, results)
        details["suspects"] = suspects
        names = ", ".join(r.name for r in failing)
        return Check("gradients", TITLES["gradients"], FAIL,
                     f"backprop disagrees with finite differences: max relative error "
                     f"{worst.max_rel_error:.2e} ({worst.name}); wrong: {names}",
                     f"a backward is wrong: look at {', '.join(suspects)} (the error enters "
                     f"there); `convtrain gradcheck` shows the full table", details)
    if checked == 0:
        return Check("gradients", TITLES["gradients"], WARN,
                     f"every sampled entry sat on a kink ({kinks}): nothing was compared",
                     "rerun `convtrain gradcheck --samples 200 --seed 1`", details)
    if bad:
        return Check("gradients", TITLES["gradients"], WARN,
                     f"max relative error {worst.max_rel_error:.2e} ({worst.name}) over {where}",
                     "borderline: kinks (relu at 0, max-pool ties) or rounding; rerun "
                     "`convtrain gradcheck --samples 200` and look at the worst tensor", details)
    return Check("gradients", TITLES["gradients"], PASS,
                 f"max relative error {worst.max_rel_error:.1e} over {where}", "", details)


def _gradcheck_default_init(cfg, input_shape, *, batch: int, samples: int):
    import dataclasses

    from .gradcheck import check_network
    from ..nn.network import Network

    model = [dataclasses.replace(lc, common=dataclasses.replace(lc.common, init=None))
             for lc in cfg.model]
    net = Network.build(model, input_shape, dtype=np.float64, seed=cfg.seed, source=cfg.source)
    rng = np.random.default_rng(cfg.seed)
    x = rng.standard_normal((batch,) + tuple(input_shape))
    y = rng.integers(0, net.layers[-1].output_shape[0], size=batch)
    return check_network(net, x, y, seed=cfg.seed, limit=samples)


def _suspect_layers(net, results) -> list[str]:
    """Layers where a wrong gradient enters: between the deepest tensor that fails and the next
    parametrised layer whose gradients are right (backprop errors spread towards the input)."""
    index = {layer.name: i for i, layer in enumerate(net.layers)}

    def layer_of(r):
        return -1 if r.name == "input" else index.get(r.name.rsplit(".", 1)[0], -1)

    fails = [layer_of(r) for r in results if r.max_rel_error > GRAD_WARN]
    deepest = max(fails)
    passing = [layer_of(r) for r in results if r.max_rel_error <= GRAD_WARN and layer_of(r) > deepest]
    upper = min(passing) if passing else len(net.layers) - 1
    lo = max(deepest, 0)
    names = [net.layers[i].name for i in range(lo, upper + 1)]
    if not passing:
        names.append("the loss")
    return names


# --- 2. initialisation health -------------------------------------------------------------------

def check_init(cfg, splits, *, batch: int = 64) -> Check:
    """Forward and backward one real batch through the freshly initialised float32 net."""
    from ..nn.loss import softmax_cross_entropy
    from ..nn.network import Network

    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed, source=cfg.source)
    n = min(batch, len(splits.train.y))
    x = datamod.normalize(splits.train.x[:n], splits.mean, splits.std)
    y = splits.train.y[:n]
    in_std = float(x.std()) or 1.0
    net.reseed(cfg.seed, 0)
    net.zero_grads()
    rows, caches = [], []
    h = x
    for layer in net.layers:
        h, cache = layer.forward(h, train=True)
        caches.append(cache)
        rows.append(_activation_stats(layer, h))
    logits = h
    _, dlogits, _ = softmax_cross_entropy(logits.astype(np.float64), y)
    net.backward(dlogits.astype(net.dtype), caches)
    for layer, row in zip(net.layers, rows):
        w = layer.params.get("weight")
        if w is not None:
            wn = float(np.linalg.norm(w.astype(np.float64)))
            gn = float(np.linalg.norm(layer.grads["weight"].astype(np.float64)))
            row["grad_weight_ratio"] = gn / wn if wn > 0 else None
        row["std_ratio"] = row["std"] / in_std if row["std"] is not None else None

    details = {"batch": n, "input_std": in_std, "layers": rows}
    nonfinite = [r["name"] for r in rows if not r["finite"]]
    if nonfinite:
        return Check("init", TITLES["init"], FAIL,
                     f"non-finite outputs at initialisation in {', '.join(nonfinite)}",
                     "check the init scheme and the data normalisation (inf/NaN already in the "
                     "first forward pass)", details)
    problems, hints = [], []
    for r in rows:
        if r["dead"] is not None and r["dead"] > DEAD_WARN:
            problems.append(f"{r['name']}: {100 * r['dead']:.0f}% dead units")
            hints.append("dead ReLUs: lower the initial weight scale or the biases, or use leaky_relu")
        if r["saturated"] is not None and r["saturated"] > SATURATED_WARN:
            problems.append(f"{r['name']}: {100 * r['saturated']:.0f}% saturated")
            hints.append("saturated units: use a smaller init (glorot) or normalise the inputs")
    param_rows = [r for r in rows if r["grad_weight_ratio"] is not None]
    stds = [(r["name"], r["std_ratio"]) for r in param_rows]
    low = [(nm, s) for nm, s in stds if s < STD_LOW]
    high = [(nm, s) for nm, s in stds if s > STD_HIGH]
    if low:
        nm, s = low[0]
        problems.append(f"variance collapses: {nm} output std {s:.2g} x the input's")
        hints.append("the signal vanishes with depth: use a larger init (he for relu) or "
                     "normalisation layers")
    if high:
        nm, s = high[0]
        problems.append(f"variance explodes: {nm} output std {s:.2g} x the input's")
        hints.append("the signal grows with depth: use a smaller init (he / glorot)")
    ratios = [r["grad_weight_ratio"] for r in param_rows]
    if ratios:
        zero = [r["name"] for r in param_rows if r["grad_weight_ratio"] == 0]
        positive = [v for v in ratios if v > 0]
        if zero:
            problems.append(f"no gradient reaches {', '.join(zero)}")
            hints.append("a layer gets zero gradient: dead units above it or a broken backward")
        elif positive and max(positive) / min(positive) > GRAD_SPREAD_WARN:
            problems.append(f"|grad W|/|W| spans {max(positive) / min(positive):.0e} across layers")
            hints.append("gradients vanish or explode through the depth: check the init scale")
    dead_rows = [r for r in rows if r["dead"] is not None]
    max_dead = max((r["dead"] for r in dead_rows), default=None)
    last_std = stds[-1][1] if stds else None
    desc = [f"{len(rows)} layers on {n} images"]
    if last_std is not None:
        desc.append(f"output std {min(s for _, s in stds):.2g}..{max(s for _, s in stds):.2g} x input")
    if max_dead is not None:
        desc.append(f"dead ReLUs <= {100 * max_dead:.0f}%")
    if ratios:
        desc.append(f"|grad W|/|W| {min(ratios):.1e}..{max(ratios):.1e}")
    if problems:
        return Check("init", TITLES["init"], WARN, "; ".join(problems), hints[0], details)
    return Check("init", TITLES["init"], PASS, "; ".join(desc), "", details)


def _activation_stats(layer, h: np.ndarray) -> dict:
    h64 = h.astype(np.float64, copy=False)
    finite = bool(np.isfinite(h64).all())
    row = {"name": layer.name, "type": layer.type, "shape": list(h.shape[1:]), "finite": finite,
           "mean": None, "std": None, "dead": None, "saturated": None, "grad_weight_ratio": None}
    if not finite:
        return row
    row["mean"] = float(h64.mean())
    row["std"] = float(h64.std())
    if layer.type == "relu":
        row["dead"] = float(np.all(h == 0, axis=0).mean())
    elif layer.type == "tanh":
        row["saturated"] = float((np.abs(h64) > 0.99).mean())
    elif layer.type == "sigmoid":
        row["saturated"] = float(((h64 < 0.01) | (h64 > 0.99)).mean())
    return row


# --- 3. overfit a tiny subset -------------------------------------------------------------------

def check_overfit(cfg, splits, *, subset: int = 64, steps: int = 300,
                  state: dict | None = None) -> Check:
    """Train a fresh net on the first `subset` training images until none is misclassified."""
    from ..train.evaluate import loss_and_wrong
    from ..nn.network import Network
    from ..train.optim import init_velocities, sgd_step

    n = min(subset, len(splits.train.y))
    x = datamod.normalize(splits.train.x[:n], splits.mean, splits.std)
    y = splits.train.y[:n]
    net = Network.build(cfg.model, splits.input_shape, seed=cfg.seed, source=cfg.source)
    k = net.layers[-1].output_shape[0]
    velocities = init_velocities(net)
    lr = cfg.optim.lr
    batch_size = min(cfg.train.batch_size, n)
    batches = datamod.BatchSchedule(n, batch_size, seed=cfg.seed)
    eval_every = max(1, min(batches.per_epoch, 10))
    initial, wrong = loss_and_wrong(net, x, y)
    limit = 10 * max(initial, math.log(k))
    losses, step_times = [], []
    diverged_at = None
    last_loss = initial
    step = 0
    for step in range(1, steps + 1):
        idx = batches.indices(step - 1)
        t0 = time.perf_counter()
        net.reseed(cfg.seed, step)
        net.zero_grads()
        loss, _, _ = net.loss_and_grads(x[idx], y[idx])
        if not math.isfinite(loss) or loss > limit:
            diverged_at = step
            last_loss = loss
            break
        sgd_step(net, velocities, lr, cfg.optim)
        step_times.append(time.perf_counter() - t0)
        losses.append(float(loss))
        if step % eval_every == 0 or step == steps:
            _, wrong = loss_and_wrong(net, x, y)
            if wrong == 0:
                break
    final = last_loss
    if diverged_at is None:
        final, wrong = loss_and_wrong(net, x, y)
    timed = step_times[3:] or step_times
    images_per_s = batch_size / float(np.median(timed)) if timed else None
    if state is not None and images_per_s:
        state["images_per_s"] = images_per_s
        state["speed_batch"] = batch_size
    details = {"subset": n, "batch_size": batch_size, "lr": lr, "steps": step,
               "budget": steps, "initial_loss": initial,
               "final_loss": final if math.isfinite(final) else None,
               "wrong": int(wrong) if diverged_at is None else None,
               "error": wrong / n if diverged_at is None else None,
               "diverged_at": diverged_at, "loss_curve": losses[::max(1, len(losses) // 50)],
               "images_per_s": images_per_s}
    name, title = "overfit", TITLES["overfit"]
    grad_note = (" (and the gradient check failed: fix backprop first)"
                 if state and state.get("gradients_failed") else "")
    if diverged_at is not None:
        shown = f"{last_loss:.3g}" if math.isfinite(last_loss) else "not finite"
        return Check(name, title, FAIL,
                     f"training diverged at step {diverged_at} (loss {initial:.3f} -> {shown}) "
                     f"at lr {lr:g}",
                     f"training diverges: lower the learning rate (try {lr / 10:g}, or "
                     f"`convtrain lr-search`) or check backprop{grad_note}", details)
    summary = (f"{wrong}/{n} wrong after {step} steps (loss {initial:.3f} -> {final:.4f}, "
               f"lr {lr:g}, batch {batch_size})")
    if wrong == 0:
        return Check(name, title, PASS, summary, "", details)
    error = wrong / n
    if final < 0.1 * math.log(k) and error > 0.1:
        hint = "loss low but accuracy low: check the loss (labels against outputs)"
    elif final >= 0.9 * initial:
        hint = ("the loss does not go down: raise the learning rate or check backprop and the "
                "labels" + grad_note)
    else:
        hint = ("underperforming: make the net larger, or train longer (`--steps`) / at a "
                "higher rate" + grad_note)
    status = WARN if error <= OVERFIT_WARN else FAIL
    return Check(name, title, status, summary, hint, details)


# --- 4. parameters and FLOPs --------------------------------------------------------------------

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
    summary = f"{total_params:,} parameters, {_fmt_flops(total_flops)} FLOPs per image"
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


def _fmt_flops(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _fmt_minutes(m: float) -> str:
    return f"{m * 60:.0f} s" if m < 1 else f"{m:.1f} min"


# --- 5. learning rate ---------------------------------------------------------------------------

def check_lr(cfg, splits, *, subset: int = 512) -> Check:
    """Bottou's search from a large rate down; compare the rate it picks with the config's."""
    from . import lr_search

    start = max(1.0, 2 * cfg.optim.lr)
    try:
        trials, chosen = lr_search.search(cfg, splits, subset=subset, start=start, min_lr=1e-6)
    except ConvtrainError as e:
        return Check("lr", TITLES["lr"], FAIL, str(e),
                     "no rate lowers the loss: check backprop (gradient check) and the data/labels")
    ours = cfg.optim.lr
    details = {"subset": min(subset, len(splits.train.y)), "chosen": chosen, "config_lr": ours,
               "trials": [{"lr": t.lr, "initial_loss": t.initial_loss,
                           "final_loss": t.final_loss if math.isfinite(t.final_loss) else None,
                           "diverged": t.diverged} for t in trials]}
    summary = f"the search picks {chosen:.3g} (the largest rate that lowers the loss); the config uses {ours:g}"
    if ours > 2 * chosen:
        return Check("lr", TITLES["lr"], WARN, summary,
                     f"the config's rate is above what trains: lower optim.lr to about {chosen:.2g}",
                     details)
    if ours < chosen / 64:
        return Check("lr", TITLES["lr"], WARN, summary,
                     f"the config's rate is far below what trains: training may be slow; try about "
                     f"{chosen / 2:.2g}", details)
    return Check("lr", TITLES["lr"], PASS, summary, "", details)


# --- helpers ------------------------------------------------------------------------------------

def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    return v
