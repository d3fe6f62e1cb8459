"""Build the extension modules: ``picows.picows``, and
``picows.websockets.asyncio.connection`` compiled from its Python source.

Compiler directives live here, once, so every build of the module is the same.
Set ``PICOWS_SANITIZE=1`` to build with AddressSanitizer and
UndefinedBehaviorSanitizer (see docs/security.md), ``PICOWS_LINETRACE=1`` to
build with Cython line tracing for coverage (``tox -e coverage``; much slower),
``PICOWS_PURE_PYTHON_LAYER=1`` to leave picows.websockets uncompiled.
"""
import glob
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

extra_compile_args = ["-O3"]
extra_link_args = []
if os.environ.get("PICOWS_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    extra_compile_args = san
    extra_link_args = ["-fsanitize=address,undefined"]
# Line tracing for coverage.py's Cython.Coverage plugin. The directive applies
# to every .pyx the module includes; force=True because cythonize only compares
# timestamps and would otherwise reuse a C file generated without tracing.
linetrace = bool(os.environ.get("PICOWS_LINETRACE"))
define_macros = []
trace_directives = {}
if linetrace:
    extra_compile_args = ["-O1"]
    define_macros = [("CYTHON_TRACE_NOGIL", "1")]
    trace_directives = {"linetrace": True}
if sys.platform == "win32":
    extra_compile_args = ["/O2"]
    extra_link_args = []

print(f"picows: building with {' '.join(extra_compile_args)}"
      + (" and line tracing" if linetrace else ""))

extensions = [
    Extension(
        "picows.picows",
        ["picows/picows.pyx"],
        # The units under picows/_core/ are included into picows.pyx (Cython
        # tracks them); the C helpers are headers it includes.
        depends=sorted(glob.glob("picows/includes/*.h")),
        # permessage-deflate inflates through zlib's C API (zlib >= 1.2.5.2,
        # for inflateResetKeep): Debian's zlib1g-dev, any system zlib.
        libraries=["z"] if sys.platform != "win32" else ["zlib"],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
        define_macros=define_macros,
    ),
]

# picows.websockets' receive and send path: plain Python that also runs
# uncompiled (the .py is the source); compiled, it skips the interpreter loop
# (benchmarks/instructions.py --libs picows.websockets). Python semantics:
# none of the directives above.
layer = cythonize(
    [Extension("picows.websockets.asyncio.connection",
               ["picows/websockets/asyncio/connection.py"],
               depends=["picows/websockets/asyncio/awaitable.h"],
               extra_compile_args=extra_compile_args,
               extra_link_args=extra_link_args)],
    compiler_directives={"language_level": 3, "binding": True, "annotation_typing": False},
)
if os.environ.get("PICOWS_PURE_PYTHON_LAYER"):
    layer = []

setup(
    ext_modules=layer + cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "embedsignature": True,
            "embedsignature.format": "clinic",
            **trace_directives,
        },
        force=linetrace,
        annotate=bool(os.environ.get("PICOWS_ANNOTATE")),
    ),
)
