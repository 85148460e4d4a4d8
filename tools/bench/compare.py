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

An engine NAME=PATH is another diffusion-bench binary, compared with diffusiond like the others:
`--engines diffusiond,before=/tmp/old/diffusion-bench --paced` times a change against the build
before it.

--paced starts every engine at once, waits until all have loaded and warmed up, then has them
take turns one evaluation at a time (A B C, B C A, C A B, …: the order rotates so none always
follows the same one), each waiting for its turn on stdin (the `--paced` option of
diffusion-bench, bench_openvino.py and bench_torch.py) and stopped (SIGSTOP) while it waits, so
no runtime's idle worker threads spin beside another's evaluation; after its last evaluation an
engine runs to its end before the next one's evaluation starts. Neighbouring evaluations then share
the host's state of that moment, so each turn gives a paired ratio (the other engine's time
over diffusiond's in the same turn); the table adds their median. The engines' models are all
in memory at once (about 18 GB for the UNet at 512², batch 2: peak RSS 3.8 + 9.6 + 4.7 GB),
and each still reports its own peak RSS. With --rounds, each round starts the engines afresh.
The paced table also gives each engine's host steal: the share of the machine's CPU time that
the hypervisor gave to other guests during that engine's evaluations (/proc/stat's `steal`,
counted in 1/100 s), which shows how much of a row's spread the host caused.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def command(engine, component, rest):
    if engine == "diffusiond" or "=" in engine:
        binary = engine.partition("=")[2] or os.environ.get(
            "DIFFUSION_BENCH", os.path.join(ROOT, ".build", "release", "diffusion-bench"))
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} not found: run `swift build -c release` or set DIFFUSION_BENCH")
        return [binary, component, *rest, "--json"]
    script = {"openvino": "bench_openvino.py", "pytorch": "bench_torch.py"}[engine]
    return [sys.executable, os.path.join(HERE, script), component, *rest]


