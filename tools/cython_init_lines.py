"""Give the module-level lines of `include`d .pyx files their coverage hits.

Cython runs the module-level statements of every included file (def, class
and cdef headers, constants) in the including module's init function, whose
frame carries the main file's name: line tracing reports them as lines of the
main .pyx, and Cython.Coverage shows them as missed in their own file. This
reads the generated C file, finds the lines of other files traced inside the
module's exec function, and, where the main file got a hit at that line
number (the init ran it), records the hit for the included file too. Run from
the directory the extension was built in, after ``coverage run``::

    python tools/cython_init_lines.py picows/picows.c
"""
from __future__ import annotations

import os
import re
import sys

_EXEC = re.compile(r"^static CYTHON_SMALL_CODE int __pyx_pymod_exec_\w+\(.*\)$")
_SOURCE = re.compile(r' */[*] +"(.*)":([0-9]+)$')
_TRACE = re.compile(r" *__Pyx_TraceLine\(([0-9]+),")
PLUGIN = "Cython.Coverage.Plugin"


def init_lines(c_file: str) -> dict[str, set[int]]:
    """{source file as the C file names it: lines traced in the module init}."""
    found: dict[str, set[int]] = {}
    inside, current = False, None
    with open(c_file, encoding="utf8") as f:
        for line in f:
            if not inside:
                inside = bool(_EXEC.match(line.rstrip("\n")))
                continue
            if line.startswith("}"):
                break
            m = _SOURCE.match(line.rstrip("\n"))
            if m:
                current = m.group(1)
                continue
            m = _TRACE.match(line)
            if m and current is not None:
                found.setdefault(current, set()).add(int(m.group(1)))
    return found


def main(c_file: str, main_source: str) -> int:
    from coverage import CoverageData  # only this needs coverage installed

    data = CoverageData()
    data.read()
    main_abs = os.path.abspath(main_source)
    main_hits = set(data.lines(main_abs) or ())
    if not main_hits:
        print(f"{main_source}: not measured, nothing to do")
        return 0
    added: dict[str, list[int]] = {}
    for source, lines in init_lines(c_file).items():
        path = os.path.abspath(source)
        if path == main_abs:
            continue
        hits = sorted((lines & main_hits) - set(data.lines(path) or ()))
        if hits:
            added[path] = hits
    data.add_lines(added)
    data.add_file_tracers({p: PLUGIN for p in added if not data.file_tracer(p)})
    data.write()
    print(f"module-init lines credited to {len(added)} included files: "
          f"{sum(map(len, added.values()))} lines")
    return 0


if __name__ == "__main__":
    c = sys.argv[1] if len(sys.argv) > 1 else "picows/picows.c"
    sys.exit(main(c, os.path.splitext(c)[0] + ".pyx"))
