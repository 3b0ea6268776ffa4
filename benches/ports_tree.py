#!/usr/bin/env python3
"""Generates a monorepo-shaped tree for the port-scan benchmark (benches/ports.sh).

    benches/ports_tree.py OUT_DIR [FILES]

FILES (default 100000) files are laid out as a JavaScript/TypeScript and Python monorepo:
apps/<n>/src/..., packages/<n>/src/..., services/<n>/app/..., each app and service with the
config files a real one has (package.json, .env, Dockerfile, docker-compose.yml, Procfile,
nginx and workflow files, copied from fixtures/ports/). Source file contents are real files
sampled from this machine (npm's JavaScript, the Python standard library), so the bytes,
line lengths and keyword density are those of real code. A committed node_modules folder and
a few Markdown and image files are added too: both tools must skip them. Deterministic for a
given machine (seeded).
"""
import os
import random
import shutil
import subprocess
import sys

def pool(roots, exts, limit=200_000):
    found = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for n in names:
                if n.endswith(exts):
                    p = os.path.join(dirpath, n)
                    try:
                        size = os.path.getsize(p)
                    except OSError:
                        continue
                    if 0 < size <= limit:
                        found.append(p)
    found.sort()
    return found

def main():
    out = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rng = random.Random(42)
    js = pool(["/usr/lib/node_modules", "/usr/share/nodejs"], (".js", ".mjs", ".cjs"))
    py = pool(["/usr/lib/python3"] + [f"/usr/lib/{d}" for d in os.listdir("/usr/lib") if d.startswith("python3.")], (".py",))
    data = pool(["/usr/share", "/usr/lib/node_modules"], (".json", ".yml", ".yaml"), 50_000)
    if not js or not py:
        sys.exit("ports_tree.py: needs JavaScript (npm's, /usr/lib/node_modules) and Python sources on this machine")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    fixtures = os.path.join(repo, "fixtures/ports")
    written = 0
    unit = 0
    while written < total:
        kind = rng.choice(["apps", "packages", "services"])
        base = os.path.join(out, kind, f"{kind[:-1]}-{unit:04d}")
        unit += 1
        # The config files of a real app or service.
        template = rng.choice(["team-app", "nextjs-flask", "fastapi-compose", "compliant"])
        shutil.copytree(os.path.join(fixtures, template), os.path.join(base, "config"), dirs_exist_ok=True)
        written += sum(len(f) for _, _, f in os.walk(os.path.join(base, "config")))
        for i in range(rng.randint(80, 220)):
            if written >= total:
                break
            depth = "/".join(f"m{rng.randint(0, 9)}" for _ in range(rng.randint(1, 3)))
            roll = rng.random()
            if kind == "services" or roll < 0.2:
                src, ext = rng.choice(py), ".py"
            elif roll < 0.9:
                src, ext = rng.choice(js), rng.choice([".ts", ".tsx", ".js"])
            elif roll < 0.97:
                src, ext = rng.choice(data), os.path.splitext(rng.choice(data))[1]
            else:
                src, ext = None, rng.choice([".md", ".png"])
            path = os.path.join(base, "src", depth, f"f{i}{ext}")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if src:
                shutil.copyfile(src, path)
            else:
                with open(path, "wb") as f:
                    f.write(b"# notes\nOpen http://localhost:3000\n" if ext == ".md" else bytes(range(256)))
            written += 1
    nm = os.path.join(out, "node_modules", "next", "dist")
    os.makedirs(nm)
    for i in range(2000):
        shutil.copyfile(rng.choice(js), os.path.join(nm, f"m{i}.js"))
    with open(os.path.join(out, ".gitignore"), "w") as f:
        f.write("node_modules/\ndist/\n.next/\n")
    subprocess.run(["git", "init", "-q", out], check=True)
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) if "/.git" not in d for n in ns)
    print(f"{written} files outside node_modules, {size / 1e6:.0f} MB in total, in {out}")

main()
