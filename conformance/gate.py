"""The conformance gate: a pure function from wstest's ``index.json`` to a verdict.

wstest writes ``index.json`` as ``{agent: {case_id: {"behavior": ...,
"behaviorClose": ..., "remoteCloseCode": ..., "duration": ...,
"reportfile": ...}}}``.  Each case has two results: ``behavior`` (did the
testee do the right thing with the frames) and ``behaviorClose`` (did the
connection end the right way).

The rule
--------
A case passes when both results are ``OK`` or ``INFORMATIONAL``.  Anything
else (``NON-STRICT``, ``UNIMPLEMENTED``, ``FAILED``, and the close results
``WRONG CODE``, ``UNCLEAN``, ``FAILED BY CLIENT``), and a selected case with
no result at all, fails the gate, unless ``expected.json`` lists the case
for that direction with exactly the result it got and a reason.

``expected.json`` never lies: a listed case whose result differs from the
listed one (it started passing, or fails differently) fails the gate until
the entry is changed or removed, and an entry that matches no Autobahn case
is an error.  Keys are case IDs or wstest patterns (``"12.*"``: ``*`` is
any text, the match is anchored at the start, as wstest does); for a case
matched by several keys, an exact ID wins over a pattern, and a longer
pattern over a shorter one.

The testees count too: a sanitizer report in a testee's output (``tox -e
asan`` runs them on an ASan + UBSan build) or a testee that exits other than
cleanly fails its direction, whatever wstest says (:func:`testee_problems`).

Nothing here touches the network, wstest or picows, so the gate is unit
tested on hand-written ``index.json`` samples and testee logs
(tests/tooling/test_conformance_gate.py, tests/tooling/test_conformance_testees.py).
"""
from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "cases.json"
EXPECTED_FILE = HERE / "expected.json"

DIRECTIONS = ("server", "client")
# What each direction tests, for tables and the summary.
DIRECTION_TITLES = {
    "server": "picows server (wstest fuzzingclient -> conformance/echo_server.py)",
    "client": "picows client (conformance/echo_client.py -> wstest fuzzingserver)",
}

OK = "OK"
NON_STRICT = "NON-STRICT"
INFORMATIONAL = "INFORMATIONAL"
UNIMPLEMENTED = "UNIMPLEMENTED"
FAILED = "FAILED"
MISSING = "MISSING"  # no result in index.json: the testee or wstest died
PASSING = frozenset({OK, INFORMATIONAL})
BEHAVIORS = (OK, NON_STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED)
# Close results beyond BEHAVIORS; the tables count them as FAILED.
CLOSE_FAILURES = ("WRONG CODE", "UNCLEAN", "FAILED BY CLIENT")
KNOWN_RESULTS = frozenset(BEHAVIORS + CLOSE_FAILURES)

PASS = "pass"
ACCEPTED = "accepted"  # not passing, but exactly as listed in expected.json
FAIL = "fail"


class ExpectedError(ValueError):
    """expected.json is malformed."""


# ---------------------------------------------------------------- case IDs

def case_key(case_id: str) -> tuple[int, ...]:
    """'6.10.2' -> (6, 10, 2), the order wstest runs cases in."""
    return tuple(int(part) for part in case_id.split("."))


def category(case_id: str) -> str:
    """'6.10.2' -> '6'."""
    return case_id.split(".", 1)[0]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\*", ".*"))


def matches(pattern: str, case_id: str) -> bool:
    """wstest's own rule: with a ``*`` a regex match anchored at the start,
    else the exact ID ('1.*' matches '1.1.1' but not '10.1.1')."""
    if "*" in pattern:
        return _pattern_regex(pattern).match(case_id) is not None
    return pattern == case_id


def resolve(patterns: Iterable[str], all_cases: Sequence[str]) -> list[str]:
    """Case IDs selected by wstest-style patterns, in wstest's order."""
    known = set(all_cases)
    selected: set[str] = set()
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        if "*" not in pattern and pattern not in known:
            raise ValueError(f"no Autobahn case {pattern!r}")
        hit = {c for c in all_cases if matches(pattern, c)}
        if not hit:
            raise ValueError(f"pattern {pattern!r} matches no Autobahn case")
        selected |= hit
    return sorted(selected, key=case_key)


def load_case_list(path: Path = CASES_FILE) -> tuple[list[str], dict[str, str]]:
    """All case IDs of the pinned wstest, and the category names."""
    doc = json.loads(Path(path).read_text())
    return list(doc["cases"]), dict(doc["categories"])


