"""tools/cython_init_lines.py: which lines of included files the module init traces."""
from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.append(str(TOOLS))

import cython_init_lines  # noqa: E402 (after the sys.path line)

C_FILE = '''\
static CYTHON_SMALL_CODE int __pyx_pymod_exec_mod(PyObject *__pyx_pyinit_module); /*proto*/
static int __pyx_f_3mod_helper(int __pyx_v_x) {
  /* "pkg/_core/a.pyx":3
 *     return x * 2             # <<<<<<<<<<<<<<
 */
  __Pyx_TraceLine(3,1,__PYX_ERR(1, 3, __pyx_L1_error))
}
static CYTHON_SMALL_CODE int __pyx_pymod_exec_mod(PyObject *__pyx_pyinit_module)
{
  /* "pkg/_core/a.pyx":1
 * cdef int helper(int x) noexcept:             # <<<<<<<<<<<<<<
 */
  __Pyx_TraceLine(1,0,__PYX_ERR(1, 1, __pyx_L1_error))
  /* "pkg/_core/a.pyx":6
 * def a_func(x):             # <<<<<<<<<<<<<<
 */
  __Pyx_TraceLine(6,0,__PYX_ERR(1, 6, __pyx_L1_error))
  /* "pkg/mod.pyx":3
 * def top(x):             # <<<<<<<<<<<<<<
 */
  __Pyx_TraceLine(3,0,__PYX_ERR(0, 3, __pyx_L1_error))
}
static void later(void) {
  /* "pkg/_core/a.pyx":9
 */
  __Pyx_TraceLine(9,0,__PYX_ERR(1, 9, __pyx_L1_error))
}
'''


def test_only_the_exec_function_counts(tmp_path):
    c = tmp_path / "mod.c"
    c.write_text(C_FILE)
    assert cython_init_lines.init_lines(str(c)) == {"pkg/_core/a.pyx": {1, 6},
                                                    "pkg/mod.pyx": {3}}
