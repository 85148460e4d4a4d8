#!/usr/bin/env python3
"""Encode -> decode of held-out renders through a VAE: Python reconstruction figures, and
a folder the Swift evaluator scores (`diffusion-bench adherence --images DIR`).

    python3 tools/train/vae_roundtrip.py --vae tools/train/checkpoints/vae-v2 --out /tmp/rt --count 200

--vae is an AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors) or a
pipeline folder with a vae/ subfolder. Scenes are the held-out ones (HELDOUT_SEED_BASE + i,
the seeds `diffusion-bench adherence` draws), encoded to the posterior mean and decoded.
Writes DIR/image-NNN.ppm and DIR/captions.json ([{"file", "caption", "seed"}]) and prints
one JSON line of figures (see roundtrip_figures).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_data  # noqa: E402

PALETTE = np.array([c for _, c in shapes_data.COLORS], np.float32)  # [8, 3]


def label_map(img):
    """Index of the nearest palette colour (RGB distance) of every pixel of an (H, W, 3) image."""
    d = ((img[:, :, None, :].astype(np.float32) - PALETTE[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


def edge_band(labels):
    """Pixels whose 4-neighbourhood holds another label in the true render: the 1-px band
    on both sides of every outline, where aliasing makes a half-covered pixel ambiguous."""
    band = np.zeros(labels.shape, bool)
    band[1:] |= labels[1:] != labels[:-1]
    band[:-1] |= labels[1:] != labels[:-1]
    band[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    band[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    return band


def roundtrip_figures(truth, rec):
    """Figures of reconstructions `rec` against renders `truth` (both [N, H, W, 3] uint8):
    mae: mean absolute error (0-255) over all pixels; edge_mae: the same on the outline band;
    off_label: pixels per image whose nearest palette colour differs from the render's,
    outside the band (specks, halos, bleeding: a person sees these) and inside it;
    object_color_err: mean over objects of the distance (0-255 RGB) between the median
    colour of the object's interior and its palette colour; clean: share of images with no
    off-label pixel outside the band and at most 8 inside it."""
    t, r = truth.astype(np.float32), rec.astype(np.float32)
    err = np.abs(t - r).mean(-1)
    mae, edge_err, off_out, off_in, colour_errs, clean = err.mean(), [], [], [], [], 0
    for i in range(len(truth)):
        lt, lr = label_map(truth[i]), label_map(rec[i])
        band = edge_band(lt)
        edge_err.append(err[i][band].mean())
        wrong = lt != lr
        o, b = int((wrong & ~band).sum()), int((wrong & band).sum())
        off_out.append(o), off_in.append(b)
        clean += o == 0 and b <= 8
        for k in np.unique(lt):
            inner = (lt == k) & ~band
            if inner.any():
                med = np.median(r[i][inner], axis=0)
                colour_errs.append(float(np.sqrt(((med - PALETTE[k]) ** 2).sum())))
    return dict(mae=round(float(mae), 3), edge_mae=round(float(np.mean(edge_err)), 3),
                off_label_outside=round(float(np.mean(off_out)), 3), off_label_band=round(float(np.mean(off_in)), 3),
                object_color_err=round(float(np.mean(colour_errs)), 3), clean=round(clean / len(truth), 4))


def heldout_renders(count, size_px=64):
    scenes = [shapes_data.sample_scene(shapes_data.HELDOUT_SEED_BASE + i) for i in range(count)]
    return scenes, np.stack([shapes_data.render(s, size_px) for s in scenes])


def roundtrip(vae, images, batch=100):
    """uint8 [N, H, W, 3] -> encode (posterior mean) -> decode -> uint8, as diffusers' image
    processor rounds (x / 2 + 0.5, clamp, * 255, round)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            dtype = next(vae.parameters()).dtype
            z = vae.encode(x.to(dtype)).latent_dist.mean
            y = vae.decode(z).sample.float()
            y = ((y / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            out.append(y.permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", required=True)
    p.add_argument("--out", default=None, help="folder for PPMs + captions.json (none: figures only)")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers import AutoencoderKL
    folder = args.vae
    if os.path.isdir(os.path.join(folder, "vae")):
        folder = os.path.join(folder, "vae")
    vae = AutoencoderKL.from_pretrained(folder, torch_dtype=torch.float32).eval()
    scenes, truth = heldout_renders(args.count, vae.config.sample_size)
    rec = roundtrip(vae, truth)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        records = []
        for i, img in enumerate(rec):
            name = f"image-{i:03d}.ppm"
            with open(os.path.join(args.out, name), "wb") as f:
                f.write(b"P6\n%d %d\n255\n" % (img.shape[1], img.shape[0]) + img.tobytes())
            records.append({"file": name, "caption": scenes[i]["caption"], "seed": i})
        with open(os.path.join(args.out, "captions.json"), "w") as f:
            json.dump(records, f, indent=1)
    print(json.dumps(dict(vae=args.vae, count=args.count, **roundtrip_figures(truth, rec))), flush=True)


if __name__ == "__main__":
    main()
