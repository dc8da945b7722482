"""Doctor check 1: backprop against finite differences, and where a wrong gradient enters."""
from __future__ import annotations

import numpy as np

from .doctor_check import FAIL, PASS, TITLES, WARN, Check

# Gradient check: max relative error for PASS / WARN (above: FAIL).
GRAD_PASS, GRAD_WARN = 1e-5, 1e-3


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
        suspects = suspect_layers(net, results)
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


def suspect_layers(net, results) -> list[str]:
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
