#!/usr/bin/env python3
"""Helper for benches/dag.sh: writes the benchmark DAGs and summarises hyperfine's JSON.

  dag_helper.py layered OUTDIR [--layers 10] [--width 20]
      OUTDIR/layered-run.yml      portcullis, `run: 'true'`      (bash -c per stage)
      OUTDIR/layered-command.yml  portcullis, `command: ['true']` (argv, no shell)
      OUTDIR/Makefile.layered     phony targets, recipe `@true`   (default SHELL: make execs true itself)
      OUTDIR/Makefile.layered-bash  same, with SHELL=/bin/bash and portcullis's flags
  dag_helper.py sleep OUTDIR
      OUTDIR/sleep-run.yml, OUTDIR/sleep-command.yml, OUTDIR/Makefile.sleep
      and prints the critical path in seconds on stdout
  dag_helper.py summary RESULTS_DIR CRITICAL_PATH_SECONDS
      prints the summary table of every hyperfine JSON export in RESULTS_DIR

Stage ids and make targets are the same names, so both tools see the same graph.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The portcullis `run:` shell is `bash --noprofile --norc -eo pipefail -c`; the "make (bash)"
# variant uses exactly that, so the shell cost is the same on both sides.
BASH_FLAGS = "--noprofile --norc -eo pipefail -c"


def yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def write_pipeline(path: Path, name: str, concurrency: int,
                   stages: list[tuple[str, list[str], str | None, list[str]]]) -> None:
    """stages: (id, needs, run-script or None, argv for `command:` when run is None)."""
    out = [f"version: 1", f"name: {name}", f"concurrency: {concurrency}", "stages:"]
    for sid, needs, script, argv in stages:
        out.append(f"  {sid}:")
        if needs:
            out.append(f"    needs: {yaml_list(needs)}")
        if script is not None:
            out.append(f"    run: '{script}'")
        else:
            out.append("    command: " + yaml_list([f"'{a}'" for a in argv]))
    path.write_text("\n".join(out) + "\n")


def write_makefile(path: Path, targets: list[tuple[str, list[str], str]],
                   bash: bool = False) -> None:
    """targets: (name, prerequisites, recipe). `all` depends on every target."""
    out = []
    if bash:
        out += ["SHELL := /bin/bash", f".SHELLFLAGS := {BASH_FLAGS}", ""]
    names = [t[0] for t in targets]
    out.append(".PHONY: all " + " ".join(names))
    out.append("all: " + " ".join(names))
    for name, prereqs, recipe in targets:
        out.append(f"{name}: {' '.join(prereqs)}".rstrip())
        out.append(f"\t@{recipe}")
    path.write_text("\n".join(out) + "\n")


def layered(outdir: Path, layers: int, width: int) -> None:
    ids = [[f"s{l}_{i}" for i in range(width)] for l in range(layers)]
    graph = []
    for l in range(layers):
        needs = ids[l - 1] if l > 0 else []
        for sid in ids[l]:
            graph.append((sid, needs))
    write_pipeline(outdir / "layered-run.yml", "bench-layered-run", 2,
                   [(s, n, "true", []) for s, n in graph])
    write_pipeline(outdir / "layered-command.yml", "bench-layered-command", 2,
                   [(s, n, None, ["true"]) for s, n in graph])
    write_makefile(outdir / "Makefile.layered", [(s, n, "true") for s, n in graph])
    write_makefile(outdir / "Makefile.layered-bash", [(s, n, "true") for s, n in graph],
                   bash=True)
    edges = sum(len(n) for _, n in graph)
    print(f"{len(graph)} stages, {layers} layers of {width}, {edges} edges")


# A ladder of three rails with rungs, plus a side chain: 15 stages, widest antichain < 8, so
# `-j 8` never limits. (id, seconds, needs)
SLEEP_GRAPH: list[tuple[str, float, list[str]]] = [
    ("a", 0.1, []),
    ("b1", 0.3, ["a"]),
    ("b2", 0.2, ["a"]),
    ("b3", 0.4, ["a"]),
    ("c1", 0.2, ["b1", "b2"]),
    ("c2", 0.5, ["b2"]),
    ("c3", 0.1, ["b2", "b3"]),
    ("d1", 0.3, ["c1"]),
    ("d2", 0.1, ["c1", "c2", "c3"]),
    ("d3", 0.2, ["c3"]),
    ("e1", 0.2, ["d1", "d2"]),
    ("e2", 0.3, ["d2", "d3"]),
    ("side1", 0.4, ["a"]),
    ("side2", 0.3, ["side1"]),
    ("f", 0.1, ["e1", "e2", "side2"]),
]


def critical_path(graph: list[tuple[str, float, list[str]]]) -> tuple[float, list[str]]:
    """Longest path by summed sleep (the graph is listed in topological order)."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for sid, secs, needs in graph:
        prev = max(needs, key=lambda n: finish[n]) if needs else None
        finish[sid] = secs + (finish[prev] if prev else 0.0)
        via[sid] = prev
    end = max(finish, key=lambda s: finish[s])
    path, cur = [], end
    while cur is not None:
        path.append(cur)
        cur = via[cur]
    return round(finish[end], 6), list(reversed(path))


