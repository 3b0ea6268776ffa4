#!/usr/bin/env python3
"""Measure how often CI shell scripts use the shell brace form ${VAR}.

Corpus: bare git snapshots under /work/.mirror/<owner>+<name>/repo (fetched
with the session's `fetch` tool).  For each repository we read HEAD and take
  * GitHub Actions: .github/workflows/<file>.yml|yaml (top level only, as
    GitHub does) -> jobs.*.steps[*].run
  * GitLab CI: .gitlab-ci.yml at the root plus local include files under
    .gitlab-ci/ , .gitlab/ci/ or named *.gitlab-ci.yml -> every mapping that
    has script / before_script / after_script (jobs, hidden .templates,
    default:)
Each run: string (GitHub) or each script/before_script/after_script section
(GitLab) is one "step".  Before testing for shell braces every ${{ ... }}
GitHub expression is removed.

Usage: python3 measure.py  -> writes corpus.txt, results.json, summary.md
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys

import yaml

OUT = os.path.dirname(os.path.abspath(__file__))
MIRROR = os.environ.get("MIRROR", "/work/.mirror")

GH_EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)
# shell brace parameter expansion with a name / special prefix
BRACE = re.compile(r"\$\{([A-Za-z_#!][^}]*)\}")
# positional / special parameters: ${1}, ${10}, ${@}, ${*}, ${?}, ${$}
POSITIONAL = re.compile(r"\$\{([0-9]+|[@*?$-])\}")
BARE = re.compile(r"(?<![\$\\])\$[A-Za-z_][A-Za-z0-9_]*")
ESCAPED = re.compile(r"\$\$\{")  # $${...}

NON_SH_SHELLS = ("pwsh", "powershell", "cmd", "python")

# Repositories picked at random-ish from the file index listings
# (find_files path=.github/workflows/ci.yml and path=.gitlab-ci.yml), i.e.
# small / unknown projects, as opposed to the hand-picked well-known ones.
SMALL = {
    "SnapPwd/snappwd-cli", "Snappey/maps.gw2.io", "SnapDBApp/mariadb-macos-builds",
    "SnapDogRocks/snapdog", "Snapmaker/Snapmaker-SACP", "SnappyLab/DocBinder-OSS",
    "Snappyup/Snappyup.Aspire.Hosting.Dragonfly", "SnaveSutit/blockbench-patch-manager",
    "SneachChea/footix", "SneakerHead-org/SneakerHead-order-service", "Snayff/fin_plan",
    "SnapdragonPartners/maestro", "Snapchat/camera-kit-react-native",
    "SnapMsg-Inc/g1.users.api", "Snawyyy/sar-wildfire-burnscar",
    "Sneaks-Community/surfstats-web-next", "Snapchat/KeyDB",
    "0-complexity/openvcloud_installer", "006lp/NeteaseCloudMusicApi",
    "00p513-dev/halium-ci", "010-010/bananian", "023433/blog",
    "026sourav/node-todo-cicd", "0312birdzhang/xiaomi-ginkgo-willow",
    "039710/simple-ci-cd-gitlab", "04-TREADMILL/frontend",
    "06kellyjac/docker_markdownlint-cli", "09NINE90/BoostingPlatform-Backend",
    "0FL01/Oxide-Agent", "0LNetworkCommunity/explorer", "0DevGuru0/UiKit",
    "01ssh/Filrouge", "00010504/smartpos-web", "0000sai/gitlab-cicd-project",
    "00mjk/isomorfeus-project",
}


class Loader(yaml.SafeLoader):
    pass


def _any_tag(loader, tag_suffix, node):  # GitLab !reference etc.
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)


Loader.add_multi_constructor("!", _any_tag)


def git(gitdir, *args):
    return subprocess.run(["git", "--git-dir", gitdir, *args],
                          capture_output=True, check=True).stdout


def classify(inner):
    """Return (name, operator) for the text inside ${...}."""
    if inner.startswith("#"):
        m = re.match(r"#([A-Za-z_][A-Za-z0-9_]*)", inner)
        return (m.group(1) if m else inner[1:], "#len")
    if inner.startswith("!"):
        m = re.match(r"!([A-Za-z_][A-Za-z0-9_]*)", inner)
        return (m.group(1) if m else inner[1:], "!indirect")
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(.*)", inner, re.S)
    if not m:
        return (inner, "other")
    name, rest = m.group(1), m.group(2)
    if name == "env" and re.match(r":[A-Za-z_]", rest):
        return (rest[1:], "pwsh-env:")  # PowerShell ${env:NAME}
    if rest == "":
        return (name, "plain")
    if rest.startswith("["):
        return (name, "array[]")
    for op in (":-", ":=", ":?", ":+", "##", "%%", "//", "/#", "/%", "^^",
               ",,", "-", "=", "?", "+", "#", "%", "/", "^", ",", ":", "@"):
        if rest.startswith(op):
            if op == ":" and not rest.startswith(":-"):
                return (name, ":offset")
            if op in ("/#", "/%"):
                return (name, "/")
            return (name, op)
    return (name, "other")


def analyse(text):
    stripped = GH_EXPR.sub("", text)
    braces = [m.group(1) for m in BRACE.finditer(stripped)]
    posit = [m.group(1) for m in POSITIONAL.finditer(stripped)]
    no_brace = BRACE.sub("", POSITIONAL.sub("", stripped))
    bare = BARE.findall(no_brace)
    brace_lines = [ln.strip() for ln in stripped.splitlines()
                   if BRACE.search(ln)]
    return {
        "gh_expr": len(GH_EXPR.findall(text)),
        "brace": braces,
        "positional": posit,
        "bare": len(bare),
        "escaped": len(ESCAPED.findall(text)),
        "brace_lines": brace_lines,
        "lines": len([ln for ln in text.splitlines() if ln.strip()]),
    }


def gh_steps(doc):
    """Yield (job, index, run, shell) from a GitHub workflow document."""
    if not isinstance(doc, dict):
        return
    wf_shell = (((doc.get("defaults") or {}).get("run") or {}).get("shell")
                if isinstance(doc.get("defaults"), dict) else None)
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict):
        return
    for jname, job in jobs.items():
        if not isinstance(job, dict):
            continue
        jd = job.get("defaults")
        job_shell = (((jd or {}).get("run") or {}).get("shell")
                     if isinstance(jd, dict) else None)
        steps = job.get("steps")
        if not isinstance(steps, list):
            continue
        for i, st in enumerate(steps):
            if isinstance(st, dict) and isinstance(st.get("run"), str):
                shell = st.get("shell") or job_shell or wf_shell or "default"
                yield jname, i, st["run"], str(shell)


def _flatten(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, list):
        for y in x:
            yield from _flatten(y)


def gl_steps(doc):
    if not isinstance(doc, dict):
        return
    for jname, job in doc.items():
        if not isinstance(job, dict):
            continue
        for key in ("before_script", "script", "after_script"):
            if key in job:
                lines = list(_flatten(job[key]))
                if lines:
                    yield jname, key, "\n".join(lines), "sh"


def is_gitlab_path(p):
    return (p == ".gitlab-ci.yml" or p.endswith(".gitlab-ci.yml")
            or re.match(r"^\.gitlab(-ci)?/(ci/)?.*\.ya?ml$", p) is not None
            and (p.startswith(".gitlab-ci/") or p.startswith(".gitlab/ci/")))


def main():
    corpus, steps = [], []
    for d in sorted(glob.glob(os.path.join(MIRROR, "*", "repo"))):
        gitdir = d + "/.git" if os.path.isdir(d + "/.git") else d
        repo = os.path.basename(os.path.dirname(d)).replace("+", "/", 1)
        try:
            head = git(gitdir, "rev-parse", "HEAD").decode().strip()
            files = git(gitdir, "ls-tree", "-r", "--name-only",
                        "HEAD").decode().splitlines()
        except subprocess.CalledProcessError:
            continue
        for p in files:
            if re.match(r"^\.github/workflows/[^/]+\.ya?ml$", p):
                kind = "github"
            elif is_gitlab_path(p):
                kind = "gitlab"
            else:
                continue
            raw = git(gitdir, "show", f"HEAD:{p}").decode("utf-8", "replace")
            try:
                docs = list(yaml.load_all(raw, Loader=Loader))
            except yaml.YAMLError as e:
                corpus.append((repo, head, p, kind, "yaml-error"))
                continue
            n = 0
            for doc in docs:
                gen = gh_steps(doc) if kind == "github" else gl_steps(doc)
                for job, idx, text, shell in gen:
                    a = analyse(text)
                    a.update(repo=repo, commit=head, path=p, kind=kind,
                             job=str(job), idx=idx, shell=shell)
                    steps.append(a)
                    n += 1
            corpus.append((repo, head, p, kind, n))

    with open(os.path.join(OUT, "corpus.txt"), "w") as f:
        f.write("# repo\tcommit(HEAD of fetched snapshot)\tpath\tkind\trun-steps\n")
        for row in corpus:
            f.write("\t".join(map(str, row)) + "\n")

    results = {"by_kind": {}}
    md = ["# Shell brace `${VAR}` usage in CI scripts\n"]
    for kind in ("github", "gitlab"):
        S = [s for s in steps if s["kind"] == kind]
        if not S:
            continue
        files = {(r, p) for r, _, p, k, n in corpus
                 if k == kind and isinstance(n, int) and n > 0}
        repos = {r for r, p in files}
        files_parsed = [c for c in corpus if c[3] == kind]

        def pct(a, b):
            return round(100.0 * a / b, 1) if b else 0.0

        def agg(pred, subset=S):
            # denominators: files / repos having >= 1 step in `subset`
            all_fs = {(s["repo"], s["path"]) for s in subset}
            all_rs = {s["repo"] for s in subset}
            st = [s for s in subset if pred(s)]
            fs = {(s["repo"], s["path"]) for s in st}
            rs = {s["repo"] for s in st}
            return {"steps": len(st), "steps_pct": pct(len(st), len(subset)),
                    "files": len(fs), "files_total": len(all_fs),
                    "files_pct": pct(len(fs), len(all_fs)),
                    "repos": len(rs), "repos_total": len(all_rs),
                    "repos_pct": pct(len(rs), len(all_rs))}

        shellish = [s for s in S
                    if not any(x in s["shell"].lower() for x in NON_SH_SHELLS)]
        multi = [s for s in S if s["lines"] > 1]
        r = {
            "repositories_with_run_steps": len(repos),
            "files_parsed": len(files_parsed),
            "files_with_run_steps": len(files),
            "yaml_errors": sum(1 for c in files_parsed if c[4] == "yaml-error"),
            "steps": len(S),
            "shell_brace": agg(lambda s: s["brace"]),
            "shell_brace_or_positional": agg(lambda s: s["brace"] or s["positional"]),
            "positional_only_brace": agg(lambda s: s["positional"]),
            "shell_brace_with_operator": agg(
                lambda s: any(classify(b)[1] not in ("plain",) for b in s["brace"])),
            "bare_dollar_var": agg(lambda s: s["bare"] > 0),
            "gh_expression": agg(lambda s: s["gh_expr"] > 0),
            "escaped_double_dollar_brace": agg(lambda s: s["escaped"] > 0),
            "sh_like_steps_only": {"steps": len(shellish),
                                   "shell_brace": agg(lambda s: s["brace"], shellish)},
            "multi_line_steps_only": {"steps": len(multi),
                                      "shell_brace": agg(lambda s: s["brace"], multi)},
            "brace_occurrences": sum(len(s["brace"]) for s in S),
            "positional_occurrences": sum(len(s["positional"]) for s in S),
        }
        names, ops, posn = (collections.Counter(), collections.Counter(),
                            collections.Counter())
        for s in S:
            for inner in s["brace"]:
                n, o = classify(inner)
                names[n] += 1
                ops[o] += 1
            for p in s["positional"]:
                posn[p] += 1
        # robustness: well-known vs small repos, top-3 contributors removed,
        # and the mean of per-repository step shares
        big = [x for x in S if x["repo"] not in SMALL]
        small = [x for x in S if x["repo"] in SMALL]
        r["well_known_repos"] = {"repos": len({x["repo"] for x in big}), "steps": len(big),
                                 "shell_brace": agg(lambda s: s["brace"], big)}
        r["small_repos"] = {"repos": len({x["repo"] for x in small}), "steps": len(small),
                            "shell_brace": agg(lambda s: s["brace"], small)}
        occ = collections.Counter()
        for x in S:
            occ[x["repo"]] += len(x["brace"])
        top3 = [k for k, _ in occ.most_common(3)]
        rest = [x for x in S if x["repo"] not in top3]
        r["without_top3_repos"] = {"excluded": top3, "steps": len(rest),
                                   "shell_brace": agg(lambda s: s["brace"], rest)}
        shares = collections.defaultdict(lambda: [0, 0])
        for x in S:
            shares[x["repo"]][0] += 1
            shares[x["repo"]][1] += bool(x["brace"])
        vals = sorted(b / a for a, b in shares.values())
        r["per_repo_share_mean_pct"] = round(100 * sum(vals) / len(vals), 1)
        r["per_repo_share_median_pct"] = round(100 * vals[len(vals) // 2], 1)
        r["top_names"] = names.most_common(20)
        r["operators"] = ops.most_common()
        r["positional_forms"] = posn.most_common()
        r["per_repo"] = {}
        for s in S:
            d = r["per_repo"].setdefault(s["repo"], {"commit": s["commit"], "steps": 0,
                                                     "brace_steps": 0, "bare_steps": 0,
                                                     "gh_expr_steps": 0})
            d["steps"] += 1
            d["brace_steps"] += bool(s["brace"])
            d["bare_steps"] += s["bare"] > 0
            d["gh_expr_steps"] += s["gh_expr"] > 0
        ex = collections.OrderedDict()
        for s in S:
            for ln in s["brace_lines"]:
                ex.setdefault(ln, f'{s["repo"]}@{s["commit"][:12]}:{s["path"]}')
        r["example_lines_all"] = [[k, v] for k, v in ex.items()]
        results["by_kind"][kind] = r

        md.append(f"\n## {kind}\n")
        md.append(f"- repositories with run steps: {len(repos)}; workflow files "
                  f"with run steps: {len(files)} (parsed {len(files_parsed)}, "
                  f"yaml errors {r['yaml_errors']}); run steps: {len(S)}\n")
        for key, label in (("shell_brace", "shell `${NAME...}`"),
                           ("shell_brace_or_positional", "shell `${NAME}` or `${1}`"),
                           ("shell_brace_with_operator", "shell brace with operator (not plain `${NAME}`)"),
                           ("bare_dollar_var", "bare `$VAR`"),
                           ("gh_expression", "`${{ }}`"),
                           ("escaped_double_dollar_brace", "`$${` (escaped)")):
            a = r[key]
            md.append(f"- {label}: steps {a['steps']}/{len(S)} = {a['steps_pct']}%; "
                      f"files {a['files']}/{len(files)} = {a['files_pct']}%; "
                      f"repos {a['repos']}/{len(repos)} = {a['repos_pct']}%\n")
        sb = r["sh_like_steps_only"]
        md.append(f"- sh-like shells only (excl. pwsh/cmd/python): "
                  f"{sb['shell_brace']['steps']}/{sb['steps']} = {sb['shell_brace']['steps_pct']}%\n")
        mb = r["multi_line_steps_only"]
        md.append(f"- multi-line run steps only: "
                  f"{mb['shell_brace']['steps']}/{mb['steps']} = {mb['shell_brace']['steps_pct']}%\n")
        md.append(f"- well-known repos ({r['well_known_repos']['repos']}): "
                  f"{r['well_known_repos']['shell_brace']['steps']}/{r['well_known_repos']['steps']} steps = "
                  f"{r['well_known_repos']['shell_brace']['steps_pct']}%, repos {r['well_known_repos']['shell_brace']['repos_pct']}%; "
                  f"small repos ({r['small_repos']['repos']}): {r['small_repos']['shell_brace']['steps']}/"
                  f"{r['small_repos']['steps']} steps = {r['small_repos']['shell_brace']['steps_pct']}%, "
                  f"repos {r['small_repos']['shell_brace']['repos_pct']}%\n")
        w = r["without_top3_repos"]
        md.append(f"- without the 3 heaviest repos ({', '.join(w['excluded'])}): "
                  f"{w['shell_brace']['steps']}/{w['steps']} = {w['shell_brace']['steps_pct']}%\n")
        md.append(f"- per-repository share of steps with shell braces: mean "
                  f"{r['per_repo_share_mean_pct']}%, median {r['per_repo_share_median_pct']}%\n")
        md.append(f"- brace occurrences: {r['brace_occurrences']}; positional `${{N}}` occurrences: "
                  f"{r['positional_occurrences']}\n")
        md.append("- top names: " + ", ".join(f"{n} ({c})" for n, c in r["top_names"][:15]) + "\n")
        md.append("- operators: " + ", ".join(f"`{n}` ({c})" for n, c in r["operators"]) + "\n")

    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(OUT, "steps.json"), "w") as f:
        json.dump(steps, f)
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.writelines(md)
    sys.stdout.writelines(md)


if __name__ == "__main__":
    main()
