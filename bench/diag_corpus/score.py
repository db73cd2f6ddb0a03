#!/usr/bin/env python3
"""Score nnc's diagnostics on a corpus of buggy models a learner would write.

Each `cases/*.nn` file holds exactly one mistake. Its header says what the
mistake is and whether an obvious fix exists (`// fix: yes|no`); `//~ TEXT`
after a line marks the text to change on that line (`A || B`: either is
right; several marked lines are alternatives too). A marked text is
found at its first occurrence on the line.

For every case `nnc check --format json` runs (with NNC_DATA for datasets)
and four scores are counted:

  caught   at least one diagnostic before anything runs
  span     the first diagnostic's primary span lies inside a marked text
  fix      (cases with `fix: yes`) the first diagnostic with a fix, applied,
           leaves a file that checks without errors
  one      exactly one diagnostic

    python3 bench/diag_corpus/score.py [--nnc target/release/nnc] [-v]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def regions(text):
    """Byte ranges of the marked texts."""
    out = []
    data = text.encode()
    offset = 0
    lines = data.split(b"\n")
    starts = []
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    for i, line in enumerate(lines):
        pos = line.find(b"//~")
        if pos < 0:
            continue
        rest = line[pos + 3 :]
        target = i
        while rest.startswith(b"^"):
            rest = rest[1:]
            target -= 1
        code = lines[target] if target != i else line[:pos]
        for alt in rest.decode().split("||"):
            alt = alt.strip().encode()
            if not alt:
                continue
            at = code.find(alt)
            if at < 0:
                raise SystemExit(f"marker `{alt.decode()}` not found on its line")
            out.append((starts[target] + at, starts[target] + at + len(alt)))
    return out


def check(nnc, path, env):
    p = subprocess.run([nnc, "check", "--format", "json", str(path)], capture_output=True, text=True, env=env, timeout=120)
    try:
        report = json.loads(p.stdout)
    except json.JSONDecodeError:
        return None, p
    return [d for f in report["files"] for d in f["diagnostics"]], p


def apply_fix(text, fix):
    data = bytearray(text.encode())
    for e in sorted(fix["edits"], key=lambda e: e["start"]["offset"], reverse=True):
        data[e["start"]["offset"] : e["end"]["offset"]] = e["replacement"].encode()
    return data.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", default=str(ROOT / "target/release/nnc"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("NNC_DATA", str(ROOT.parent.parent / "shared/data") if not os.environ.get("NNC_DATA") else os.environ["NNC_DATA"])
    cases = sorted((HERE / "cases").glob("*.nn"))
    totals = {"caught": 0, "span": 0, "fix": 0, "one": 0}
    with_fix = 0
    rows = []
    for case in cases:
        text = case.read_text()
        wants_fix = "// fix: yes" in text
        with_fix += wants_fix
        marks = regions(text)
        diags, proc = check(args.nnc, case, env)
        if diags is None:
            rows.append((case.name, "no JSON: " + (proc.stderr.strip().splitlines() or ["?"])[-1]))
            continue
        mine = [d for d in diags if d["primary"]["file"] == str(case)]
        r = {"caught": bool(diags), "span": False, "fix": False, "one": len(diags) == 1}
        if mine:
            s = mine[0]["primary"]
            a, b = s["start"]["offset"], s["end"]["offset"]
            r["span"] = any(lo <= a and b <= hi and (a < b or lo < hi) for lo, hi in marks)
        if wants_fix:
            fixed = next((d["fixes"][0] for d in diags if d.get("fixes")), None)
            if fixed is not None:
                with tempfile.NamedTemporaryFile("w", suffix=".nn", dir=case.parent, delete=False) as t:
                    t.write(apply_fix(text, fixed))
                try:
                    after, _ = check(args.nnc, t.name, env)
                    r["fix"] = after is not None and not any(d["severity"] == "error" for d in after)
                finally:
                    os.unlink(t.name)
        for k in totals:
            totals[k] += r[k]
        first = mine[0] if mine else (diags[0] if diags else None)
        summary = f"{first['code']} {first['message']}" if first else "-"
        flags = " ".join(k if r[k] else "." * len(k) for k in totals if k != "fix" or wants_fix)
        rows.append((case.name, f"{flags:28} {len(diags)}  {summary}"))
    n = len(cases)
    if args.verbose:
        for name, line in rows:
            print(f"{name:44} {line}")
        print()
    pct = lambda k, d: 100.0 * totals[k] / d if d else 0.0
    print(f"cases: {n} ({with_fix} with an obvious fix)")
    print(f"caught before running     {totals['caught']:3}/{n}  {pct('caught', n):5.1f} %   (goal 98 %)")
    print(f"primary span on the token {totals['span']:3}/{n}  {pct('span', n):5.1f} %   (goal 90 %)")
    print(f"fix that type-checks      {totals['fix']:3}/{with_fix}  {pct('fix', with_fix):5.1f} %   (goal 70 %)")
    print(f"exactly one diagnostic    {totals['one']:3}/{n}  {pct('one', n):5.1f} %   (goal 95 %)")


if __name__ == "__main__":
    sys.exit(main())
