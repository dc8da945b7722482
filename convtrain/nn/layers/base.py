"""The layer contract every registered layer follows (see DESIGN.md, "The layer contract").

A layer is built from its spec and the per-sample input shape. Building computes shapes only;
`init_params` allocates and fills the parameters, so `summary` can count a huge net for free.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ...errors import ShapeError


# The default init of a layer whose output meets no non-linearity (LeCun: Var(w) = 1 / fan_in).
LINEAR_INIT = ("lecun", 1.0)


class Layer:
    """A layer: shapes from its spec, parameters, forward and backward.

    Besides computing, a layer DECLARES what the network and the tools need to know about it;
    nothing outside the layer names layer types or sets flags on it. The declarations:

    `no_decay`        the parameters weight decay leaves alone (unless the config's decay_biases).
    `fuses_relu`      forward(x, train=, relu=True) returns max(output, 0) in the same pass, and
                      backward then receives the gradient of that rectified output and applies
                      the ReLU's mask itself. The network fuses a following layer whose
                      `activation` is "relu" (see `fuses_next`) and skips that layer.
    `activation`      an elementwise non-linearity names the function it computes ("relu",
                      "tanh"...). A subclass that overrides forward or backward is not taken for
                      its parent's function (so never fused away) unless it declares it again.
    `init_gain()`     a non-linearity returns the default init scheme that keeps the variance
                      through it, for the parametrised layer before it (e.g. ("he", 2.0)).
    `passes_init_gain()`  whether that layer looks past this one for its non-linearity: yes
                      through parameter-free layers, no through a layer with its own weights.
    `filter_bank()`   the weights as image filters (F, C, KH, KW) to draw, or None.
    `slow_to_compile` its kernels take most of a cold start's compile time (compiled first).
    backward(dout, cache, *, need_dx=True): with need_dx False (the first layer in training)
                      the layer may skip its input gradient and return None.
    """
    type: ClassVar[str]                    # the registry key, e.g. "conv"
    Spec: ClassVar[type]                   # dataclass of the layer's YAML keys
    short: ClassVar[str | None] = None     # the key a short form fills: `- dense: 10` -> units
    random: ClassVar[bool] = False         # owns a numpy Generator (dropout)
    no_decay: ClassVar[tuple[str, ...]] = ("bias",)
    fuses_relu: ClassVar[bool] = False
    activation: ClassVar[str | None] = None
    slow_to_compile: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A subclass with its own computation may compute another function than its parent's
        # activation: the network must run its forward and backward, not fuse it away.
        own = vars(cls)
        if "activation" not in own and ("forward" in own or "backward" in own):
            cls.activation = None

    def __init__(self, spec, in_shape: tuple[int, ...], *, dtype=np.float32, name: str = ""):
        self.spec = spec
        self.name = name or self.type
        self.dtype = np.dtype(dtype)
        self.in_shape = tuple(int(d) for d in in_shape)
        self.output_shape = tuple(int(d) for d in self.out_shape(self.in_shape))
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}   # saved, not trained (batch-norm statistics)
        self.rng = np.random.default_rng(0) if self.random else None

    # --- shapes and counts (no parameter memory needed) ---------------------------------------
    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return in_shape

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def fans(self) -> tuple[int, int]:
        """(fan_in, fan_out) of the weight, for variance-preserving initialisation."""
        return (1, 1)

    def flops(self, in_shape: tuple[int, ...]) -> int:
        """Forward multiply-adds x 2 per sample (elementwise layers count one op per output)."""
        return 0

    def num_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes().values())

    # --- parameters ---------------------------------------------------------------------------
    def init_params(self, rng: np.random.Generator, scheme: tuple[str, float]) -> None:
        """Allocate parameters. `scheme` is (kind, value): ("he"|"glorot"|"lecun", gain) or
        ("normal", std) or ("uniform", a). Weights are drawn, biases start at zero."""
        for key, shape in self.param_shapes().items():
            if key == "weight":
                value = draw_weight(rng, shape, self.fans(), scheme)
            else:
                value = np.zeros(shape)
            self.params[key] = np.ascontiguousarray(value, dtype=self.dtype)
        for key, shape in self.buffer_shapes().items():
            self.buffers[key] = np.zeros(shape, dtype=self.dtype)
        self.zero_grads()

    def zero_grads(self) -> None:
        for key, p in self.params.items():
            g = self.grads.get(key)
            if g is None or g.shape != p.shape or g.dtype != p.dtype:
                self.grads[key] = np.zeros_like(p)
            else:
                g.fill(0)

    def reseed(self, seed: int) -> None:
        if self.random:
            self.rng = np.random.default_rng(seed)

    # --- computation --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, *, train: bool) -> tuple[np.ndarray, Any]:
        """-> (output, cache for backward). Layers that declare `fuses_relu` also take relu=."""
        raise NotImplementedError

    def backward(self, dout: np.ndarray, cache: Any, *, need_dx: bool = True) -> np.ndarray | None:
        """Return dx (or None when not `need_dx` and the layer skips it); ADD parameter gradients
        into self.grads (the trainer zeroes them)."""
        raise NotImplementedError

    def fuses_next(self, nxt: "Layer") -> bool:
        """Whether this layer can apply `nxt` (the layer after it) in its own pass."""
        return self.fuses_relu and nxt.activation == "relu"

    # --- what the network and the tools ask -----------------------------------------------------
    def init_gain(self) -> tuple[str, float] | None:
        """The default init scheme of the parametrised layer before this non-linearity."""
        return None

    def passes_init_gain(self) -> bool:
        """Whether the parametrised layer before this one looks past it for its non-linearity."""
        return not self.param_shapes()

    def filter_bank(self) -> np.ndarray | None:
        """The weights as image filters (F, C, KH, KW) for drawing, or None (no filters)."""
        return None

    def describe(self) -> str:
        """A short human description for summary tables, e.g. '32@5x5 s1 p2'."""
        return ""


class NoCache(NamedTuple):
    pass


def draw_weight(rng, shape, fans, scheme) -> np.ndarray:
    kind, value = scheme
    fan_in, fan_out = fans
    if kind == "normal":
        return rng.normal(0.0, value, size=shape)
    if kind == "uniform":
        return rng.uniform(-value, value, size=shape)
    if kind == "he":        # Var(w) = gain / fan_in; gain 2 keeps ReLU layers' variance
        std = math.sqrt(value / fan_in)
    elif kind == "lecun":
        std = math.sqrt(1.0 / fan_in)
    elif kind == "glorot":  # Var(w) = 2 / (fan_in + fan_out), as Glorot & Bengio 2010
        std = math.sqrt(2.0 / (fan_in + fan_out))
    else:
        raise ValueError(f"unknown init {kind}")
    return rng.normal(0.0, std, size=shape)


def conv_out_size(n: int, k: int, stride: int, pad_lo: int, pad_hi: int, *, what: str,
                  ceil: bool = False, floor: bool = False) -> int:
    """Output length along one axis; refuses a window that does not tile the input exactly
    unless the config asked for ceil/floor rounding."""
    span = n + pad_lo + pad_hi - k
    if span < 0:
        raise ShapeError(f"{what}: window {k} is larger than the padded input {n + pad_lo + pad_hi}")
    if span % stride:
        if ceil:
            return span // stride + 2
        if floor:
            return span // stride + 1
        raise ShapeError(
            f"{what}: size {k} stride {stride} does not fit an input of {n} with padding "
            f"{pad_lo}+{pad_hi} (needs (n + pad - size) % stride == 0); "
            f"{_fit_hint(n, k, stride, pad_lo + pad_hi)}, or set ceil: true / floor: true")
    return span // stride + 1


def _fit_hint(n, k, stride, pad) -> str:
    hints = []
    for s in range(stride - 1, 0, -1):
        if (n + pad - k) % s == 0:
            hints.append(f"try stride {s}")
            break
    for p in range(1, k):
        if (n + pad + p - k) % stride == 0:
            hints.append(f"or pad {p} more")
            break
    return " ".join(hints) if hints else "change the size or stride"


def resolve_padding(pad, kh: int, kw: int) -> tuple[int, int, int, int]:
    """'same' (for stride 1: output = input; extra pixel at the bottom/right), 'valid' or a 4-tuple."""
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        return ((kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2)
    return tuple(pad)
