"""Builds the pefa package with its C extension, compiling libidx from this source
tree (../libidx) into it, so nothing else of pefa needs to be installed. Needs the
headers of zstd, xxhash and LMDB (Debian: libzstd-dev libxxhash-dev liblmdb-dev),
Python's (python3-dev) and NumPy's (python3-numpy).

  /usr/bin/python3 -m venv --system-site-packages venv
  venv/bin/pip install --no-build-isolation ./python      # no network needed
"""
import glob
import os
import subprocess

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIBIDX = os.path.join(ROOT, "libidx")


def pkg_config(*names):
    """(include dirs, library dirs, libraries) from pkg-config, or the plain names"""
    inc, libdirs, libs = [], [], []
    for name, fallback in names:
        try:
            out = subprocess.run(["pkg-config", "--cflags", "--libs", name], check=True, stdout=subprocess.PIPE,
                                 text=True).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            libs.append(fallback)
            continue
        inc += [f[2:] for f in out if f.startswith("-I")]
        libdirs += [f[2:] for f in out if f.startswith("-L")]
        libs += [f[2:] for f in out if f.startswith("-l")]
    return inc, libdirs, libs


if not os.path.isfile(os.path.join(LIBIDX, "pefa.h")):
    raise SystemExit("setup.py: %s/pefa.h not found: build the package from the pefa source tree" % LIBIDX)
inc, libdirs, libs = pkg_config(("libzstd", "zstd"), ("libxxhash", "xxhash"), ("lmdb", "lmdb"))
LIB_SOURCES = sorted(glob.glob(os.path.join(LIBIDX, "*", "*.c")))


class BuildExt(build_ext):
    """compiles libidx into the extension (its sources lie outside this directory,
    where setuptools' own source lists may not point)"""

    def build_extension(self, ext):
        objects = self.compiler.compile(LIB_SOURCES, output_dir=self.build_temp, macros=ext.define_macros,
                                        include_dirs=ext.include_dirs, extra_postargs=ext.extra_compile_args,
                                        depends=[os.path.join(LIBIDX, "pefa.h")])
        ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extension(ext)



os.chdir(HERE)
setup(
    packages=["pefa"],
    ext_modules=[Extension(
        "pefa._pefa",
        sources=sorted(os.path.join("src", f) for f in os.listdir(os.path.join(HERE, "src")) if f.endswith(".c")),
        include_dirs=[LIBIDX, numpy.get_include()] + inc,
        library_dirs=libdirs,
        libraries=libs + ["pthread", "m"],
        define_macros=[("_POSIX_C_SOURCE", "200809L")],
        extra_compile_args=["-std=c11", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    )],
    cmdclass={"build_ext": BuildExt},
)
