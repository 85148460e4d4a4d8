#!/usr/bin/env bash
# Puts a finished train.py export into models/shapes, fits its latent → RGB preview map
# (fit_latent_rgb.py) and regenerates what is made from that
# folder (issue 18's part 3; run from the repository root by a developer, never by CI):
#
#     bash tools/train/install_model.sh OUT WORK
#
# OUT is train.py's --out (a diffusers pipeline folder), WORK its --work: its train.log must
# say the run finished ("# done"; a run stopped at --max-minutes exports a snapshot to OUT
# too), and samples.png and samples.txt come from there. The model card (models/shapes/README.md) and
# the measured bounds in Tests/EvaluationTests/BuiltInModelAdherenceTests.swift are not
# touched: measure first (tools/train/choose_guidance.sh), then write them.
set -euo pipefail
. "$(dirname "$0")/finished_export.sh"
finished_export "$@" "model_index.json" train.py
for part in scheduler text_encoder tokenizer unet vae; do
    rm -rf "models/shapes/$part"
done
cp -R "$out/." models/shapes/
cp "$work/samples.png" "$work/samples.txt" models/shapes/
python3 tools/train/fit_latent_rgb.py models/shapes
echo "weights: $(du -cb models/shapes/*/*.safetensors | tail -1 | cut -f1) bytes (issue 18: at most 25 MB)"
python3 tools/fixtures/shapes_refs.py
python3 tools/fixtures/vae_reconstruct_refs.py
git status --short models/shapes Tests/Fixtures/shapes Tests/Fixtures/vae-reconstruct
