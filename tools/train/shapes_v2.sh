#!/usr/bin/env bash
# The built-in model's second edition (issue 18) from scratch, as the parts were run:
#
#     bash tools/train/shapes_v2.sh WORK OUT        # rerun the same command to resume
#
# Each part is one train.py run with a work folder of its own (WORK/<part>/run, export in
# WORK/<part>/out); a part whose run finished is skipped, and one that stopped at
# --max-minutes (PART_MINUTES, default 170, so every invocation stays under 3 hours on 2
# cores) continues from its checkpoint when the script runs again. THREADS (default 2) sets
# torch's CPU threads; train.py takes a GPU by itself when one is there.
#
# Parts (2 cores, measured; see tools/train/checkpoints/vae-f2/README.md and
# models/shapes/README.md):
#   vae       3,000 joint VAE steps, factor 2, 4 latent channels    77 min
#   decoder1  1,200 decoder steps against the frozen encoder         54 min
#   decoder2  2,800 more                                             71 min
#   decoder3  1,500 more, with the hard-pixel term (weight 30)       47 min
#   model     text encoder + UNet against that VAE (16,000 steps)   ≈ 230 min on a 2-core Zen 4
#             (two invocations), ≈ 15 h on a 2-core Zen 1 (six); run as 10,000 steps up to
#             UNet step 4,000, then lengthened to 16,000 (models/shapes/README.md)
#   samples   sample_decoder.py: 10,000 of the model's own latents (the last 5,000 with
#             DeepCache), then 1,500 decoder steps on them and the encoder's latents;
#             drawn with Euler, as the installed decoder's were (jobs now ship with
#             euler_a; a decoder tuned on pairs drawn with it did no better and is not
#             installed: models/shapes/README.md, Training)
#                                                      34 + 21 + 12 + 31 min
# then OUT gets the model folder with the samples part's decoder. decoder3 is the committed
# tools/train/checkpoints/vae-f2. Between parts the VAE goes through its fp16 export
# (--vae-from, --model), as it did when they ran.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 WORK OUT" >&2
    exit 64
fi
work=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)

# finished DIR: the part's train.py run ended ("# done" in its log). An export alone does not
# say so: a UNet run stopped at --max-minutes also exports a snapshot of its EMA weights.
finished() {
    grep -q '^# done' "$1/run/train.log" 2>/dev/null
}

# part NAME ARGS...: runs train.py for part NAME unless its run finished; exits 75
# (EX_TEMPFAIL: rerun to continue) when the run stopped at --max-minutes.
part() {
    script_part train.py "$@"
}

# script_part SCRIPT NAME ARGS...: part, with another script of train.py's options (--work,
# --out, --threads, --checkpoint-every, --max-minutes; its log says "# done" when finished).
script_part() {
    local script=$1 name=$2
    shift 2
    local dir=$work/$name
    if finished "$dir"; then
        echo "part $name: done ($dir/out)"
        return 0
    fi
    echo "part $name: $script $*"
    python3 "$here/$script" --work "$dir/run" --out "$dir/out" --threads "${THREADS:-2}" \
        --checkpoint-every 100 --max-minutes "${PART_MINUTES:-170}" "$@"
    if ! finished "$dir"; then
        echo "part $name stopped at --max-minutes; run the same command again to continue" >&2
        exit 75
    fi
}

part vae --vae-only --vae-blocks 32,64 --vae-layers 1 --vae-latent-channels 4 --vae-edge-weight 4 \
    --vae-steps 3000 --vae-lr 1e-3 --vae-batch 16 --decoder-steps 0 --pool 10000
part decoder1 --vae-only --vae-from "$work/vae/out" --vae-edge-weight 4 \
    --decoder-steps 1200 --decoder-lr 3e-4 --decoder-batch 32 --pool 10000
part decoder2 --vae-only --vae-from "$work/decoder1/out" --vae-edge-weight 4 \
    --decoder-steps 2800 --decoder-lr 3e-4 --decoder-batch 32 --pool 10000
part decoder3 --vae-only --vae-from "$work/decoder2/out" --vae-edge-weight 4 --decoder-hard-weight 30 \
    --decoder-steps 1500 --decoder-lr 3e-4 --decoder-batch 32 --pool 10000
part model --vae-from "$work/decoder3/out" --decoder-steps 0 --unet-steps 16000
script_part sample_decoder.py samples --model "$work/model/out" --pairs 10000 --cached-pairs 5000 --steps 1500 --sampler euler
mkdir -p "$out"
cp -R "$work/model/out/." "$out/"
cp "$work/samples/out/diffusion_pytorch_model.safetensors" "$out/vae/"
echo "model written to $out"
