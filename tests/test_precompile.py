"""The cold-start helper (precompile.py): it runs every layer forward and backward, marks a
finished run so that a warm start starts no process, and never gets in fit's way."""
import numpy as np

from convtrain import config as configmod
from convtrain.tools import precompile
from convtrain.nn.kernels.winograd import use_backward
from convtrain.nn.network import Network

from synthetic import write_config

EVERY_KIND = """\
  - conv: {filters: 32, size: 5, pad: 2}
  - relu
  - lcn: 3
  - conv: {filters: 32, size: 5, pad: 2}
  - relu
  - max_pool: 2
  - local: {filters: 2, size: 2}
  - dropout: 0.2
  - dense: 4
"""


def synth_config(tmp_path, model=None):
    path = write_config(tmp_path)
    if model is not None:
        text = path.read_text()
        start, end = text.index("model:\n") + len("model:\n"), text.index("optim:")
        path.write_text(text[:start] + model + text[end:])
    return configmod.load(str(path)), path


def test_compile_in_reverse_runs_every_layer(tmp_path, monkeypatch):
    """Every layer's forward and backward run (the second conv's gradients take the Winograd
    path), the first layer without its input gradient, as in training."""
    cfg, _ = synth_config(tmp_path, EVERY_KIND)
    net = Network.build(cfg.model, (1, 8, 8), seed=0)
    assert use_backward(32, 32, 5, 5, 8, 8)
    seen = []
    for layer in net.layers:
        monkeypatch.setattr(layer, "backward", _recording(layer.backward, layer.name, seen))
    precompile.compile_in_reverse(net)
    names = [name for name, _ in seen]
    assert sorted(names) == sorted(n for i, n in enumerate(l.name for l in net.layers)
                                   if i - 1 not in net.relu_fused)
    assert names[:3] == ["local1", "conv2", "conv1"]      # slow to compile first, last first
    assert dict(seen) == {name: name != "conv1" for name in names}   # conv1: no dx


def _recording(backward, name, seen):
    def run(dout, cache, *, need_dx=True):
        seen.append((name, need_dx))
        return backward(dout, cache, need_dx=need_dx)
    return run


def test_finished_run_leaves_a_marker_and_warm_starts_start_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(precompile, "_cache_dir", lambda: str(tmp_path))
    cfg, path = synth_config(tmp_path)
    copy = tmp_path / "copy.yaml"
    copy.write_text(configmod.dump(cfg))
    assert precompile.main([str(copy), "1", "8", "8"]) == 0
    assert copy.exists()                   # a config given by path is the user's: left alone
    assert precompile.start(cfg, (1, 8, 8)) is None
    other = configmod.load(str(path))
    assert precompile._marker(other, (1, 8, 9)) != precompile._marker(cfg, (1, 8, 8))


def test_a_failing_helper_reports_nothing_and_stop_is_safe(tmp_path, monkeypatch):
    monkeypatch.setattr(precompile, "_cache_dir", lambda: str(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text("not: [a config")
    assert precompile.main([str(bad), "1", "8", "8"]) == 1
    assert not list(tmp_path.glob("convtrain-precompiled-*"))
    precompile.stop(None)


def test_start_and_stop_a_real_helper(tmp_path, monkeypatch):
    monkeypatch.setattr(precompile, "_cache_dir", lambda: str(tmp_path))
    cfg, _ = synth_config(tmp_path)
    proc = precompile.start(cfg, (1, 8, 8))
    assert proc is not None
    precompile.stop(proc)
    assert proc.poll() is not None
    np.testing.assert_equal(proc.args[1:3], ["-m", "convtrain.tools.precompile"])