# ----------------------------------------------------------- expected.json

@dataclass(frozen=True)
class Expectation:
    key: str  # case ID or pattern as written in expected.json
    behavior: str
    behavior_close: str
    reason: str


def parse_expected(doc: Mapping[str, Any]) -> dict[str, dict[str, Expectation]]:
    """Validate expected.json: ``{direction: {case_or_pattern: {"behavior",
    "behaviorClose", "reason"}}}``; keys starting with ``_`` are comments."""
    out: dict[str, dict[str, Expectation]] = {d: {} for d in DIRECTIONS}
    for direction, entries in doc.items():
        if direction.startswith("_"):
            continue
        if direction not in DIRECTIONS:
            raise ExpectedError(
                f"expected.json: unknown direction {direction!r} (use {DIRECTIONS})")
        if not isinstance(entries, Mapping):
            raise ExpectedError(f"expected.json: {direction!r} must map cases to results")
        for key, entry in entries.items():
            if key.startswith("_"):
                continue
            where = f"expected.json {direction} {key!r}"
            if not re.fullmatch(r"[0-9*]+(\.[0-9*]+)*", key):
                raise ExpectedError(f"{where}: not a case ID or pattern")
            if not isinstance(entry, Mapping):
                raise ExpectedError(f"{where}: must be an object")
            extra = set(entry) - {"behavior", "behaviorClose", "reason"}
            if extra:
                raise ExpectedError(f"{where}: unknown fields {sorted(extra)}")
            behavior = entry.get("behavior")
            close = entry.get("behaviorClose")
            reason = entry.get("reason")
            for name, value in (("behavior", behavior), ("behaviorClose", close)):
                if value not in KNOWN_RESULTS:
                    raise ExpectedError(
                        f"{where}: {name} must be one of {sorted(KNOWN_RESULTS)}, "
                        f"not {value!r}")
            if not isinstance(reason, str) or not reason.strip():
                raise ExpectedError(f"{where}: a reason is required")
            if behavior in PASSING and close in PASSING:
                raise ExpectedError(
                    f"{where}: lists a passing result; passing cases need no entry")
            out[direction][key] = Expectation(key, behavior, close, reason.strip())
    return out


def load_expected(path: Path = EXPECTED_FILE) -> dict[str, dict[str, Expectation]]:
    return parse_expected(json.loads(Path(path).read_text()))


def expectation_for(case_id: str,
                    entries: Mapping[str, Expectation]) -> Expectation | None:
    """The entry that governs a case: exact ID first, then the longest pattern."""
    if case_id in entries:
        return entries[case_id]
    best = None
    for key, entry in entries.items():
        if ("*" in key and matches(key, case_id)
                and (best is None or len(key) > len(best.key))):
            best = entry
    return best


# ------------------------------------------------------------------ verdict

@dataclass(frozen=True)
class CaseResult:
    case: str
    behavior: str
    behavior_close: str
    status: str  # PASS, ACCEPTED or FAIL
    message: str = ""
    remote_close_code: int | None = None
    duration_ms: int | None = None
    reportfile: str | None = None


