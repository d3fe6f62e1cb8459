"""Where a benchmark run is kept: ``benchmarks/results/``, one file per run.

``echo.py --save`` and ``instructions.py --save`` call :func:`save`. The
markdown goes to ``results/YYYY-MM-DD-<commit>.md`` (UTC date, the short hash
of this checkout's HEAD, ``-dirty`` when tracked files differ from it); a
second run of the same day and commit (TLS after TCP, memory, instruction
counts) is appended to that file as its own section, as the earlier runs were
written by hand. The JSON document goes beside it, one per run:
``YYYY-MM-DD-<commit>-<kind>.json`` (``-2``, ``-3``... when the name is taken).

A benchmark with a file of its own (compression.py, json_send.py) passes
``name``: the run goes to ``results/YYYY-MM-DD-<name>.md`` (and
``YYYY-MM-DD-<name>.json``), the commit in the file's heading instead of its
name, and a later run of the same day is appended.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")


def git_commit(repo: str = REPO_ROOT) -> str | None:
    """Short hash of HEAD, with ``-dirty`` if tracked files are modified;
    None outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short=7", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def run_stem(date: str | None = None, commit: str | None = None) -> str:
    """``YYYY-MM-DD-<commit>``, or just the date outside a git checkout."""
    date = date or time.strftime("%Y-%m-%d", time.gmtime())
    commit = commit if commit is not None else git_commit()
    return f"{date}-{commit}" if commit else date


def save(kind: str, title: str, markdown: str, doc: dict | None,
         results_dir: str = RESULTS_DIR, stem: str | None = None,
         name: str | None = None) -> list[str]:
    """Append ``## title`` + ``markdown`` to the run's markdown file and write
    ``doc`` (if any) as that run's JSON; return the paths written.

    With ``name`` the files are ``YYYY-MM-DD-<name>.md`` and ``.json``."""
    os.makedirs(results_dir, exist_ok=True)
    if name is not None:
        commit = git_commit()
        stem = f"{(stem or run_stem(commit=''))[:10]}-{name}"
        heading = f"# Results, {stem[:10]}: {name}" + (f" (commit {commit})" if commit else "")
        json_base = stem
    else:
        stem = stem or run_stem()
        heading = f"# Results, {stem[:10]}" + (f" (commit {stem[11:]})" if len(stem) > 10 else "")
        json_base = f"{stem}-{kind}"
    md_path = os.path.join(results_dir, f"{stem}.md")
    written = [md_path]
    new = not os.path.exists(md_path)
    with open(md_path, "a") as f:
        if new:
            f.write(heading + "\n")
        f.write(f"\n## {title}\n\n{markdown.rstrip()}\n")
    if doc is not None:
        base = os.path.join(results_dir, json_base)
        json_path, n = f"{base}.json", 1
        while os.path.exists(json_path):
            n += 1
            json_path = f"{base}-{n}.json"
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        written.append(json_path)
    return written
