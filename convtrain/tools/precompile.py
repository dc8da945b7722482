"""Compile a network's kernels in a helper process while `fit` compiles them too, from the
other end.

numba compiles one function at a time on one core, so on an empty cache one core compiles
while the other idles. The helper runs the layers from the end (each one forward and backward
on a synthetic batch of 2, as the network runs it, ReLUs fused; the layers that declare
`slow_to_compile` first), writing numba's on-disk cache while `fit` compiles from the start;
numba looks the cache up at a kernel's first call, so `fit` loads whatever the helper finished
first, and the helper loads what `fit` did. Both stop compiling where they meet.

A marker in the cache folder, named after the network, the package versions and the kernels'
source files, records a finished helper run, so a warm start starts no process. Errors in the
helper are ignored: `fit` compiles anything it missed.

    python -m convtrain.tools.precompile CONFIG.yaml C H W      (CONFIG `-`: read stdin)
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

STDIN = "-"   # the CONFIG argument that reads the config from stdin


def _cache_dir() -> str:
    import numba

    from .. import runtime
    return numba.config.CACHE_DIR or runtime.KERNEL_CACHE


def _marker(cfg, input_shape) -> str:
    """The marker file for this network: its layers, input, the versions and the kernels'
    source (a changed kernel invalidates numba's cache entries, so the marker too)."""
    import numba

    from .. import __version__
    from ..nn import kernels
    h = hashlib.sha1()
    h.update(repr(([(lc.type, lc.spec) for lc in cfg.model], tuple(input_shape),
                   __version__, numba.__version__)).encode())
    folder = os.path.dirname(os.path.abspath(kernels.__file__))
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            st = os.stat(os.path.join(folder, name))
            h.update(f"{name}:{st.st_mtime_ns}:{st.st_size}".encode())
    return os.path.join(_cache_dir(), f"convtrain-precompiled-{h.hexdigest()[:16]}")


def is_warm(cfg, input_shape) -> bool:
    """Has a helper run finished for this network (so its kernels are in numba's cache)?"""
    try:
        return os.path.exists(_marker(cfg, input_shape))
    except OSError:
        return False


def start(cfg, input_shape) -> subprocess.Popen | None:
    """Start the helper for this network unless a finished run's marker says the cache is warm.
    Returns the process (pass it to `stop`) or None.

    The config goes through the helper's stdin, not a temporary file: a helper that `stop`
    terminates mid-compile could not delete a file (SIGTERM skips its `finally`)."""
    from .. import config as configmod
    if is_warm(cfg, input_shape):
        return None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "convtrain.tools.precompile", STDIN, *map(str, input_shape)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)   # Ctrl-C reaches `fit` only; `fit` stops the helper
    except OSError:
        return None
    try:   # a config is a page of text: it fits the pipe's buffer, so this does not block
        with proc.stdin:
            proc.stdin.write(configmod.dump(cfg).encode("utf-8"))
    except OSError:   # the helper died already; `fit` compiles everything itself
        pass
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    """End the helper if it still runs (it normally ends on its own once past the meeting point)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def compile_in_reverse(net) -> None:
    """Each layer's forward and backward on a synthetic batch of 2: the layers slow to compile
    first, last one first (their kernels are most of the compile time; the last ones are what
    `fit` needs last), then the other layers, last one first."""
    import numpy as np
    rng = np.random.default_rng(0)
    last_first = range(len(net.layers) - 1, -1, -1)
    heavy = [i for i in last_first if net.layers[i].slow_to_compile]
    for i in heavy + [i for i in last_first if i not in heavy]:
        x = rng.standard_normal((2,) + net.layers[i].in_shape).astype(net.dtype)
        y, cache = net.forward_layer(i, x, train=True)
        # as in training, the first layer skips its input gradient (and the kernels for it)
        net.backward_layer(i, np.ones_like(y), cache, need_dx=i > 0)


def main(argv: list[str]) -> int:
    """`CONFIG C H W`: compile, then write the marker. CONFIG `-` reads the config from stdin
    (what `start` passes); a CONFIG file is read and left as it is."""
    path, shape = argv[0], tuple(int(v) for v in argv[1:])
    try:
        from .. import config as configmod
        from ..nn.network import Network
        if path == STDIN:
            cfg = configmod.loads(sys.stdin.read(), "<precompile>", stored=True)
        else:
            cfg = configmod.load(path)
        net = Network.build(cfg.model, shape, seed=cfg.seed, source=cfg.source)
        compile_in_reverse(net)
        with open(_marker(cfg, shape), "w"):
            pass
        return 0
    except Exception:   # the parent compiles whatever is missing; nothing to report here
        return 1


if __name__ == "__main__":
    from .. import runtime
    runtime.configure()   # inherited from fit's environment already; for a run by hand
    sys.exit(main(sys.argv[1:]))
