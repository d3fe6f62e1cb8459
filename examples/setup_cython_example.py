"""Build examples/echo_client_cython.pyx as an extension module, in place:

    cd examples
    python setup_cython_example.py build_ext --inplace

It cimports picows.picows, so Cython needs the directory that holds
picows/picows.pxd on its include path: found here from the installed (or
in-place built) picows package, without importing it.
"""
import importlib.util
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

spec = importlib.util.find_spec("picows")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit("picows not found: install it or put the repository on PYTHONPATH")
PICOWS_INCLUDE = os.path.dirname(next(iter(spec.submodule_search_locations)))

setup(
    name="echo_client_cython",
    ext_modules=cythonize(
        [Extension("echo_client_cython", [os.path.join(HERE, "echo_client_cython.pyx")])],
        include_path=[PICOWS_INCLUDE],
        compiler_directives={"language_level": 3},
    ),
)
