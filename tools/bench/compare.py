#!/usr/bin/env python3
"""Runs one measurement on diffusiond, OpenVINO and PyTorch back to back and prints a table.

    python3 tools/bench/compare.py unet --size 512 --batch 2
    python3 tools/bench/compare.py vae --size 512
    python3 tools/bench/compare.py text
    python3 tools/bench/compare.py unet --size 256 --batch 1 --engines diffusiond,openvino

The arguments after the component are passed unchanged to `diffusion-bench` (found as
$DIFFUSION_BENCH, else .build/release/diffusion-bench: build it with `swift build -c release`),
`bench_openvino.py` and `bench_torch.py`, which take the same options (--shapes, --size,
--batch, --threads, --warmup, --iterations). Engines run one after another, never at the same
time, so each has the machine to itself; speeds compare only within one such run (machines
and even one virtual machine's hours differ by 10–20%). Prints one JSON line per engine, then a
Markdown table: mean wall seconds per evaluation, peak RSS, and how many times faster
diffusiond is than each other engine (their seconds / diffusiond's).

--rounds N runs the engines in turn N times (A B C, A B C, …) and pools each engine's rounds:
its mean is the mean of its rounds' means (every round has the same iterations), its best the
best of its bests, its peak RSS the largest. On a shared host whose load drifts over minutes
(the virtual machines this project is measured on), a drift then falls on every engine
alike instead of on whichever ran during it; each round's own ratios are printed as well.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def command(engine, component, rest):
    if engine == "diffusiond":
        binary = os.environ.get("DIFFUSION_BENCH", os.path.join(ROOT, ".build", "release", "diffusion-bench"))
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} not found: run `swift build -c release` or set DIFFUSION_BENCH")
        return [binary, component, *rest, "--json"]
    script = {"openvino": "bench_openvino.py", "pytorch": "bench_torch.py"}[engine]
    return [sys.executable, os.path.join(HERE, script), component, *rest]


def run(engine, component, rest):
    out = subprocess.run(command(engine, component, rest), capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{engine} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    # The result line; with --profile, per-operator lines follow it.
    results = [r for r in (json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))
               if "best_seconds_per_eval" in r]
    if not results:
        raise SystemExit(f"{engine} printed no result line:\n{out.stdout[-2000:]}")
    return results[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("component", choices=["unet", "vae", "text"])
    ap.add_argument("--engines", default="diffusiond,openvino,pytorch",
                    help="comma-separated, in run order (default: all three)")
    ap.add_argument("--rounds", type=int, default=1, help="run the engines in turn this many times (default 1)")
    args, rest = ap.parse_known_args()
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - {"diffusiond", "openvino", "pytorch"}
    if unknown:
        raise SystemExit(f"unknown engine(s): {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    rounds = []
    for number in range(args.rounds):
        this = {}
        for engine in engines:
            this[engine] = run(engine, args.component, rest)
            print(json.dumps(this[engine]), flush=True)
        rounds.append(this)
        if args.rounds > 1 and "diffusiond" in this:
            ratios = ", ".join(f"{e} {r['seconds_per_eval'] / this['diffusiond']['seconds_per_eval']:.2f}×"
                               for e, r in this.items() if e != "diffusiond")
            print(f"# round {number + 1}: diffusiond is faster than {ratios}", flush=True)
    results = {engine: pooled([r[engine] for r in rounds]) for engine in engines}
    print()
    print(f"| {args.component} {' '.join(rest)} | seconds / eval | best | peak RSS MB | diffusiond is … faster |")
    print("|---|---|---|---|---|")
    ours = results.get("diffusiond", {}).get("seconds_per_eval")
    for engine, r in results.items():
        ratio = "" if engine == "diffusiond" or not ours else f"{r['seconds_per_eval'] / ours:.2f}×"
        print(f"| {engine} | {r['seconds_per_eval']:.3f} | {r['best_seconds_per_eval']:.3f} "
              f"| {r.get('peak_rss_mb', '')} | {ratio} |")


def pooled(results):
    """One engine's rounds as one result: mean of the means, best of the bests, largest peak RSS."""
    out = dict(results[-1])
    out["seconds_per_eval"] = sum(r["seconds_per_eval"] for r in results) / len(results)
    out["best_seconds_per_eval"] = min(r["best_seconds_per_eval"] for r in results)
    rss = [r["peak_rss_mb"] for r in results if "peak_rss_mb" in r]
    if rss:
        out["peak_rss_mb"] = max(rss)
    return out


if __name__ == "__main__":
    main()
