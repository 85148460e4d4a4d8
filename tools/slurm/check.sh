#!/usr/bin/env bash
# make slurm-check: a real single-node Slurm cluster (tools/slurm/cluster.sh) runs
# contrib/slurm/diffusion-array.sbatch as a 4-task array over 2 job files of 10 images each
# on the built-in model. One task is cancelled (scancel) and another requeued (scontrol
# requeue, as preemption or a node failure does) after their first image; the requeued one
# resumes by itself, the cancelled one is resubmitted from what `diffusiond --oneshot
# --status` lists. The outbox must end with the 20 images exactly once (each written by one
# task, never again), valid PNGs and complete result.json files.
#
#   tools/slurm/check.sh [PATH/TO/diffusiond]      (default: .build/debug/diffusiond)
#
# Root, Debian's slurm-wlm, munge and jq (tools/install-deps.sh --slurm). About a minute on
# 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
binary="$(realpath "${1:-.build/debug/diffusiond}")"
[ -x "$binary" ] || { echo "slurm-check: $binary is not built (swift build)" >&2; exit 66; }
command -v jq >/dev/null || { echo "slurm-check: jq is missing (tools/install-deps.sh --slurm)" >&2; exit 69; }

work="$(mktemp -d /tmp/slurm-check.XXXXXX)"
chmod 0755 "$work"
cleanup() {
    local status=$?
    if [ -n "${SLURM_CONF:-}" ] && [ -n "${job:-}" ]; then scancel "$job" 2>/dev/null || true; fi
    bash "$repo/tools/slurm/cluster.sh" stop "$work/cluster" || true
    if [ $status -ne 0 ]; then
        echo "slurm-check: FAILED; the queue:" >&2
        squeue -t all -o '%i %T %r' >&2 2>/dev/null || true
        echo "slurm-check: task logs:" >&2
        tail -n 15 "$work"/logs/*.log >&2 2>/dev/null || true
        tail -n 20 "$work/cluster/log/slurmctld.log" "$work/cluster/log/slurmd.log" >&2 2>/dev/null || true
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
fail() { echo "slurm-check: $*" >&2; exit 1; }
start=$(date +%s)
say() { echo "slurm-check [$(( $(date +%s) - start ))s]: $*"; }

eval "$(bash tools/slurm/cluster.sh start "$work/cluster")"
export SLURM_CONF
say "cluster up: $(sinfo -h -o '%P %D node(s) %c CPUs %T')"

mkdir -p "$work/jobs" "$work/logs"
# 50 steps (twice the model's default): each image takes long enough, even on a fast idle
# machine, that a task is still running when the check cancels it after its first image.
printf 'prompt: a red circle on a blue background\ncount: 10\nsteps: 50\nseed: 100\nname: circles\n' > "$work/jobs/circles.yaml"
# No seed: every task derives the same one from the job.
printf 'prompt: a yellow square at the top left on a green background\ncount: 10\nsteps: 50\n' > "$work/jobs/squares.yaml"
outbox="$work/outbox"
run=(4 "$outbox" "$work/jobs/circles.yaml" "$work/jobs/squares.yaml" --model "$repo/models/shapes")
submit() {  # submit ARRAY: prints the array job's id
    DIFFUSIOND="$binary" sbatch --parsable --array="$1" --cpus-per-task=1 --mem=512M --chdir="$work" \
        --output="$work/logs/task-%a.log" "$repo/contrib/slurm/diffusion-array.sbatch" "${run[@]}"
}
status() {  # diffusiond --oneshot --status, its output in $work/status.txt; returns its exit status
    "$binary" --oneshot --status "$outbox" "$work/jobs/circles.yaml" "$work/jobs/squares.yaml" \
        --model "$repo/models/shapes" --shard-count 4 > "$work/status.txt" 2>&1
}
wait_for() {  # wait_for SECONDS WHAT COMMAND...
    local limit=$1 what=$2; shift 2
    for _ in $(seq 1 $((limit * 5))); do "$@" && return 0; sleep 0.2; done
    fail "timed out after ${limit}s waiting for $what"
}
wrote_one() { grep -q "wrote .*image-" "$work/logs/task-$1.log" 2>/dev/null; }
pending() { [ "$(squeue -h -j "${job}_$1" -o %T 2>/dev/null)" = PENDING ]; }
ended() {  # ended N: the N tasks of array job $job have all ended (squeue keeps them: MinJobAge)
    local states
    states="$(squeue -h -j "$job" -t all -o '%T' 2>/dev/null)" || return 1
    [ "$(echo "$states" | grep -cE '^(COMPLETED|CANCELLED|FAILED|TIMEOUT|NODE_FAIL|PREEMPTED|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)$')" -eq "$1" ] \
        && [ "$(echo "$states" | wc -l)" -eq "$1" ]
}

job="$(submit 0-3)"
say "submitted array job $job (4 tasks, 20 images)"
wait_for 120 "task 1's first image" wrote_one 1
scancel "${job}_1"
say "cancelled ${job}_1 after its first image"
wait_for 120 "task 2's first image" wrote_one 2
scontrol requeue "${job}_2"
# Slurm holds a requeued batch job back for its credential lifetime (AuthInfo cred_expire,
# 120 s by default, 10 s in tools/slurm/cluster.sh): until then slurmd still refuses the
# revoked credential, and a forced early start (StartTime=now) dies "Job credential revoked".
wait_for 60 "task 2 to be pending again" pending 2
say "requeued ${job}_2 after its first image"
wait_for 300 "the array to finish" ended 4
say "the array has finished"

if status; then fail "the batch is complete although task 1 was cancelled:"$'\n'"$(cat "$work/status.txt")"; fi
cat "$work/status.txt"
missing="$(sed -n 's/^resubmit: --array=\([0-9,]*\).*/\1/p' "$work/status.txt")"
[ "$missing" = "1" ] || fail "--status should list task 1 alone to resubmit, not '$missing'"
grep -q "^task 1/4: interrupted, " "$work/status.txt" || fail "task 1 is not reported interrupted"
job="$(submit "$missing")"
say "resubmitted task $missing as $job"
wait_for 300 "the resubmitted task" ended 1
status || fail "the batch is not complete after the resubmission:"$'\n'"$(cat "$work/status.txt")"
cat "$work/status.txt"

# 20 images, each exactly once: written by one task once (the logs), never again.
for name in circles squares; do
    images=("$outbox/$name"/image-*.png)
    [ ${#images[@]} -eq 10 ] || fail "$name has ${#images[@]} images, not 10"
    for i in $(seq -f '%03g' 1 10); do
        png="$outbox/$name/image-$i.png"
        [ -f "$png" ] || fail "$name/image-$i.png is missing"
        writes="$(cat "$work"/logs/task-*.log | grep -c "wrote $name/image-$i.png" || true)"
        [ "$writes" -eq 1 ] || fail "$name/image-$i.png was written $writes times"
        # A valid PNG: the signature, an IHDR of 64x64, and the IEND chunk at the end.
        [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$png: no PNG signature"
        [ "$(head -c 24 "$png" | tail -c 12 | od -An -tx1 | tr -d ' \n')" = "4948445200000040""00000040" ] || fail "$png: IHDR is not 64x64"
        [ "$(tail -c 12 "$png" | od -An -tx1 | tr -d ' \n')" = "0000000049454e44ae426082" ] || fail "$png: no IEND at the end"
    done
    result="$outbox/$name/result.json"
    jq -e '.status == "done" and .shards == 4 and (.images | length) == 10
        and ([.images[].file] == ([range(1; 11)] | map("image-" + ("00" + tostring)[-3:] + ".png")))
        and ([.images[].seed] == [range(0; 10) as $i | $i + .seed])
        and ([.images[].seconds | numbers] | length) == 10' "$result" >/dev/null \
        || fail "$name/result.json is not complete: $(cat "$result")"
done
[ "$(jq '.seed' "$outbox/circles/result.json")" = 100 ] || fail "circles lost its seed"
leftovers="$(find "$outbox" -name '.*.tmp-*' | wc -l)"
[ "$leftovers" -eq 0 ] || fail "$leftovers temporary files left in the outbox"
# The cancelled and the requeued task ran twice; the others once.
for k in 0 1 2 3; do
    attempts="$(jq '.attempts' "$outbox/circles/shards/$k-of-4.json")"
    expected=1; [ $k -eq 1 ] || [ $k -eq 2 ] && expected=2
    [ "$attempts" -eq "$expected" ] || fail "task $k ran $attempts times on circles, expected $expected"
done
say "passed: 20 images exactly once over 4 array tasks," \
     "task 1 cancelled and resubmitted, task 2 requeued; valid PNGs; complete result.json files"