def sleep(outdir: Path) -> None:
    g = SLEEP_GRAPH
    write_pipeline(outdir / "sleep-run.yml", "bench-sleep-run", 8,
                   [(s, n, f"sleep {t}", []) for s, t, n in g])
    write_pipeline(outdir / "sleep-command.yml", "bench-sleep-command", 8,
                   [(s, n, None, ["sleep", str(t)]) for s, t, n in g])
    write_makefile(outdir / "Makefile.sleep", [(s, n, f"sleep {t}") for s, t, n in g])
    cp, path = critical_path(g)
    sys.stderr.write(f"sleep DAG: {len(g)} stages, critical path {cp:.3f} s via "
                     f"{' -> '.join(path)}\n")
    print(f"{cp:.6f}")


def summary(results: Path, cp: float) -> None:
    rows: dict[str, dict] = {}
    for f in sorted(results.glob("*.json")):
        for r in json.loads(f.read_text())["results"]:
            rows[f"{f.stem}/{r['command']}"] = r

    def get(group: str, name: str) -> dict | None:
        return rows.get(f"{group}/{name}")

    def ms(x: float) -> str:
        return f"{x * 1000:8.1f}"

    print()
    print("== 200 stages, 10 layers x 20, full edges between layers, -j 2 ==")
    print(f"{'tool':<44} {'mean ms':>8} {'± sd':>7} {'min ms':>8} {'runs':>5}")
    for name in ["portcullis run: (bash -c)", "portcullis command: (argv)",
                 "make -j2 (/bin/sh fast path: execs true)",
                 "make -j2 (SHELL=bash, like run:)"]:
        r = get("layered", name)
        if r:
            print(f"{name:<44} {ms(r['mean'])} {ms(r['stddev'])[1:]} {ms(r['min'])} "
                  f"{len(r['times']):>5}")
    ratios = [
        ("portcullis run:     / make (SHELL=bash)", "portcullis run: (bash -c)",
         "make -j2 (SHELL=bash, like run:)"),
        ("portcullis command: / make (/bin/sh)", "portcullis command: (argv)",
         "make -j2 (/bin/sh fast path: execs true)"),
        ("portcullis run:     / make (/bin/sh)", "portcullis run: (bash -c)",
         "make -j2 (/bin/sh fast path: execs true)"),
    ]
    print()
    for label, a, b in ratios:
        ra, rb = get("layered", a), get("layered", b)
        if ra and rb:
            print(f"ratio {label:<42} {ra['mean'] / rb['mean']:5.2f}x   "
                  f"(+{(ra['mean'] - rb['mean']) * 1000 / 200:.2f} ms per stage)")

    print()
    print(f"== 15 sleep stages, critical path {cp * 1000:.0f} ms, -j 8 ==")
    print(f"{'tool':<44} {'mean ms':>8} {'± sd':>7} {'over CP':>8} {'median':>7} "
          f"{'max':>7}")
    for name in ["portcullis run: (bash -c)", "portcullis command: (argv)",
                 "make -j8 (/bin/sh fast path: execs sleep)"]:
        r = get("sleep", name)
        if r:
            over = (r["mean"] - cp) * 1000
            median = (r["median"] - cp) * 1000
            worst = (max(r["times"]) - cp) * 1000
            verdict = "ok" if over <= 50 else "OVER 50 ms"
            print(f"{name:<44} {ms(r['mean'])} {ms(r['stddev'])[1:]} {over:+8.1f} "
                  f"{median:+7.1f} {worst:+7.1f}  {verdict}")
    print()
    print("'over CP' = mean wall time minus the critical path (goal: within 50 ms); 'median' and")
    print("'max' are the same difference for the median and the slowest run. Wall times include")
    print("process start-up, parsing and (portcullis) the run folder and its JUnit report.")


def main() -> None:
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    cmd, rest = args[0], args[1:]
    if cmd == "layered":
        outdir = Path(rest[0])
        layers, width = 10, 20
        if "--layers" in rest:
            layers = int(rest[rest.index("--layers") + 1])
        if "--width" in rest:
            width = int(rest[rest.index("--width") + 1])
        layered(outdir, layers, width)
    elif cmd == "sleep":
        sleep(Path(rest[0]))
    elif cmd == "summary":
        summary(Path(rest[0]), float(rest[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
