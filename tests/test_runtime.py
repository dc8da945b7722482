"""Importing convtrain sets nothing up; runtime.configure() does, once (the issue: no work at
import, the library never prints). Each case runs in a fresh interpreter: what is checked is
process-wide state (environment, numba's config, its code generator)."""
import json
import os
import subprocess
import sys

import llvmlite.binding as llvm

HOST_AVX512 = bool(llvm.get_host_cpu_features().get("avx512f"))


def run(code, **env_changes):
    """Run `code` in a fresh interpreter without the variables configure() sets (this process's
    conftest has set them); return its last stdout line as JSON, and its stderr."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME")}
    env.update(env_changes)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1]), r.stdout, r.stderr


def test_import_sets_nothing_up_and_prints_nothing():
    code = """
import json, os
before = dict(os.environ)
import convtrain, convtrain.config, convtrain.nn.network, convtrain.train.trainer
import numba
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(json.dumps({"changed": changed, "features": numba.config.CPU_FEATURES,
                  "cache_dir": numba.config.CACHE_DIR}))
"""
    got, out, err = run(code)
    assert got == {"changed": [], "features": None,
                   "cache_dir": os.environ.get("NUMBA_CACHE_DIR", "")}
    assert out.count("\n") == 1 and err == ""


def test_the_cli_loads_no_numpy_before_its_main_can_configure():
    got, _, _ = run("import json, sys\nimport convtrain.cli\n"
                    "print(json.dumps('numpy' in sys.modules))")
    assert got is False


CONFIGURE = """
import json, os, sys
from convtrain import runtime
first = runtime.configure()
numpy_loaded = "numpy" in sys.modules
env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "NUMBA_CPU_FEATURES")}
again = runtime.configure()
from convtrain.nn.kernels import _jit, conv
print(json.dumps({"first": first, "again": again, "numpy_loaded": numpy_loaded, "env": env,
                  "env_after": {k: os.environ.get(k) for k in env},
                  "wide": _jit.wide_vectors(), "PB": conv.PB}))
"""


def test_configure_sets_blas_threads_and_512_bit_vectors_once():
    got, _, err = run(CONFIGURE)
    assert err == ""
    assert got["first"] == got["again"] == []
    assert not got["numpy_loaded"]      # else OPENBLAS_NUM_THREADS would come too late
    assert got["env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert got["env_after"] == got["env"]
    if HOST_AVX512:
        assert got["env"]["NUMBA_CPU_FEATURES"].endswith(",-prefer-256-bit")
        assert got["wide"] and got["PB"] == 32
    else:
        assert got["env"]["NUMBA_CPU_FEATURES"] is None
        assert not got["wide"] and got["PB"] == 16


def test_the_users_cpu_features_stand_and_the_tile_follows_them():
    host = llvm.get_host_cpu_features().flatten()
    got, _, _ = run(CONFIGURE, NUMBA_CPU_FEATURES=host)
    assert got["env"]["NUMBA_CPU_FEATURES"] == host
    assert not got["wide"] and got["PB"] == 16


def test_configure_after_the_kernels_keeps_their_tile_consistent():
    """numba fixed its CPU features when the kernels were imported: the tile width follows them,
    not the features configure() asks for afterwards."""
    code = """
import json
import numba
from convtrain.nn.kernels import _jit, conv
from convtrain import runtime
runtime.configure()
from numba.core.registry import cpu_target
compiled_for = cpu_target.target_context.codegen().magic_tuple()[2]
print(json.dumps({"wide": _jit.wide_vectors(), "PB": conv.PB,
                  "512_bit": "-prefer-256-bit" in compiled_for}))
"""
    got, _, _ = run(code)
    assert got == {"wide": False, "PB": 16, "512_bit": False}


def test_numpy_imported_first_is_reported():
    code = """
import json, os
import numpy
from convtrain import runtime
print(json.dumps({"notices": runtime.configure(), "blas": os.environ["OPENBLAS_NUM_THREADS"]}))
"""
    got, out, err = run(code)
    assert got["blas"] == "1"
    assert len(got["notices"]) == 1 and "numpy was imported before" in got["notices"][0]
    assert out.count("\n") == 1 and err == ""     # told, not printed


def test_unwritable_kernel_cache_falls_back_and_says_so(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = tmp_path / "home-cache"
    code = f"""
import json, os
import numba     # loaded first: its config must follow too
from convtrain import runtime
runtime.KERNEL_CACHE = {str(blocker / "__pycache__")!r}
notices = runtime.configure()
print(json.dumps({{"notices": notices, "env": os.environ.get("NUMBA_CACHE_DIR"),
                   "numba": numba.config.CACHE_DIR}}))
"""
    env = {"XDG_CACHE_HOME": str(cache), "OPENBLAS_NUM_THREADS": "1"}   # numba loads numpy
    if "NUMBA_CACHE_DIR" in os.environ:
        env["NUMBA_CACHE_DIR"] = ""
    got, out, err = run(code, **env)
    fallback = str(cache / "convtrain" / "numba")
    assert got["notices"] == [f"{blocker / '__pycache__'} is not writable; caching compiled "
                              f"kernels in {fallback}"]
    assert got["env"] == got["numba"] == fallback
    assert os.path.isdir(fallback)
    assert out.count("\n") == 1 and err == ""
