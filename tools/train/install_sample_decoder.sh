#!/usr/bin/env bash
# Puts a finished sample_decoder.py decoder into models/shapes/vae and regenerates what is
# made from that folder: the sample grid and the engine-vs-diffusers fixtures (issue 18; run
# from the repository root by a developer, never by CI):
#
#     bash tools/train/install_sample_decoder.sh OUT WORK
#
# OUT is sample_decoder.py's --out, WORK its --work (its train.log must say "# done"). The
# encoder half of OUT must be models/shapes/vae's bit for bit (the latent space the UNet was
# trained in); config.json and latent_rgb.json stay (the preview map reads only the
# encoder's latents). The model card and the measured test bounds are not touched: measure
# first (tools/train/choose_guidance.sh, diffusion-bench adherence --reconstruct), then write.
set -euo pipefail
weights=diffusion_pytorch_model.safetensors
. "$(dirname "$0")/finished_export.sh"
finished_export "$@" "$weights" sample_decoder.py
python3 - "$out/$weights" "models/shapes/vae/$weights" <<'PY'
import sys
from safetensors.torch import load_file
new, old = load_file(sys.argv[1]), load_file(sys.argv[2])
if set(new) != set(old):
    sys.exit("another architecture: the tensor names differ")
enc = [k for k in old if k.startswith(("encoder.", "quant_conv."))]
bad = [k for k in enc if not (new[k].dtype == old[k].dtype and new[k].equal(old[k]))]
if bad:
    sys.exit(f"the encoder differs from models/shapes/vae's ({bad[:3]} ...): the UNet's latent space would change")
dec = [k for k in old if k not in enc]
changed = sum(not new[k].equal(old[k]) for k in dec)
print(f"encoder: {len(enc)} tensors identical; decoder: {changed} of {len(dec)} tensors changed")
PY
cp "$out/$weights" "models/shapes/vae/$weights"
python3 - <<'PY'
import argparse, os, shutil, sys, tempfile
sys.path.insert(0, "tools/train")
import model_folder
work = tempfile.mkdtemp()
model_folder.sample_grid(argparse.Namespace(out="models/shapes", work=work, samples=16, seed=0), "cpu")
for name in ("samples.png", "samples.txt"):
    shutil.copy(os.path.join(work, name), os.path.join("models/shapes", name))
PY
python3 tools/fixtures/shapes_refs.py
python3 tools/fixtures/vae_reconstruct_refs.py
git status --short models/shapes Tests/Fixtures/shapes Tests/Fixtures/vae-reconstruct
