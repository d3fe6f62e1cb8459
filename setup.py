"""Build the one extension module, ``picows.picows``.

Compiler directives live here, once, so every build of the module is the same.
Set ``PICOWS_SANITIZE=1`` to build with AddressSanitizer and
UndefinedBehaviorSanitizer (see docs/security.md), ``PICOWS_LINETRACE=1`` to
build with Cython line tracing for coverage (``tox -e coverage``; much slower).
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
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
        define_macros=define_macros,
    ),
]

setup(
    ext_modules=cythonize(
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
