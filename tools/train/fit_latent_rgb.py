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
The file's keys are ComfyUI's names. Prints the fit's mean absolute error per cell (0-255) on
the training scenes, and on --holdout held-out scenes (seeds 2^40 + i) that of the fitted map,
of Stable Diffusion's published map (ComfyUI's SD15 factors, no bias) and of flat grey.
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


# ComfyUI's latent_formats.SD15.latent_rgb_factors (LatentRGBMap.sd in the engine).
SD15_FACTORS = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
                [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]


def cells_of(vae, factor, scaling, seeds):
    """The pipeline latents ([M, C], VAE posterior mean x scaling_factor) of the scenes `seeds`,
    one row per latent cell, and the renders averaged over each cell ([M, 3], in [-1, 1])."""
    seeds = list(seeds)
    latents, targets = [], []
    with torch.no_grad():
        for start in range(0, len(seeds), 100):
            images = np.stack([shapes_data.render(shapes_data.sample_scene(s)) for s in seeds[start:start + 100]])
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
            z = vae.encode(x).latent_dist.mean * scaling                     # [N, C, h, w]
            cells = torch.nn.functional.avg_pool2d(x, factor)                # [N, 3, h, w]
            latents.append(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]))
            targets.append(cells.permute(0, 2, 3, 1).reshape(-1, 3))
    return torch.cat(latents).double(), torch.cat(targets).double()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="diffusers model folder (its vae/ gets latent_rgb.json)")
    p.add_argument("--count", type=int, default=2000, help="training scenes to fit on")
    p.add_argument("--holdout", type=int, default=300, help="held-out scenes to score the map on")
    args = p.parse_args()
    vae_dir = os.path.join(args.model, "vae")
    vae = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32).eval()
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    scaling = vae.config.scaling_factor
    z, y = cells_of(vae, factor, scaling, range(args.count))
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
    if args.holdout and z.shape[1] == len(SD15_FACTORS):
        zh, yh = cells_of(vae, factor, scaling, [shapes_data.HELDOUT_SEED_BASE + i for i in range(args.holdout)])
        fitted = torch.tensor(out["latent_rgb_factors"], dtype=zh.dtype)
        bias = torch.tensor(out["latent_rgb_factors_bias"], dtype=zh.dtype)
        sd = torch.tensor(SD15_FACTORS, dtype=zh.dtype)
        def mae(rgb):
            return ((rgb.clamp(-1, 1) - yh).abs().mean() * 127.5).item()
        print(f"{args.holdout} held-out scenes, mean absolute error per cell: fitted map {mae(zh @ fitted + bias):.1f}, "
              f"SD's map {mae(zh @ sd):.1f}, flat grey {mae(torch.zeros_like(yh)):.1f} / 255")


if __name__ == "__main__":
    main()
