#!/usr/bin/env python3
"""Fits the linear latent -> RGB preview map of a shapes model's VAE (issue 16) and writes it
beside the VAE's config as `vae/latent_rgb.json`, which diffusiond reads for its cheapest step
previews (`LatentRGBMap`, Sources/Pipeline/LatentRGBMapFile.swift):

    python3 tools/train/fit_latent_rgb.py models/shapes          # a few seconds on 2 cores

The map is `rgb = factors^T . latent + bias`, rgb in [-1, 1], on the pipeline's latents (the
VAE's posterior mean times `scaling_factor`, what the UNet denoises), one RGB value per latent
cell; it is fitted by least squares to the renders averaged over each cell's
factor x factor pixels, on training scenes 0..N-1 (tools/train/shapes_data.py), as ComfyUI's
`latent_rgb_factors` and `latent_rgb_factors_bias` are fitted for Stable Diffusion's latents.
The file's keys are ComfyUI's names. Prints the fit's mean absolute error per cell (0-255).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from diffusers import AutoencoderKL

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_data  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="diffusers model folder (its vae/ gets latent_rgb.json)")
    p.add_argument("--count", type=int, default=2000, help="training scenes to fit on")
    args = p.parse_args()
    vae_dir = os.path.join(args.model, "vae")
    vae = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32).eval()
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    scaling = vae.config.scaling_factor
    latents, targets = [], []
    with torch.no_grad():
        for start in range(0, args.count, 100):
            images = np.stack([shapes_data.render(shapes_data.sample_scene(s))
                               for s in range(start, min(args.count, start + 100))])
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
            z = vae.encode(x).latent_dist.mean * scaling                     # [N, C, h, w]
            cells = torch.nn.functional.avg_pool2d(x, factor)                # [N, 3, h, w]
            latents.append(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]))
            targets.append(cells.permute(0, 2, 3, 1).reshape(-1, 3))
    z = torch.cat(latents).double()
    y = torch.cat(targets).double()
    design = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution                        # [C + 1, 3]
    error = ((design @ solution - y).abs().mean() * 127.5).item()
    out = {
        "latent_rgb_factors": [[round(v, 6) for v in row] for row in solution[:-1].tolist()],
        "latent_rgb_factors_bias": [round(v, 6) for v in solution[-1].tolist()],
    }
    path = os.path.join(vae_dir, "latent_rgb.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"{path}: {z.shape[1]} channels, factor {factor}, {args.count} scenes, "
          f"mean absolute error per cell {error:.2f} / 255")


if __name__ == "__main__":
    main()
