"""Network: the ordered layers built from a config, forward/backward, state, summary rows."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from .kernels.elementwise import sum_abs
from .layers.base import LINEAR_INIT
from .loss import softmax_cross_entropy

if TYPE_CHECKING:
    from ..config.common import LayerCommon


def layer_types():
    from .layers.registry import LAYER_TYPES
    return LAYER_TYPES


class Network:
    def __init__(self, layers, commons, input_shape, dtype, *, source: str = "config"):
        self.layers = list(layers)
        self.source = source            # where the model comes from, for error messages
        self.commons = list(commons)
        self._common_by_id = {id(l): c for l, c in zip(self.layers, self.commons)}
        self.input_shape = tuple(input_shape)
        self.dtype = np.dtype(dtype)
        # the layers that apply the next layer (a ReLU) in their own pass, which the network
        # then skips; not when an activation-sparsity penalty needs the layer's own output
        self.relu_fused = {i for i, (layer, nxt) in enumerate(zip(self.layers, self.layers[1:]))
                           if layer.fuses_next(nxt) and not self.commons[i].sparsity}

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, model, input_shape, *, dtype=np.float32, seed: int = 0, allocate: bool = True,
              source: str = "config") -> "Network":
        """Layers from `model` (a sequence of config.LayerConfig), any stack that fits its input:
        what needs class scores at the end asks `require_class_scores`. `allocate=False` computes
        shapes and counts only, so a net too large for memory can still be summarised."""
        registry = layer_types()
        shape = tuple(int(d) for d in input_shape)
        layers, commons, counts = [], [], {}
        taken = {lc.common.name for lc in model if lc.common.name}
        for lc in model:
            layer_cls = registry[lc.type]
            name = lc.common.name
            while not name or (name in taken and not lc.common.name):
                counts[lc.type] = counts.get(lc.type, 0) + 1   # conv1, conv2... skipping user names
                name = f"{lc.type}{counts[lc.type]}"
            taken.add(name)
            try:
                layer = layer_cls(lc.spec, shape, dtype=dtype, name=name)
            except ShapeError as e:
                raise lc.error(f"{lc.type}: {e} (its input is {_fmt(shape)})", ShapeError) from None
            layers.append(layer)
            commons.append(lc.common)
            shape = layer.output_shape
        net = cls(layers, commons, input_shape, dtype, source=source)
        if allocate:
            net.initialize(seed)
        return net

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape

    @property
    def ends_in_class_scores(self) -> bool:
        return len(self.output_shape) == 1

    def require_class_scores(self, source: str | None = None) -> None:
        """Training, lr-search, the doctor and eval need a vector of class scores at the end
        (summary and gradcheck take any stack)."""
        if not self.ends_in_class_scores:
            raise ConfigError(f"{source or self.source}: the model must end in a vector of class "
                              f"scores (e.g. `- dense: 10`); it ends in shape "
                              f"{_fmt(self.output_shape)}")

    def require_labels(self, splits) -> None:
        """The model must end in class scores, and the data's labels must index them."""
        self.require_class_scores()
        k = self.output_shape[0]
        labels = max((int(d.y.max()) for d in (splits.train, splits.val, splits.test) if len(d.y)),
                     default=0)   # the test split too: `eval` must work on the trained model
        if labels >= k:
            raise DataError(f"the model ends in {k} outputs but the data has labels up to "
                            f"{labels}: end the model in `- dense: {labels + 1}`")

    def initialize(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        for i, (layer, common) in enumerate(zip(self.layers, self.commons)):
            scheme = common.init or self._default_init(i)
            layer.init_params(rng, scheme)
            layer.reseed(seed * 7919 + i)

    def _default_init(self, i: int) -> tuple[str, float]:
        """The init the next non-linearity asks for (He for the ReLU family, Glorot for
        tanh/sigmoid), looking past the layers that pass it on; LeCun for a linear output."""
        for layer in self.layers[i + 1:]:
            gain = layer.init_gain()
            if gain is not None:
                return gain
            if not layer.passes_init_gain():
                break
        return LINEAR_INIT

    # --- parameters and state -----------------------------------------------------------------
    def common_of(self, layer) -> LayerCommon:
        return self._common_by_id[id(layer)]

    def parameters(self) -> Iterator[tuple[str, object, str, np.ndarray]]:
        for layer in self.layers:
            for pname, p in layer.params.items():
                yield f"{layer.name}.{pname}", layer, pname, p

    def zero_grads(self) -> None:
        for layer in self.layers:
            layer.zero_grads()

    def grads_finite(self) -> bool:
        """One cheap pass: a dot product is NaN/inf when any entry is (or when the gradient is so
        large that its square overflows: a divergence too, so no warning is printed for it)."""
        with np.errstate(over="ignore", invalid="ignore"):
            for layer in self.layers:
                for g in layer.grads.values():
                    flat = g.reshape(-1)
                    if not np.isfinite(np.dot(flat, flat)):
                        return False
        return True

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {}
        for layer in self.layers:
            for key, value in list(layer.params.items()) + list(layer.buffers.items()):
                state[f"{layer.name}.{key}"] = value
        return state

    def expected_state(self) -> dict[str, tuple[int, ...]]:
        out = {}
        for layer in self.layers:
            for key, shape in list(layer.param_shapes().items()) + list(layer.buffer_shapes().items()):
                out[f"{layer.name}.{key}"] = tuple(shape)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays in; a missing, extra or misshapen entry is a ValueError listing all of them."""
        expected = self.expected_state()
        problems = [f"missing {k}" for k in expected if k not in state]
        problems += [f"unexpected {k}" for k in state if k not in expected]
        problems += [f"{k}: shape {tuple(state[k].shape)} != {expected[k]}"
                     for k in expected if k in state and tuple(state[k].shape) != expected[k]]
        if problems:
            raise ValueError("; ".join(problems))
        for layer in self.layers:
            for group in (layer.params, layer.buffers):
                for key in group:
                    group[key][...] = state[f"{layer.name}.{key}"]

    def reseed(self, seed: int, step: int) -> None:
        """Random layers draw from a generator that is a pure function of (seed, step, layer), so
        a resumed run repeats the same dropout masks without saving generator state."""
        for i, layer in enumerate(self.layers):
            if layer.random:
                layer.rng = np.random.default_rng([seed, step, i])

    # --- computation --------------------------------------------------------------------------
    def forward_layer(self, i: int, x: np.ndarray, *, train: bool):
        """Layer i's forward as the network runs it: (output, cache), ReLUs fused (a fused
        ReLU passes its input on: the layer before has applied it)."""
        if i - 1 in self.relu_fused:
            return x, None
        if i in self.relu_fused:
            return self.layers[i].forward(x, train=train, relu=True)
        return self.layers[i].forward(x, train=train)

    def backward_layer(self, i: int, dout: np.ndarray, cache, *, need_dx: bool = True):
        """Layer i's backward as the network runs it: a fused ReLU passes dout on unchanged
        (the layer before it applies the mask). `need_dx` False lets the layer skip dx."""
        if i - 1 in self.relu_fused:
            return dout
        dout = np.ascontiguousarray(dout)
        if need_dx:    # the plain call: backward(dout, cache) is all a layer must accept
            return self.layers[i].backward(dout, cache)
        return self.layers[i].backward(dout, cache, need_dx=False)

    def forward(self, x: np.ndarray, *, train: bool):
        """-> (logits, caches, sparse_outputs, penalty). Sparsity adds lambda * mean |a|."""
        caches, sparse, penalty = [], {}, 0.0
        for i, common in enumerate(self.commons):
            x, cache = self.forward_layer(i, x, train=train)
            caches.append(cache)
            if common.sparsity and train:
                sparse[i] = x
                penalty += common.sparsity * sum_abs(x.reshape(-1)) / x.size
        return x, caches, sparse, penalty

    def backward(self, dout: np.ndarray, caches, sparse=None, *, need_input_grad: bool = True):
        """Back-propagate; returns d loss / d input, or None when not `need_input_grad` (the
        first layer may then skip computing it, as training does)."""
        sparse = sparse or {}
        for i in range(len(self.layers) - 1, -1, -1):
            if i in sparse:
                a = sparse[i]
                dout = dout + (self.commons[i].sparsity / a.size) * np.sign(a)
            dout = self.backward_layer(i, dout, caches[i], need_dx=need_input_grad or i > 0)
        return dout if need_input_grad else None

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray):
        """Forward, loss, backward (grads ADDED to the layers'). -> (loss, data_loss, logits)."""
        logits, caches, sparse, penalty = self.forward(x, train=True)
        data_loss, dlogits, _ = softmax_cross_entropy(logits, y)
        self.backward(dlogits.astype(self.dtype, copy=False), caches, sparse, need_input_grad=False)
        return data_loss + penalty, data_loss, logits

    def predict(self, x: np.ndarray) -> np.ndarray:
        logits, _, _, _ = self.forward(x, train=False)
        return logits

    # --- description --------------------------------------------------------------------------
    def summary_rows(self) -> list[dict]:
        rows, shape = [], self.input_shape
        itemsize = self.dtype.itemsize
        for layer in self.layers:
            ps = layer.param_shapes()
            weights = math.prod(ps["weight"]) if "weight" in ps else 0
            rows.append({
                "name": layer.name, "type": layer.type, "describe": layer.describe(),
                "input_shape": list(shape), "output_shape": list(layer.output_shape),
                "params": layer.num_params(), "weights": weights,
                "biases": layer.num_params() - weights,
                "flops": int(layer.flops(shape)),
                "activation_bytes": math.prod(layer.output_shape) * itemsize,
            })
            shape = layer.output_shape
        return rows


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape)
