"""The package itself: names, version, which build of the extension is loaded."""
import os

import pytest

import pefa


def test_names():
    for name in ("Index", "build", "Error", "FileError", "InputError", "NotFoundError", "StateError",
                 "NoMemoryError", "ERR_CORRUPT", "MAX_K", "kernel_name"):
        assert hasattr(pefa, name), name
    assert pefa.__version__.count(".") == 2
    assert pefa.kernel_name() in ("avx512", "avx2", "scalar")
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
