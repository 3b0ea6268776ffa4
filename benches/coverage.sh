#!/usr/bin/env bash
# The coverage gate beside the tools a team would otherwise run for it, on one real report.
#
# A generated Python project (MODULES modules of about 240 lines each, half of every module's
# functions called by its test) is measured once by real pytest-cov, which writes coverage.py's
# database, a Cobertura `coverage.xml` and an `lcov.info`. Then, with hyperfine:
#
#   1. total: `coverage report --fail-under=50` (coverage.py's own gate, from its database)
#      against `portcullis run` of a pipeline whose one stage is `uses: coverage` with `min: 50`
#      over `coverage.xml`, and over `lcov.info`;
#   2. changed lines: `diff-cover coverage.xml --compare-branch=HEAD~1 --fail-under=50` against
#      the same stage with `changed-lines: { min: 50 }` and `--base HEAD~1`, after a commit that
#      changed two lines (one covered, one not) in every tenth module.
#
# Needs: cargo, python3 with pytest, pytest-cov and diff-cover (pip), git, hyperfine
# (`apt-get install -y hyperfine`). MODULES=400 (default) makes a 96,000-line project; about
# 2 minutes on 2 cores plus the build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=benches/common.sh
source "$here/common.sh"
require coverage.sh hyperfine
require coverage.sh diff-cover "python3 -m pip install diff-cover"
python3 -c 'import pytest, pytest_cov' 2>/dev/null || {
    echo "coverage.sh: pytest and pytest-cov are not installed (python3 -m pip install pytest pytest-cov)" >&2
    exit 2
}
build_release

modules=${MODULES:-400}
runs=${RUNS:-10}
work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-coverage-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

python3 - "$modules" <<'EOF'
import os, sys
n = int(sys.argv[1])
os.makedirs("app", exist_ok=True)
os.makedirs("tests", exist_ok=True)
open("app/__init__.py", "w").close()
for m in range(n):
    with open(f"app/m{m}.py", "w") as f:
        for k in range(40):
            f.write(f"def f{k}(x):\n")
            f.write(f"    y = x + {k}\n")
            f.write("    if y % 2:\n")
            f.write("        y += 1\n")
            f.write("    return y\n\n")
    with open(f"tests/test_m{m}.py", "w") as f:
        f.write(f"from app import m{m}\n\n\ndef test_half():\n")
        for k in range(0, 40, 2):
            f.write(f"    assert m{m}.f{k}({k}) >= 0\n")
EOF
git init -q -b main .
git -c user.name=b -c user.email=b@example.invalid add -A
git -c user.name=b -c user.email=b@example.invalid commit -qm base
# Two changed lines in every tenth module: one in a function the tests call, one in a function
# they do not.
for ((m = 0; m < modules; m += 10)); do
    sed -i -e "s/^    y = x + 1$/    y = x + 101/" -e "s/^    y = x + 2$/    y = x + 102/" "app/m$m.py"
done
git -c user.name=b -c user.email=b@example.invalid commit -qam change
echo "measuring the project with pytest-cov..." >&2
python3 -m pytest -q -p no:cacheprovider --cov=app --cov-report=xml --cov-report=lcov:lcov.info tests >/dev/null
lines=$(grep -c '<line ' coverage.xml)
echo "coverage.xml: $(du -h coverage.xml | cut -f1), $lines line entries; lcov.info: $(du -h lcov.info | cut -f1)" >&2

mkdir -p pipelines
for name in xml lcov; do
    report=coverage.xml
    [ "$name" = lcov ] && report=lcov.info
    cat >"pipelines/$name.yml" <<EOF
version: 1
stages:
  coverage:
    uses: coverage
    with: { report: $report, min: 50 }
EOF
done
cat >pipelines/changed.yml <<'EOF'
version: 1
stages:
  coverage:
    uses: coverage
    with: { report: coverage.xml, changed-lines: { min: 50 } }
EOF

hyperfine --warmup 2 --runs "$runs" --ignore-failure --export-json "$work/total.json" \
    -n "coverage report --fail-under=50" "coverage report --fail-under=50" \
    -n "portcullis coverage (coverage.xml)" "$bin run xml" \
    -n "portcullis coverage (lcov.info)" "$bin run lcov" >&2
hyperfine --warmup 2 --runs "$runs" --ignore-failure --export-json "$work/changed.json" \
    -n "diff-cover --fail-under=50" "diff-cover coverage.xml --compare-branch=HEAD~1 --fail-under=50" \
    -n "portcullis changed-lines" "$bin run changed --base HEAD~1" >&2

python3 - "$work/total.json" "$work/changed.json" <<'EOF'
import json, sys
for path in sys.argv[1:]:
    results = json.load(open(path))["results"]
    base = results[0]
    for r in results:
        print(f"{r['command']:<40} {r['mean'] * 1000:8.1f} ms ± {r['stddev'] * 1000:5.1f}   "
              f"{r['mean'] / base['mean']:.2f}x {base['command']}")
    print()
EOF
# Both gates agree on the figure.
coverage report | tail -1
"$bin" run xml 2>&1 | grep -m1 'line coverage' || true
