"""benchmarks/resultfile.py: where ``--save`` puts a run (no benchmark is run)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import resultfile  # noqa: E402 (after the sys.path line)


def test_run_stem_names_date_and_commit():
    assert resultfile.run_stem("2026-12-01", "abc1234") == "2026-12-01-abc1234"
    assert resultfile.run_stem("2026-12-01", "") == "2026-12-01"
    stem = resultfile.run_stem()  # this checkout: today's date and HEAD
    assert len(stem) > 10 and stem[4] == stem[7] == "-"


def test_second_run_appends_and_json_files_do_not_clash(tmp_path):
    stem = "2026-12-01-abc1234"
    first = resultfile.save("tcp", "TCP, pinned to CPU 0", "| table |\n", {"a": 1},
                            results_dir=str(tmp_path), stem=stem)
    second = resultfile.save("tcp", "TCP, pinned to CPU 0", "| again |", {"a": 2},
                             results_dir=str(tmp_path), stem=stem)
    third = resultfile.save("instructions", "Instructions", "text", None,
                            results_dir=str(tmp_path), stem=stem)
    md = tmp_path / f"{stem}.md"
    assert first == [str(md), str(tmp_path / f"{stem}-tcp.json")]
    assert second == [str(md), str(tmp_path / f"{stem}-tcp-2.json")]
    assert third == [str(md)]
    assert md.read_text() == (
        "# Results, 2026-12-01 (commit abc1234)\n"
        "\n## TCP, pinned to CPU 0\n\n| table |\n"
        "\n## TCP, pinned to CPU 0\n\n| again |\n"
        "\n## Instructions\n\ntext\n")
    assert json.loads((tmp_path / f"{stem}-tcp-2.json").read_text()) == {"a": 2}


def test_named_run_has_its_own_file(tmp_path):
    written = resultfile.save("compression", "Compression echo, uvloop", "| t |", {"b": 1},
                              results_dir=str(tmp_path), stem="2026-12-01",
                              name="compression-echo")
    resultfile.save("compression", "Compression echo, asyncio", "| u |", None,
                    results_dir=str(tmp_path), stem="2026-12-01", name="compression-echo")
    md = tmp_path / "2026-12-01-compression-echo.md"
    assert written == [str(md), str(tmp_path / "2026-12-01-compression-echo.json")]
    text = md.read_text()
    assert text.startswith("# Results, 2026-12-01: compression-echo")
    assert text.endswith("\n## Compression echo, uvloop\n\n| t |\n"
                         "\n## Compression echo, asyncio\n\n| u |\n")
