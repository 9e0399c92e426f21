"""The package itself: names, version, which build of the extension is loaded."""
import os

import pytest

import pefa


def test_names():
    for name in ("Index", "build", "Error", "FileError", "InputError", "NotFoundError", "StateError",
                 "NoMemoryError", "ERR_CORRUPT", "MAX_K", "kernel_name"):
        assert hasattr(pefa, name), name
    assert pefa.__version__.count(".") == 2
    assert pefa.kernel_name() in ("avx512-vnni", "avx512", "avx2", "scalar")
    assert pefa.Index.search.__doc__.startswith("search(Q, k=10")


def test_extension_is_the_one_under_test():
    """ctest puts <build>/python first: the tests never run an installed copy by mistake"""
    want = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    if not want:
        pytest.skip("not run by ctest")
    assert os.path.realpath(pefa._pefa.__file__).startswith(os.path.realpath(want))


@pytest.mark.skipif(not os.environ.get("PEFA_SANITIZED"), reason="the ASan tier only")
def test_sanitizer_runtime_is_loaded():
    """in the ASan tier the extension is instrumented and python runs with libasan preloaded"""
    with open("/proc/self/maps") as f:
        maps = f.read()
    assert "libasan.so" in maps and "libubsan.so" in maps


@pytest.mark.skipif(not os.environ.get("PEFA_TEST_PIP"), reason="slow (compiles libidx): set PEFA_TEST_PIP=1")
def test_pip_install_without_network(tmp_path):
    """README's two lines: a venv over Debian's packages, pip from the source tree, no index"""
    import shutil
    import subprocess
    import sys
    src = os.environ.get("PEFA_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
    tree = tmp_path / "src"  # a copy: pip builds in place
    for d in ("python", "libidx"):
        shutil.copytree(os.path.join(src, d), tree / d, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp_path / "venv")], check=True)
    py = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-index", str(tree / "python")],
                   check=True)
    env = dict(os.environ, PYTHONPATH="")
    out = subprocess.run([py, "-c", "import pefa; print(pefa.__file__, pefa.kernel_name())"], check=True,
                         stdout=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path)).stdout
    assert "venv" in out


def test_readme_example_runs(tmp_path, monkeypatch):
    """the README's Python example, run as printed on small random data"""
    import re
    import numpy as np
    src = os.environ.get("PEFA_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(src, "README.md")) as f:
        code = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
    rng = np.random.default_rng(3)
    env = {"P": rng.standard_normal((200, 8)), "Q": rng.standard_normal((20, 8)),
           "T": rng.standard_normal((5, 8)).astype(np.float32),
           "pids": ["doc%d" % i for i in range(200)], "qids": ["q%d" % i for i in range(20)]}
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), env)
    assert env["rows"].shape == (5, 100) and env["ids"].shape == (5, 100)
    assert env["P_mapped"].shape == (200, 8) and not env["P_mapped"].flags.writeable
