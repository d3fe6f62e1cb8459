"""The testee checks of the Autobahn gate (conformance/gate.py): a sanitizer
report in a testee's output, or a testee that does not exit cleanly, fails
its direction whatever wstest says. No wstest and no picows needed; the
report formats are checked against real ASan and UBSan output when gcc can
build with the sanitizers."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Appended, not prepended: an installed picows must still win over the source tree.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conformance import gate, run  # noqa: E402 (after the sys.path line)

CLEAN_LOG = """\
echo_server: picows 1.0 from /x/picows/__init__.py, uvloop loop
echo_server: listening on ws://127.0.0.1:9002/
2026-12-01 14:00:00,123 server ERROR runtime error: not a sanitizer line
2026-12-01 14:00:00,124 server INFO AddressSanitizer is mentioned, not reporting
"""

ASAN_REPORT = """\
=================================================================
==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000015 at pc 0x7f
READ of size 1 at 0x602000000015 thread T0
    #0 0x7f2a in __pyx_f_6picows_6picows_parse picows/picows.c:1234
SUMMARY: AddressSanitizer: heap-buffer-overflow picows/picows.c:1234 in parse
==4242==ABORTING
"""

UBSAN_REPORT = "picows/picows.c:812:9: runtime error: signed integer overflow\n"

SAMPLE = {"server": ["1.1.1", "1.1.2"]}


def test_clean_log_has_no_report():
    assert gate.sanitizer_reports(CLEAN_LOG) == []
    assert gate.testee_problems("echo_server.py", CLEAN_LOG, 0, signalled=True) == []


def test_asan_and_ubsan_reports_are_found():
    lines = gate.sanitizer_reports(CLEAN_LOG + ASAN_REPORT + UBSAN_REPORT)
    assert lines == [
        "==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address "
        "0x602000000015 at pc 0x7f",
        "SUMMARY: AddressSanitizer: heap-buffer-overflow picows/picows.c:1234 in parse",
        "picows/picows.c:812:9: runtime error: signed integer overflow",
    ]


def test_a_report_fails_even_with_exit_status_0():
    """UBSan without halt_on_error reports and goes on: the report alone counts."""
    problems = gate.testee_problems("echo_client.py", UBSAN_REPORT, 0)
    assert problems == ["echo_client.py: sanitizer report: " + UBSAN_REPORT.strip()]


def test_report_lines_are_capped():
    problems = gate.testee_problems("t", UBSAN_REPORT * 25, 0)
    assert len(problems) == gate.MAX_REPORT_LINES + 1
    assert "15 more" in problems[-1]


@pytest.mark.parametrize("returncode, signalled, message", [
    (1, False, "t exited with status 1"),
    (130, True, "t exited with status 130 after the runner's SIGINT"),
    (-9, True, "t was killed by signal 9 after the runner's SIGINT"),
    (-11, False, "t was killed by signal 11"),
])
def test_bad_exit_status(returncode, signalled, message):
    problems = gate.testee_problems("t", CLEAN_LOG, returncode, signalled=signalled)
    assert problems == [f"{message} (see its log)"]


def test_testee_problems_fail_a_direction_wstest_passed():
    index = {"picows": {c: {"behavior": "OK", "behaviorClose": "OK"}
                        for c in SAMPLE["server"]}}
    kwargs = dict(direction="server", agent="picows", cases=SAMPLE["server"],
                  expected={}, all_cases=gate.load_case_list()[0])
    assert gate.evaluate(index, **kwargs).passed
    problems = gate.testee_problems("echo_server.py", ASAN_REPORT, 1, signalled=True)
    verdict = gate.evaluate(index, testee_errors=problems, **kwargs)
    assert not verdict.passed
    assert len(verdict.passing) == 2  # the cases themselves passed
    table = gate.format_table(verdict)
    assert "ERROR echo_server.py: sanitizer report: ==4242==ERROR: AddressSanitizer" in table
    assert table.endswith("server: FAIL")
    assert "echo_server.py exited with status 1" in gate.summary_markdown([verdict])


# ------------------------------------------------------------ the runner


def test_preload_reaches_the_testees_only(monkeypatch, tmp_path):
    monkeypatch.setenv("LD_PRELOAD", "/from/the/caller.so")
    assert "LD_PRELOAD" not in run.NativeBackend(prefix=tmp_path).env
    with pytest.raises(run.SetupError, match="--preload /no/such/libasan.so"):
        run.testee_environment("/no/such/libasan.so")


def test_preload_option():
    assert run.parse_args([]).preload is None
    assert run.parse_args(["--preload", "/x/libasan.so"]).preload == "/x/libasan.so"


# ------------------------------------------- against real sanitizer output

BUGGY_C = r"""
#include <limits.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "ubsan") == 0) {
        volatile int big = INT_MAX;
        return big + argc;  /* signed overflow */
    }
    char *p = malloc(8);
    memset(p, 0, 8);
    volatile char c = p[8];  /* heap-buffer-overflow, one past the end */
    free(p);
    return c;
}
"""


@pytest.fixture(scope="module")
def buggy(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build a program with the sanitizers")
    src = tmp_path_factory.mktemp("sanitizers") / "buggy.c"
    src.write_text(BUGGY_C)
    exe = src.with_suffix("")
    r = subprocess.run([gcc, "-g", "-O0", "-fsanitize=address,undefined", str(src),
                        "-o", str(exe)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"gcc cannot build with -fsanitize=address,undefined: {r.stderr[-300:]}")
    return exe


@pytest.mark.parametrize("mode, first", [
    ("asan", "ERROR: AddressSanitizer: heap-buffer-overflow"),
    ("ubsan", "runtime error: signed integer overflow"),
])
def test_real_sanitizer_output_fails_the_testee(buggy, mode, first):
    # tox -e asan's options; the caller's LD_PRELOAD is no business of this program.
    env = {"ASAN_OPTIONS": "detect_leaks=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    r = subprocess.run([str(buggy), mode], capture_output=True, text=True, env=env,
                       check=False)
    log = "echo_server: listening\n" + r.stdout + r.stderr
    reports = gate.sanitizer_reports(log)
    assert reports and first in reports[0], log
    assert r.returncode != 0
    problems = gate.testee_problems("echo_server.py", log, r.returncode, signalled=True)
    assert any("sanitizer report" in p for p in problems)
    assert problems[-1].startswith(f"echo_server.py exited with status {r.returncode}")
