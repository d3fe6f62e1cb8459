"""Build the one extension module, ``picows.picows``.

Compiler directives live here, once, so every build of the module is the same.
Set ``PICOWS_SANITIZE=1`` to build with AddressSanitizer and
UndefinedBehaviorSanitizer (see docs/security.md).
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
if sys.platform == "win32":
    extra_compile_args = ["/O2"]
    extra_link_args = []

print(f"picows: building with {' '.join(extra_compile_args)}")

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
        },
        annotate=bool(os.environ.get("PICOWS_ANNOTATE")),
    ),
)
