#!/usr/bin/env bash
# Issue 18's choice of the built-in model's shipped guidance: for each scale, the strict
# adherence of 200 held-out captions and the seed variety of 20 captions x 8 seeds, both
# through diffusiond's engine (diffusion-bench adherence / variety, 25 steps of SAMPLER, default
# euler_a, the card's), one
# line per scale. Issue 18 wants colour + shape >= 95%, + position >= 90%, and both
# variety ratios >= 0.5 at the shipped settings.
#
#     swift build -c release --product diffusion-bench
#     bash tools/train/choose_guidance.sh [MODEL [SCALE...]]   # default models/shapes, 1.25 1.5 2 2.5 3
#
# COUNT (default 200) sets the adherence captions, CAPTIONS (default 20) the variety's;
# THREADS (default: all cores) the engine's. Choose on other captions than the card reports:
# FIRST=1000 (adherence --first), then report the chosen scale on the default 0…199.
set -euo pipefail
bench=${BENCH:-.build/release/diffusion-bench}
model=${1:-models/shapes}
if [ $# -gt 1 ]; then
    shift
    scales=("$@")
else
    scales=(1.25 1.5 2 2.5 3)
fi
threads=()
if [ -n "${THREADS:-}" ]; then
    threads=(--threads "$THREADS")
fi
echo "guidance  colour+shape  +position  size ratio  centre ratio  (adherence s, variety s)"
for g in "${scales[@]}"; do
    a=$("$bench" adherence --model "$model" --count "${COUNT:-200}" --first "${FIRST:-0}" --guidance "$g" \
        --sampler "${SAMPLER:-euler_a}" "${threads[@]}")
    v=$("$bench" variety --model "$model" --first "${FIRST:-0}" --guidance "$g" --sampler "${SAMPLER:-euler_a}" \
        --captions "${CAPTIONS:-20}" "${threads[@]}")
    python3 - "$g" "$a" "$v" <<'PY'
import json, sys
g, a, v = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{g:>8}  {100 * a['colors_and_shapes']:>11.1f}%  {100 * a['colors_shapes_and_positions']:>8.1f}%  "
      f"{v['size_ratio']:>10.2f}  {v['centre_ratio']:>12.2f}  ({a['seconds']:.0f}, {v['seconds']:.0f})")
PY
done