@dataclass
class Verdict:
    direction: str
    agent: str
    results: list[CaseResult]
    # expected.json problems, testee problems (sanitizer reports, bad exits)
    errors: list[str] = field(default_factory=list)
    wall_time: float | None = None

    @property
    def passed(self) -> bool:
        return not self.errors and all(r.status != FAIL for r in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def accepted(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == ACCEPTED]

    @property
    def passing(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == PASS]


def evaluate(index: Mapping[str, Any], *, direction: str, agent: str,
             cases: Sequence[str], expected: Mapping[str, Expectation],
             all_cases: Sequence[str], testee_errors: Sequence[str] = ()) -> Verdict:
    """Judge one direction.

    :param index: parsed index.json
    :param direction: "server" or "client" (for messages only)
    :param agent: the agent name the testee reported as
    :param cases: the case IDs this run selected; each must have a result
    :param expected: this direction's entries from :func:`parse_expected`
    :param all_cases: every case ID of the pinned wstest (stale-entry check)
    :param testee_errors: :func:`testee_problems` of the direction's testee;
        any fails the direction
    """
    errors: list[str] = list(testee_errors)
    for key in expected:
        if not any(matches(key, c) for c in all_cases):
            errors.append(
                f"expected.json {direction} {key!r} matches no Autobahn case: remove it")
    agent_results = index.get(agent)
    if agent_results is None:
        agent_results = {}
        others = ", ".join(sorted(index)) or "none"
        errors.append(f"index.json has no results for agent {agent!r} (agents: {others})")

    results = []
    for case_id in cases:
        raw = agent_results.get(case_id)
        entry = expectation_for(case_id, expected)
        if raw is None:
            results.append(CaseResult(
                case_id, MISSING, MISSING, FAIL,
                "no result: the testee or wstest stopped before this case ended"))
            continue
        behavior = raw.get("behavior", MISSING)
        close = raw.get("behaviorClose", MISSING)
        extra = {"remote_close_code": raw.get("remoteCloseCode"),
                 "duration_ms": raw.get("duration"), "reportfile": raw.get("reportfile")}
        passing = behavior in PASSING and close in PASSING
        if entry is None:
            if passing:
                results.append(CaseResult(case_id, behavior, close, PASS, **extra))
            else:
                results.append(CaseResult(
                    case_id, behavior, close, FAIL,
                    f"{behavior} / close {close}", **extra))
        elif (behavior, close) == (entry.behavior, entry.behavior_close):
            results.append(CaseResult(
                case_id, behavior, close, ACCEPTED,
                f"expected.json {entry.key!r}: {entry.reason}", **extra))
        else:
            listed = f"{entry.behavior} / close {entry.behavior_close}"
            if passing:
                why = f"now passes; remove or narrow expected.json {direction} {entry.key!r}"
            else:
                why = (f"expected.json {direction} {entry.key!r} lists {listed}: "
                       "update the entry")
            results.append(CaseResult(
                case_id, behavior, close, FAIL,
                f"{behavior} / close {close}; {why}", **extra))
    return Verdict(direction, agent, results, errors)


# ------------------------------------------------------------------ testees

# The first line of a report of AddressSanitizer (and LeakSanitizer, which
# it includes), of UndefinedBehaviorSanitizer, and the SUMMARY line every
# sanitizer ends a report with. They print to stderr, which the runner sends
# to the testee's log; with ASan's default halt_on_error, and UBSan's
# halt_on_error=1 (tox -e asan), the process then exits with status 1.
_SANITIZER_LINE = re.compile(
    r"^(?:==\d+==\s*ERROR: \w+Sanitizer\b.*"   # ==1234==ERROR: AddressSanitizer: ...
    r"|\S+:\d+(?::\d+)?: runtime error: .*"     # picows.c:812:9: runtime error: ...
    r"|SUMMARY: \w+Sanitizer\b.*)$",            # SUMMARY: AddressSanitizer: ...
    re.MULTILINE)
MAX_REPORT_LINES = 10


def sanitizer_reports(log_text: str) -> list[str]:
    """The sanitizer report lines in a testee's output, in order."""
    return [m.group(0).strip() for m in _SANITIZER_LINE.finditer(log_text)]


def testee_problems(name: str, log_text: str, returncode: int | None, *,
                    signalled: bool = False) -> list[str]:
    """Gate errors from one testee run, empty when it was clean.

    :param name: the testee, for messages ("echo_server.py")
    :param log_text: its stdout and stderr
    :param returncode: its exit status (negative: killed by that signal);
        None when it never ran
    :param signalled: the runner stopped it with SIGINT; the testees catch
        that and exit 0, so a clean stop is still status 0
    """
    problems = []
    reports = sanitizer_reports(log_text)
    for line in reports[:MAX_REPORT_LINES]:
        problems.append(f"{name}: sanitizer report: {line}")
    if len(reports) > MAX_REPORT_LINES:
        problems.append(f"{name}: ... and {len(reports) - MAX_REPORT_LINES} more "
                        "sanitizer report lines (see its log)")
    if returncode is not None and returncode != 0:
        how = (f"was killed by signal {-returncode}" if returncode < 0
               else f"exited with status {returncode}")
        when = " after the runner's SIGINT" if signalled else ""
        problems.append(f"{name} {how}{when} (see its log)")
    return problems


# ------------------------------------------------------------------ reports

def _bucket(result: str) -> str:
    if result in BEHAVIORS:
        return result
    return FAILED  # WRONG CODE, UNCLEAN, FAILED BY CLIENT, MISSING


def category_counts(verdict: Verdict) -> dict[str, dict[str, Counter[str]]]:
    """{category: {"behavior": Counter, "close": Counter, "gate": Counter}}."""
    out: dict[str, dict[str, Counter[str]]] = {}
    for r in verdict.results:
        row = out.setdefault(category(r.case), {
            "behavior": Counter(), "close": Counter(), "gate": Counter()})
        row["behavior"][_bucket(r.behavior)] += 1
        row["close"][_bucket(r.behavior_close)] += 1
        row["gate"][r.status] += 1
        if r.behavior == MISSING:
            row["gate"][MISSING] += 1
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


_SHORT = {OK: "OK", NON_STRICT: "NS", INFORMATIONAL: "INFO",
          UNIMPLEMENTED: "UNIMP", FAILED: "FAIL"}


def _rows(verdict: Verdict, names: Mapping[str, str]) -> list[list[str]]:
    rows = []
    total: dict[str, Counter[str]] = {"behavior": Counter(), "close": Counter(),
                                      "gate": Counter()}
    for cat, row in category_counts(verdict).items():
        n = sum(row["gate"][s] for s in (PASS, ACCEPTED, FAIL))
        for k, counter in total.items():
            counter.update(row[k])
        rows.append([f"{cat}.*", names.get(cat, ""), str(n)]
                    + [str(row["behavior"][b]) for b in BEHAVIORS]
                    + [str(row["close"][b]) for b in BEHAVIORS]
                    + [str(row["gate"][MISSING]), str(row["gate"][ACCEPTED]),
                       str(row["gate"][FAIL])])
    n = len(verdict.results)
    rows.append(["all", "", str(n)]
                + [str(total["behavior"][b]) for b in BEHAVIORS]
                + [str(total["close"][b]) for b in BEHAVIORS]
                + [str(total["gate"][MISSING]), str(total["gate"][ACCEPTED]),
                   str(total["gate"][FAIL])])
    return rows


_HEAD = (["cases", "category", "n"] + [_SHORT[b] for b in BEHAVIORS]
         + [_SHORT[b] for b in BEHAVIORS] + ["missing", "listed", "GATE FAIL"])


def _short_name(name: str) -> str:
    # 'WebSocket Compression (different payloads)' -> 'Compression (payloads)'
    name = name.replace("WebSocket ", "").replace("different ", "")
    return name if len(name) <= 24 else name[:23] + "~"


def format_table(verdict: Verdict, names: Mapping[str, str] | None = None) -> str:
    """Plain-text table for the terminal, one row per category."""
    names = names or {}
    rows = _rows(verdict, {k: _short_name(v) for k, v in names.items()})
    widths = [max(len(r[i]) for r in rows + [_HEAD]) for i in range(len(_HEAD))]
    nb = len(BEHAVIORS)
    lead = sum(widths[:3]) + 2 * 2
    beh = sum(widths[3:3 + nb]) + 2 * (nb - 1)
    clo = sum(widths[3 + nb:3 + 2 * nb]) + 2 * (nb - 1)

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            parts.append(cell.ljust(w) if i < 2 else cell.rjust(w))
        a, b, c, d = (parts[:3], parts[3:3 + nb], parts[3 + nb:3 + 2 * nb],
                      parts[3 + 2 * nb:])
        return "  ".join(a) + " | " + "  ".join(b) + " | " + "  ".join(c) + " | " + "  ".join(d)

    title = f"{verdict.direction}: {DIRECTION_TITLES.get(verdict.direction, '')}"
    if verdict.wall_time is not None:
        title += f", {verdict.wall_time:.1f} s"
    out = [title,
           " " * lead + " | " + "behavior".center(beh) + " | " + "close behavior".center(clo)
           + " | gate",
           line(_HEAD),
           "-" * len(line(_HEAD))]
    out += [line(r) for r in rows[:-1]]
    out.append("-" * len(line(_HEAD)))
    out.append(line(rows[-1]))
    out += _detail_lines(verdict)
    out.append(f"{verdict.direction}: " + ("PASS" if verdict.passed else "FAIL"))
    return "\n".join(out)


def _detail_lines(verdict: Verdict, limit: int = 60) -> list[str]:
    out = []
    for err in verdict.errors:
        out.append(f"  ERROR {err}")
    fails = verdict.failures
    for r in fails[:limit]:
        where = f" [{r.reportfile}]" if r.reportfile else ""
        out.append(f"  FAIL {r.case}: {r.message}{where}")
    if len(fails) > limit:
        out.append(f"  ... and {len(fails) - limit} more failures (summary.md lists all)")
    by_key: dict[str, list[str]] = {}
    for r in verdict.accepted:
        by_key.setdefault(r.message, []).append(r.case)
    for message, ids in by_key.items():
        out.append(f"  listed: {len(ids)} cases, {message}")
    return out


def pass_count(verdicts: Sequence[Verdict]) -> tuple[int, int]:
    """(cases passing in every direction that ran, cases run): the badge."""
    cases: dict[str, bool] = {}
    for v in verdicts:
        for r in v.results:
            cases[r.case] = cases.get(r.case, True) and r.status == PASS
    return sum(cases.values()), len(cases)


def _text_width(text: str) -> int:
    # Verdana 11px, roughly: good enough for a two-part badge.
    wide = sum(1 for ch in text if ch in "mwMW@%")
    narrow = sum(1 for ch in text if ch in "il.,:;|!' ")
    return int(7 * (len(text) - wide - narrow) + 10 * wide + 4 * narrow) + 10


def badge_svg(passed: int, total: int, label: str = "autobahn") -> str:
    """A shields-style badge: '517/517 OK' green when all pass, red otherwise."""
    value = f"{passed}/{total} OK"
    color = "#4c1" if total and passed == total else "#e05d44"
    lw, vw = _text_width(label), _text_width(value)
    w = lw + vw
    esc_label, esc_value = html.escape(label), html.escape(value)
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" \
aria-label="{esc_label}: {esc_value}">
  <title>{esc_label}: {esc_value}</title>
  <linearGradient id="s" x2="0" y2="100%">
    <stop offset="0" stop-color="#bbb" stop-opacity=".1"/>
    <stop offset="1" stop-opacity=".1"/>
  </linearGradient>
  <clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath>
  <g clip-path="url(#r)">
    <rect width="{lw}" height="20" fill="#555"/>
    <rect x="{lw}" width="{vw}" height="20" fill="{color}"/>
    <rect width="{w}" height="20" fill="url(#s)"/>
  </g>
  <g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" \
font-size="11">
    <text x="{lw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{esc_label}</text>
    <text x="{lw / 2:.1f}" y="14">{esc_label}</text>
    <text x="{lw + vw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{esc_value}</text>
    <text x="{lw + vw / 2:.1f}" y="14">{esc_value}</text>
  </g>
</svg>
"""


def summary_markdown(verdicts: Sequence[Verdict], names: Mapping[str, str] | None = None,
                     header: str = "") -> str:
    """summary.md: a table per direction, every failure, every listed case."""
    names = names or {}
    passed, total = pass_count(verdicts)
    overall = all(v.passed for v in verdicts)
    out = ["# Autobahn|Testsuite conformance", ""]
    if header:
        out += [header, ""]
    out += [(f"Gate: **{'PASS' if overall else 'FAIL'}**. "
             f"{passed}/{total} cases OK or INFORMATIONAL in every direction run."), ""]
    head = (["cases", "category", "n"] + [f"{_SHORT[b]}" for b in BEHAVIORS]
            + [f"close {_SHORT[b]}" for b in BEHAVIORS] + ["missing", "listed", "gate fail"])
    for v in verdicts:
        title = f"## {v.direction}: {DIRECTION_TITLES.get(v.direction, '')}"
        out += [title, ""]
        if v.wall_time is not None:
            out += [(f"Wall time {v.wall_time:.1f} s. Gate: "
                     f"**{'PASS' if v.passed else 'FAIL'}**."), ""]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for row in _rows(v, names):
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        if v.errors:
            out += ["Errors:", ""] + [f"- {e}" for e in v.errors] + [""]
        if v.failures:
            out += ["Failures:", ""]
            for r in v.failures:
                link = f" ([report]({_report_dir(v.direction)}/{r.reportfile}))" \
                    if r.reportfile else ""
                out.append(f"- `{r.case}` {r.message}{link}")
            out.append("")
        if v.accepted:
            by_key: dict[str, list[str]] = {}
            for r in v.accepted:
                by_key.setdefault(r.message, []).append(r.case)
            out += ["Listed in expected.json:", ""]
            for message, ids in by_key.items():
                out.append(f"- {len(ids)} cases ({ids[0]} ... {ids[-1]}): {message}")
            out.append("")
    return "\n".join(out)


def _report_dir(direction: str) -> str:
    return "servers" if direction == "server" else "clients"