def run(engine, component, rest):
    out = subprocess.run(command(engine, component, rest), capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{engine} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return result_line(engine, out.stdout)


def result_line(engine, stdout):
    """The engine's result line (with --profile, per-operator lines follow it)."""
    results = [r for r in (json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
               if "best_seconds_per_eval" in r]
    if not results:
        raise SystemExit(f"{engine} printed no result line:\n{stdout[-2000:]}")
    return results[-1]


def steal_seconds():
    """CPU seconds the hypervisor has given to other guests since boot, all CPUs together
    (/proc/stat's `steal`; 0 where the file or the field is missing)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") if fields[0] == "cpu" and len(fields) > 8 else 0.0
    except (OSError, ValueError):
        return 0.0


def run_paced(engines, component, rest):
    """All engines started together, timed evaluation by evaluation in turns: returns
    ({engine: result line}, [{engine: seconds} per turn]); each result line gains
    `host_steal`, the share of the machine's CPU time stolen during the engine's evaluations."""
    procs, logs = {}, {}
    try:
        for engine in engines:
            logs[engine] = tempfile.TemporaryFile(mode="w+")
            procs[engine] = subprocess.Popen(command(engine, component, rest) + ["--paced"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=logs[engine], text=True, bufsize=1)
        lines = {engine: [] for engine in engines}

        def until(engine, prefix):
            """Reads `engine`'s stdout up to a line starting with `prefix`; None at its end."""
            for line in procs[engine].stdout:
                if line.startswith(prefix):
                    return line
                lines[engine].append(line)
            return None

        def ready(engine):
            """Waits for the engine's next turn and stops it (SIGSTOP) until then: between its
            evaluations a runtime's worker threads may spin (OpenMP, TBB) on the cores the next
            engine is being timed on."""
            if until(engine, "# ready") is None:
                return False
            os.kill(procs[engine].pid, signal.SIGSTOP)
            return True

        def check(engine):
            """Waits for the engine's exit; a failure ends the comparison with its stderr's tail."""
            if procs[engine].wait() != 0:
                logs[engine].seek(0)
                raise SystemExit(f"{engine} failed ({procs[engine].returncode}):\n{logs[engine].read()[-2000:]}")

        waiting = [e for e in engines if ready(e)]   # loaded and warmed up, all of them
        if len(waiting) != len(engines):
            check(next(e for e in engines if e not in waiting))
            raise SystemExit("an engine ended before its first timed evaluation")
        turns = []
        stolen = {engine: 0.0 for engine in engines}
        while waiting:
            shift = len(turns) % len(waiting)
            turn, finished = {}, set()
            for engine in waiting[shift:] + waiting[:shift]:
                before = steal_seconds()
                os.kill(procs[engine].pid, signal.SIGCONT)
                procs[engine].stdin.write("go\n")
                procs[engine].stdin.flush()
                done = until(engine, "# done")
                if done is None:
                    raise SystemExit(f"{engine} stopped in the middle of a turn")
                stolen[engine] += steal_seconds() - before
                turn[engine] = float(done.split()[2])
                # Before the next engine's evaluation: this one stopped at its next turn, or, after
                # its last, run to its end (result line, FLOP count, exit) with the cores to itself.
                if not ready(engine):
                    finished.add(engine)
            turns.append(turn)
            waiting = [e for e in waiting if e not in finished]
        results = {}
        for engine in engines:
            procs[engine].stdin.close()
            lines[engine].extend(procs[engine].stdout)
            check(engine)
            results[engine] = result_line(engine, "".join(lines[engine]))
            timed = sum(t[engine] for t in turns if engine in t)
            results[engine]["host_steal"] = stolen[engine] / (timed * (os.cpu_count() or 1)) if timed > 0 else 0.0
        return results, turns
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs.values():
            f.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("component", choices=["unet", "vae", "text"])
    ap.add_argument("--engines", default="diffusiond,openvino,pytorch",
                    help="comma-separated, in run order (default: all three); NAME=PATH adds another "
                         "diffusion-bench binary (an older build, say) under NAME")
    ap.add_argument("--rounds", type=int, default=1, help="run the engines in turn this many times (default 1)")
    ap.add_argument("--paced", action="store_true", help="all engines at once, taking turns evaluation by evaluation")
    args, rest = ap.parse_known_args()
    engines = [e for e in args.engines.split(",") if e]
    unknown = {e for e in engines if "=" not in e} - {"diffusiond", "openvino", "pytorch"}
    if unknown:
        raise SystemExit(f"unknown engine(s): {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    if "--profile" in rest and args.paced:
        raise SystemExit("--paced times evaluations in turns; profile without it")
    rounds, turns = [], []
    for number in range(args.rounds):
        this = {}
        if args.paced:
            this, these = run_paced(engines, args.component, rest)
            turns.extend(these)
            for engine in engines:
                print(json.dumps(this[engine]), flush=True)
        else:
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
    paired = turns and "diffusiond" in engines
    print(f"| {args.component} {' '.join(rest)} | seconds / eval | best | peak RSS MB | diffusiond is … faster |"
          + (" median of the turns' ratios (range) | host steal |" if paired else ""))
    print("|---|---|---|---|---|" + ("---|---|" if paired else ""))
    ours = results.get("diffusiond", {}).get("seconds_per_eval")
    for engine, r in results.items():
        ratio = "" if engine == "diffusiond" or not ours else f"{r['seconds_per_eval'] / ours:.2f}×"
        row = (f"| {engine.partition('=')[0]} | {r['seconds_per_eval']:.3f} | {r['best_seconds_per_eval']:.3f} "
               f"| {r.get('peak_rss_mb', '')} | {ratio} |")
        if paired:
            ratios = [t[engine] / t["diffusiond"] for t in turns if engine != "diffusiond"]
            row += (f" {statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |" if ratios else " |")
            row += f" {100 * r.get('host_steal', 0):.0f}% |"
        print(row)


def pooled(results):
    """One engine's rounds as one result: mean of the means, best of the bests, largest peak RSS,
    mean host steal."""
    out = dict(results[-1])
    out["seconds_per_eval"] = sum(r["seconds_per_eval"] for r in results) / len(results)
    out["best_seconds_per_eval"] = min(r["best_seconds_per_eval"] for r in results)
    steal = [r["host_steal"] for r in results if "host_steal" in r]
    if steal:
        out["host_steal"] = sum(steal) / len(steal)
    rss = [r["peak_rss_mb"] for r in results if "peak_rss_mb" in r]
    if rss:
        out["peak_rss_mb"] = max(rss)
    return out


if __name__ == "__main__":
    main()
