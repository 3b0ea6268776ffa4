#!/usr/bin/env python3
"""Precision and recall of `portcullis ports` on trees its detectors were not tuned on.

usage: benches/ports_recall.py [PORTCULLIS_BIN] [CORPUS]   (default: target/release/portcullis,
       fixtures/ports-unseen)

Each tree of the corpus holds `.expected`, written before the scan was first run: one
`file:line port violation|note` per finding the team's law (allow 3001, 5555; forbid 3000,
3002, 8000) must give. A reported violation matches an expected one at the same file, line and
port. Precision: matched / reported violations. Recall: matched / expected violations. Expected
notes are counted apart. Prints each tree's misses and false alarms, then the totals.
"""
import json
import os
import subprocess
import sys

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "target/release/portcullis")
corpus = sys.argv[2] if len(sys.argv) > 2 else os.path.join(repo, "fixtures/ports-unseen")
policy = ["--allow", "3001", "--allow", "5555", "--forbid", "3000", "--forbid", "3002", "--forbid", "8000"]

totals = {"expected": 0, "reported": 0, "matched": 0, "notes": 0, "notes_found": 0}
for tree in sorted(os.listdir(corpus)):
    if not os.path.isdir(os.path.join(corpus, tree)):
        continue
    path = os.path.join(corpus, tree)
    expected = [l.split() for l in open(os.path.join(path, ".expected")) if l.strip()]
    want = {(e[0], int(e[1]), e[2]) for e in expected if e[2] == "violation"}
    want_notes = {(e[0], int(e[1])) for e in expected if e[2] == "note"}
    out = subprocess.run([binary, "ports", path, "--format", "json", *policy],
                         capture_output=True, text=True)
    findings = json.loads(out.stdout)["findings"]
    got = {(f"{f['file']}:{f['line']}", f["port"]) for f in findings if f["severity"] == "violation"}
    got_notes = {(f"{f['file']}:{f['line']}", f["port"]) for f in findings if f["severity"] == "note"}
    want_keys = {(w[0], w[1]) for w in want}
    matched = got & want_keys
    totals["expected"] += len(want_keys)
    totals["reported"] += len(got)
    totals["matched"] += len(matched)
    totals["notes"] += len(want_notes)
    totals["notes_found"] += len(want_notes & got_notes)
    misses = sorted(want_keys - got)
    false = sorted(got - want_keys)
    status = "ok" if not misses and not false else ""
    print(f"{tree:<20} expected {len(want_keys)}, found {len(matched)} {status}")
    for m in misses:
        print(f"    missed      {m[0]} port {m[1]}")
    for f in false:
        print(f"    false alarm {f[0]} port {f[1]}")
p = totals["matched"] / totals["reported"] if totals["reported"] else 1.0
r = totals["matched"] / totals["expected"] if totals["expected"] else 1.0
print(f"\nprecision {p:.2f} ({totals['matched']}/{totals['reported']}), "
      f"recall {r:.2f} ({totals['matched']}/{totals['expected']}), "
      f"expected notes found {totals['notes_found']}/{totals['notes']}")
