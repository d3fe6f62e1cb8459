"""The Autobahn conformance gate (conformance/gate.py) on hand-written index.json
samples: no wstest, no sockets, no built picows needed."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Appended, not prepended: an installed picows must still win over the source tree.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conformance import gate  # noqa: E402 (after the sys.path line)

ALL_CASES, CATEGORY_NAMES = gate.load_case_list()
SMALL = ["1.1.1", "1.1.2", "2.1", "6.4.1", "7.5.1", "9.1.1", "10.1.1", "12.1.1", "13.1.1"]

COMPRESSION = {
    "server": {
        "12.*": {"behavior": "UNIMPLEMENTED", "behaviorClose": "OK", "reason": "no deflate"},
        "13.*": {"behavior": "UNIMPLEMENTED", "behaviorClose": "OK", "reason": "no deflate"},
    }
}


def entry(behavior="OK", close="OK", code=1000):
    return {"behavior": behavior, "behaviorClose": close, "remoteCloseCode": code,
            "duration": 3, "reportfile": "picows_case_x.json"}


def index_for(overrides=None, cases=SMALL, agent="picows"):
    results = {c: entry() for c in cases}
    for c in cases:
        if c.startswith(("12.", "13.")):
            results[c] = entry("UNIMPLEMENTED")
    results.update(overrides or {})
    return {agent: results}


def judge(index, expected=COMPRESSION, cases=SMALL, direction="server"):
    parsed = gate.parse_expected(expected)
    return gate.evaluate(index, direction=direction, agent="picows", cases=cases,
                         expected=parsed[direction], all_cases=ALL_CASES)


def statuses(verdict):
    return {r.case: r.status for r in verdict.results}


# ------------------------------------------------------------- verdicts

def test_all_ok_and_listed_unimplemented_passes():
    v = judge(index_for())
    assert v.passed
    assert statuses(v)["12.1.1"] == gate.ACCEPTED
    assert statuses(v)["1.1.1"] == gate.PASS
    assert not v.errors and not v.failures


def test_informational_passes():
    v = judge(index_for({"6.4.1": entry("INFORMATIONAL"),
                         "7.5.1": entry("OK", "INFORMATIONAL")}))
    assert v.passed


@pytest.mark.parametrize("behavior, close", [
    ("NON-STRICT", "OK"),
    ("UNIMPLEMENTED", "OK"),
    ("FAILED", "OK"),
    ("OK", "FAILED"),
    ("OK", "NON-STRICT"),
    ("OK", "WRONG CODE"),
    ("OK", "UNCLEAN"),
    ("OK", "FAILED BY CLIENT"),
    ("INFORMATIONAL", "UNCLEAN"),
])
def test_unlisted_non_passing_result_fails(behavior, close):
    v = judge(index_for({"7.5.1": entry(behavior, close)}))
    assert not v.passed
    assert [r.case for r in v.failures] == ["7.5.1"]
    assert behavior in v.failures[0].message and close in v.failures[0].message


def test_missing_case_fails():
    index = index_for()
    del index["picows"]["9.1.1"]
    v = judge(index)
    assert not v.passed
    (r,) = v.failures
    assert (r.case, r.behavior) == ("9.1.1", gate.MISSING)


def test_unknown_agent_fails_every_case():
    v = judge(index_for(agent="SomethingElse/1.0"))
    assert not v.passed
    assert len(v.failures) == len(SMALL)  # listed 12.1.1 and 13.1.1 are MISSING too
    assert {r.behavior for r in v.failures} == {gate.MISSING}
    assert any("agent" in e for e in v.errors)


def test_compression_unlisted_fails():
    v = judge(index_for(), expected={})
    assert not v.passed
    assert {r.case for r in v.failures} == {"12.1.1", "13.1.1"}


def test_listed_case_that_starts_passing_fails():
    v = judge(index_for({"12.1.1": entry("OK")}))
    assert not v.passed
    (r,) = v.failures
    assert r.case == "12.1.1"
    assert "now passes" in r.message and "'12.*'" in r.message


def test_listed_case_with_other_result_fails():
    v = judge(index_for({"13.1.1": entry("FAILED")}))
    assert not v.passed
    assert "lists UNIMPLEMENTED" in v.failures[0].message


def test_listed_close_result_must_match_exactly():
    v = judge(index_for({"12.1.1": entry("UNIMPLEMENTED", "WRONG CODE")}))
    assert [r.case for r in v.failures] == ["12.1.1"]


def test_exact_non_strict_listing_is_accepted():
    expected = {"server": {"6.4.1": {"behavior": "NON-STRICT", "behaviorClose": "OK",
                                     "reason": "fails fast only at the end of the frame"}}}
    expected["server"].update(COMPRESSION["server"])
    v = judge(index_for({"6.4.1": entry("NON-STRICT")}), expected=expected)
    assert v.passed
    assert statuses(v)["6.4.1"] == gate.ACCEPTED


def test_listing_applies_to_its_direction_only():
    expected = {"client": COMPRESSION["server"]}
    v = judge(index_for(), expected=expected, direction="server")
    assert not v.passed
    v = judge(index_for(), expected=expected, direction="client")
    assert v.passed


def test_entry_matching_no_case_is_stale():
    expected = {"server": dict(COMPRESSION["server"])}
    expected["server"]["11.*"] = {"behavior": "FAILED", "behaviorClose": "OK", "reason": "x"}
    expected["server"]["1.1.99"] = {"behavior": "FAILED", "behaviorClose": "OK", "reason": "x"}
    v = judge(index_for(), expected=expected)
    assert not v.passed
    assert len(v.errors) == 2


def test_entries_outside_a_subset_run_are_not_stale():
    cases = ["1.1.1", "1.1.2"]
    v = judge(index_for(cases=cases), cases=cases)
    assert v.passed


def test_results_outside_the_selection_are_ignored():
    v = judge(index_for({"5.1": entry("FAILED")}), cases=["1.1.1"])
    assert v.passed


def test_exact_id_beats_pattern_and_longer_pattern_beats_shorter():
    expected = {"server": {
        "12.*": {"behavior": "UNIMPLEMENTED", "behaviorClose": "OK", "reason": "a"},
        "12.1.*": {"behavior": "FAILED", "behaviorClose": "OK", "reason": "b"},
        "12.1.1": {"behavior": "NON-STRICT", "behaviorClose": "OK", "reason": "c"},
    }}
    parsed = gate.parse_expected(expected)["server"]
    assert gate.expectation_for("12.1.1", parsed).reason == "c"
    assert gate.expectation_for("12.1.2", parsed).reason == "b"
    assert gate.expectation_for("12.2.1", parsed).reason == "a"
    assert gate.expectation_for("1.1.1", parsed) is None


# ------------------------------------------------------ expected.json rules

@pytest.mark.parametrize("bad, what", [
    ({"server": {"1.1.1": {"behavior": "FAILED", "behaviorClose": "OK"}}}, "reason"),
    ({"server": {"1.1.1": {"behavior": "FAILED", "behaviorClose": "OK", "reason": " "}}},
     "reason"),
    ({"server": {"1.1.1": {"behavior": "BROKEN", "behaviorClose": "OK", "reason": "x"}}},
     "behavior"),
    ({"server": {"1.1.1": {"behavior": "FAILED", "reason": "x"}}}, "behaviorClose"),
    ({"server": {"1.1.1": {"behavior": "OK", "behaviorClose": "OK", "reason": "x"}}},
     "passing"),
    ({"server": {"1.1.1": {"behavior": "INFORMATIONAL", "behaviorClose": "OK",
                           "reason": "x"}}}, "passing"),
    ({"sever": {}}, "direction"),
    ({"server": {"one": {"behavior": "FAILED", "behaviorClose": "OK", "reason": "x"}}},
     "case ID"),
    ({"server": {"1.1.1": {"behavior": "FAILED", "behaviorClose": "OK", "reason": "x",
                           "until": "2.0"}}}, "unknown fields"),
])
def test_malformed_expected_is_rejected(bad, what):
    with pytest.raises(gate.ExpectedError, match=what):
        gate.parse_expected(bad)


def test_comment_keys_are_ignored():
    parsed = gate.parse_expected({"_comment": "x", "server": {"_note": "y"}})
    assert parsed == {"server": {}, "client": {}}


def test_committed_expected_json_is_valid_and_lists_nothing():
    # Every case passes in both directions, permessage-deflate included: a
    # new entry needs a reason good enough to change this test.
    parsed = gate.load_expected()
    for direction, entries in parsed.items():
        for key in entries:
            assert any(gate.matches(key, c) for c in ALL_CASES), key
        assert not entries, f"{direction}: expected.json lists {sorted(entries)}"


# ------------------------------------------------------------ case patterns

def test_case_list_is_wstest_25_10_1():
    assert len(ALL_CASES) == 517
    assert ALL_CASES == sorted(ALL_CASES, key=gate.case_key)
    assert {gate.category(c) for c in ALL_CASES} == set(CATEGORY_NAMES)


def test_pattern_semantics_follow_wstest():
    assert gate.matches("1.*", "1.1.1")
    assert not gate.matches("1.*", "10.1.1")
    assert gate.matches("1*", "10.1.1")
    assert gate.matches("6.4.*", "6.4.3")
    assert gate.matches("9.1.1", "9.1.1")
    assert not gate.matches("9.1.1", "9.1.10")


def test_resolve():
    assert gate.resolve(["2.1", "1.1.*"], ALL_CASES)[:3] == ["1.1.1", "1.1.2", "1.1.3"]
    assert len(gate.resolve(["*"], ALL_CASES)) == 517
    assert len(gate.resolve(["12.*", "13.*"], ALL_CASES)) == 216
    assert gate.resolve(["2.1", "2.1"], ALL_CASES) == ["2.1"]
    with pytest.raises(ValueError):
        gate.resolve(["1.1.99"], ALL_CASES)
    with pytest.raises(ValueError):
        gate.resolve(["11.*"], ALL_CASES)


def test_committed_configs():
    cfg = ROOT / "conformance" / "autobahn-config"
    client = json.loads((cfg / "fuzzingclient.json").read_text())
    server = json.loads((cfg / "fuzzingserver.json").read_text())
    for spec in (client, server):
        assert spec["options"]["failByDrop"] is True
        assert spec["cases"] == ["*"]
        assert spec.get("exclude-cases", []) == []
    assert client["servers"] == [{"agent": "picows", "url": "ws://127.0.0.1:9002"}]
    assert server["url"] == "ws://127.0.0.1:9001"


# ----------------------------------------------------------------- reports

def test_table_counts_per_category():
    v = judge(index_for({"7.5.1": entry("OK", "WRONG CODE"), "6.4.1": entry("NON-STRICT")}))
    counts = gate.category_counts(v)
    assert list(counts) == ["1", "2", "6", "7", "9", "10", "12", "13"]
    assert counts["1"]["behavior"]["OK"] == 2
    assert counts["6"]["behavior"]["NON-STRICT"] == 1
    assert counts["7"]["close"]["FAILED"] == 1  # WRONG CODE counts as FAILED
    assert counts["12"]["gate"][gate.ACCEPTED] == 1
    table = gate.format_table(v, CATEGORY_NAMES)
    assert "FAIL 7.5.1" in table and "FAIL 6.4.1" in table
    assert table.splitlines()[-1] == "server: FAIL"
    assert "12.*" in table and "Framing" in table


def test_pass_count_and_badge():
    ok = judge(index_for(), cases=SMALL[:7])
    bad = judge(index_for({"2.1": entry("FAILED")}), cases=SMALL[:7], direction="client")
    assert gate.pass_count([ok]) == (7, 7)
    assert gate.pass_count([ok, bad]) == (6, 7)
    green = gate.badge_svg(517, 517)
    assert "517/517 OK" in green and "#4c1" in green
    red = gate.badge_svg(301, 517)
    assert "301/517 OK" in red and "#e05d44" in red and "#4c1" not in red


def test_summary_markdown_lists_failures_and_listings():
    v = judge(index_for({"2.1": entry("FAILED")}))
    v.wall_time = 12.5
    md = gate.summary_markdown([v], CATEGORY_NAMES)
    assert "Gate: **FAIL**" in md
    assert "`2.1` FAILED" in md
    assert "Listed in expected.json" in md
    assert "12.5 s" in md
