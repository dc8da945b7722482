"""One side of the benchmark for one network, in its own process, driven over stdin/stdout.

    python -m benchmarks.worker convtrain SPEC.json
    python -m benchmarks.worker torch SPEC.json
    python -m benchmarks.worker onnxruntime SPEC.json   (inference only: convtrain's net exported)

SPEC.json (written by benchmarks.run): {"config": path, "layers": [...described layers...],
"input": [C, H, W], "optim": {"lr", "momentum", "weight_decay", "nesterov"}, "seed": 0}.
The convtrain side builds the network from the config; the torch side from "layers" (it never
imports convtrain). Commands are JSON lines on stdin, answers JSON lines on stdout (each answer also carries "cpu",
the process's CPU seconds spent on the command, so the parent can tell how much CPU other
processes took meanwhile):

    {"cmd": "train", "batch": B, "steps": k}   k training steps -> {"seconds", "loss"}
    {"cmd": "infer", "batch": B, "steps": k}   k forward passes (inference mode) -> {"seconds"}
    {"cmd": "profile", "batch": B, "reps": r}  per-layer forward/backward times (min, median; ms)
    {"cmd": "mem"}                             -> {"baseline_kb", "peak_kb"} (VmHWM)
    {"cmd": "info"}                            -> versions, threads
    {"cmd": "quit"}

Data is synthetic (standard normal images, uniform labels), made once per batch size: the timed
loops do no data loading. A training step is exactly the trainer's (minus the data pipeline and
the rollback snapshot taken every 50 steps): reseed, zero grads, forward + loss + backward, the
finiteness check of the gradients, the error count, the SGD-with-momentum update.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
NUM_BATCHES = 8          # distinct synthetic batches cycled through (per batch size)


def maxrss_kb() -> int:
    """Peak resident set size of this process, kB: VmHWM from /proc/self/status. (ru_maxrss of
    RUSAGE_SELF survives execve on Linux, so a worker forked from a big parent would report the
    parent's peak; VmHWM belongs to the new address space.) Falls back to ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def _stats(fwd, bwd) -> dict:
    """Per-layer times in ms: the minimum over the repetitions (other processes only ever add
    time, and a descheduled thread stalls a whole parallel region) and the median."""
    return {"fwd_ms": 1e3 * min(fwd), "bwd_ms": 1e3 * min(bwd),
            "fwd_med_ms": 1e3 * _median(fwd), "bwd_med_ms": 1e3 * _median(bwd)}


class ConvtrainSide:
    def __init__(self, spec):
        from convtrain import runtime
        runtime.configure()   # first: single-threaded BLAS before numpy loads, numba's CPU features
        import numba
        import numpy as np

        from convtrain import config as configmod
        from convtrain.nn.network import Network
        from convtrain.train.optim import init_velocities

        numba.set_num_threads(THREADS)
        self.np = np
        self.numba = numba
        self.cfg = configmod.load(spec["config"])
        self.seed = int(spec.get("seed", 0))
        self.net = Network.build(self.cfg.model, tuple(spec["input"]), seed=self.seed,
                                 dtype=np.float32)
        self.vel = init_velocities(self.net)
        self.lr = float(spec["optim"]["lr"])
        self.data = {}
        self.step_no = 0

    def batches(self, b):
        np = self.np
        if b not in self.data:
            rng = np.random.default_rng(b)
            shape = (b,) + tuple(self.net.input_shape)
            ncls = self.net.layers[-1].output_shape[0]
            self.data[b] = [(rng.standard_normal(shape, dtype=np.float32),
                             rng.integers(0, ncls, b)) for _ in range(NUM_BATCHES)]
        return self.data[b]

    def train(self, b, steps):
        from convtrain.train.optim import sgd_step
        from convtrain.train.step import train_step
        net, cfg = self.net, self.cfg
        data = self.batches(b)
        loss = float("nan")
        t0 = time.perf_counter()
        for _ in range(steps):
            x, y = data[self.step_no % NUM_BATCHES]
            loss = train_step(net, x, y, seed=self.seed, step=self.step_no).loss
            sgd_step(net, self.vel, self.lr, cfg.optim)
            self.step_no += 1
        return {"seconds": time.perf_counter() - t0, "loss": float(loss)}

    def infer(self, b, steps):
        data = self.batches(b)
        t0 = time.perf_counter()
        for i in range(steps):
            self.net.predict(data[i % NUM_BATCHES][0])
        return {"seconds": time.perf_counter() - t0}

    def profile(self, b, reps):
        """Per-layer forward and backward wall times of the training step."""
        from convtrain.nn.loss import softmax_cross_entropy
        from convtrain.train.optim import sgd_step
        net = self.net
        data = self.batches(b)
        L = len(net.layers)
        fwd = [[] for _ in range(L)]
        bwd = [[] for _ in range(L)]
        other = {"zero_grads": [], "loss": [], "grads_finite": [], "sgd_step": [], "total": []}
        pc = time.perf_counter
        for r in range(reps + 1):                    # the first rep warms up, not recorded
            x, y = data[r % NUM_BATCHES]
            rec = r > 0
            t_start = pc()
            net.reseed(self.seed, self.step_no)
            t0 = pc()
            net.zero_grads()
            t1 = pc()
            if rec:
                other["zero_grads"].append(t1 - t0)
            caches = []
            for i in range(L):
                t0 = pc()
                x, c = net.forward_layer(i, x, train=True)    # as in training: ReLUs fused
                t1 = pc()
                caches.append(c)
                if rec:
                    fwd[i].append(t1 - t0)
            t0 = pc()
            _, dout, _ = softmax_cross_entropy(x, y)
            dout = dout.astype(net.dtype, copy=False)
            t1 = pc()
            if rec:
                other["loss"].append(t1 - t0)
            for i in range(L - 1, -1, -1):
                t0 = pc()
                # the first layer skips its input gradient, as in the trainer (and torch)
                dout = net.backward_layer(i, dout, caches[i], need_dx=i > 0)
                t1 = pc()
                if rec:
                    bwd[i].append(t1 - t0)
            t0 = pc()
            net.grads_finite()
            t1 = pc()
            sgd_step(net, self.vel, self.lr, self.cfg.optim)
            t2 = pc()
            self.step_no += 1
            if rec:
                other["grads_finite"].append(t1 - t0)
                other["sgd_step"].append(t2 - t1)
                other["total"].append(t2 - t_start)
        layers = [{"name": l.name, "type": l.type, **_stats(fwd[i], bwd[i]),
                   "describe": (f"fused into {net.layers[i - 1].name}" if i - 1 in net.relu_fused
                                else l.describe())}
                  for i, l in enumerate(net.layers)]
        return {"layers": layers, "other_ms": {k: 1e3 * min(v) for k, v in other.items()},
                "other_med_ms": {k: 1e3 * _median(v) for k, v in other.items()}}

    def info(self):
        import numpy as np
        self.train(2, 1)   # a parallel region has run, so the threading layer is known
        try:
            layer = self.numba.threading_layer()
        except ValueError:
            layer = "?"
        return {"numpy": np.__version__, "numba": self.numba.__version__,
                "numba_threads": self.numba.get_num_threads(), "threading_layer": layer,
                "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


class OnnxruntimeSide(ConvtrainSide):
    """The convtrain side's network (same config, same seed) exported by convtrain.export and
    run by onnxruntime on the same number of threads; inference only. The exported graph starts
    with the input normalisation (here mean 0, std 1: two elementwise ops on the batch)."""

    def __init__(self, spec):
        super().__init__(spec)
        import onnxruntime as ort

        from convtrain.export import build_model
        channels = self.net.input_shape[0]
        model = build_model(self.net, mean=[0.0] * channels, std=[1.0] * channels, classes=[])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = THREADS
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.ort = ort
        self.session = ort.InferenceSession(model.SerializeToString(), opts,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def train(self, b, steps):
        raise ValueError("the onnxruntime side only runs inference")

    def infer(self, b, steps):
        data = self.batches(b)
        t0 = time.perf_counter()
        for i in range(steps):
            self.session.run(None, {self.input_name: data[i % NUM_BATCHES][0]})
        return {"seconds": time.perf_counter() - t0}

    def info(self):
        import onnx
        return {"onnxruntime": self.ort.__version__, "onnx": onnx.__version__,
                "intra_op_threads": THREADS}


class TorchSide:
    def __init__(self, spec):
        import torch

        from . import torch_nets as tn
        torch.set_num_threads(THREADS)
        torch.manual_seed(int(spec.get("seed", 0)))
        self.torch = torch
        self.tn = tn
        self.desc = spec["layers"]
        self.input = tuple(spec["input"])
        self.ncls = self.desc[-1]["out_shape"][0]
        self.model = tn.build(self.desc)
        o = spec["optim"]
        self.opt = tn.optimizer(self.model, o["lr"], o["momentum"], o["weight_decay"],
                                o.get("nesterov", False))
        self.data = {}
        self.step_no = 0

    def batches(self, b):
        torch = self.torch
        if b not in self.data:
            g = torch.Generator().manual_seed(b)
            self.data[b] = [(torch.randn((b,) + self.input, generator=g),
                             torch.randint(0, self.ncls, (b,), generator=g))
                            for _ in range(NUM_BATCHES)]
        return self.data[b]

    def train(self, b, steps):
        data = self.batches(b)
        self.model.train()
        loss = float("nan")
        t0 = time.perf_counter()
        for _ in range(steps):
            x, y = data[self.step_no % NUM_BATCHES]
            loss = self.tn.train_step(self.model, self.opt, x, y)
            self.step_no += 1
        return {"seconds": time.perf_counter() - t0, "loss": float(loss)}

    def infer(self, b, steps):
        data = self.batches(b)
        self.model.eval()
        t0 = time.perf_counter()
        with self.torch.inference_mode():
            for i in range(steps):
                self.model(data[i % NUM_BATCHES][0])
        return {"seconds": time.perf_counter() - t0}

    def profile(self, b, reps):
        """Per-layer times: each layer runs on a detached copy of its input so that its own
        backward (grad input + grad weight) can be timed alone. ReLU is not in place here."""
        import torch.nn.functional as F
        model = self.tn.build(self.desc, inplace=False)
        model.load_state_dict(self.model.state_dict())
        model.train()
        opt = self.tn.optimizer(model, 0.01, 0.9, 5e-4)
        groups = self.tn.layer_groups(self.desc, model)
        data = self.batches(b)
        L = len(groups)
        fwd = [[] for _ in range(L)]
        bwd = [[] for _ in range(L)]
        other = {"zero_grads": [], "loss": [], "sgd_step": [], "total": []}
        pc = time.perf_counter
        for r in range(reps + 1):
            x, y = data[r % NUM_BATCHES]
            rec = r > 0
            t_start = pc()
            t0 = pc()
            opt.zero_grad(set_to_none=True)
            t1 = pc()
            if rec:
                other["zero_grads"].append(t1 - t0)
            ins, outs = [], []
            h = x
            for i, (_, mods) in enumerate(groups):
                xi = h.detach().requires_grad_(i > 0)   # no grad-input for the first layer
                t0 = pc()
                out = xi
                for m in mods:
                    out = m(out)
                t1 = pc()
                ins.append(xi)
                outs.append(out)
                h = out
                if rec:
                    fwd[i].append(t1 - t0)
            logits = h.detach().requires_grad_(True)
            t0 = pc()
            loss = F.cross_entropy(logits, y)
            loss.backward()
            t1 = pc()
            if rec:
                other["loss"].append(t1 - t0)
            g = logits.grad
            for i in range(L - 1, -1, -1):
                t0 = pc()
                outs[i].backward(g)
                t1 = pc()
                g = ins[i].grad
                if rec:
                    bwd[i].append(t1 - t0)
            t0 = pc()
            opt.step()
            t1 = pc()
            if rec:
                other["sgd_step"].append(t1 - t0)
                other["total"].append(t1 - t_start)
        layers = [{"name": name, **_stats(fwd[i], bwd[i])} for i, (name, _) in enumerate(groups)]
        return {"layers": layers, "other_ms": {k: 1e3 * min(v) for k, v in other.items()},
                "other_med_ms": {k: 1e3 * _median(v) for k, v in other.items()}}

    def info(self):
        torch = self.torch
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "mkldnn": bool(torch.backends.mkldnn.is_available())}


SIDES = {"convtrain": ConvtrainSide, "torch": TorchSide, "onnxruntime": OnnxruntimeSide}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    side, spec_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    out = sys.stdout
    sys.stdout = sys.stderr          # stray prints must not break the protocol
    obj = SIDES[side](spec)
    baseline = maxrss_kb()
    out.write(json.dumps({"ready": True, "baseline_kb": baseline}) + "\n")
    out.flush()
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "quit":
            break
        cpu0 = time.process_time()
        try:
            if cmd == "train":
                ans = obj.train(int(msg["batch"]), int(msg["steps"]))
            elif cmd == "infer":
                ans = obj.infer(int(msg["batch"]), int(msg["steps"]))
            elif cmd == "profile":
                ans = obj.profile(int(msg["batch"]), int(msg["reps"]))
            elif cmd == "mem":
                ans = {"baseline_kb": baseline, "peak_kb": maxrss_kb()}
            elif cmd == "info":
                ans = obj.info()
            else:
                ans = {"error": f"unknown command {cmd!r}"}
        except Exception as e:  # noqa: BLE001  (report it, keep serving)
            import traceback
            traceback.print_exc()
            ans = {"error": f"{type(e).__name__}: {e}"}
        ans["cpu"] = time.process_time() - cpu0      # all threads of this process
        out.write(json.dumps(ans) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
