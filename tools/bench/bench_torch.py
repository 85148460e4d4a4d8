#!/usr/bin/env python3
"""PyTorch side of `diffusion-bench`: the same measurements, for side-by-side comparison.

    python3 tools/bench/bench_torch.py unet --shapes sd15 --size 512 --batch 2 [--json]
    python3 tools/bench/bench_torch.py vae --size 512        # AutoencoderKL.decode
    python3 tools/bench/bench_torch.py text                  # CLIPTextModel, 77 tokens

Random weights of the real SD 1.5 shapes (configs in sd15_configs.py; nothing downloaded),
float32, torch.set_num_threads(2) unless --threads says otherwise, inference_mode.
Prints one JSON line:
  seconds_per_eval  mean wall time of the --iters timed evaluations, after --warmup ones
  seconds_min       the fastest of them
  gflops            achieved: flops / seconds_per_eval / 1e9
  flops             per evaluation, counted once with torch.utils.flop_counter.FlopCounterMode
                    (matmul, conv, attention; a multiply-add counts as 2 FLOPs; norms,
                    activations and other element-wise work are not counted)
  peak_rss_mb       getrusage(RUSAGE_SELF).ru_maxrss at the end (weights + activations +
                    the interpreter), in MiB
Inputs: unet — latents (batch, 4, size/8, size/8), timestep 500, encoder states
(batch, 77, 768); vae — latents (batch, 4, size/8, size/8) → image (batch, 3, size, size);
text — token ids (batch, 77). Defaults: batch 2 for unet (cond + uncond), 1 otherwise.
Tested with torch 2.15.0, diffusers 0.42.1, transformers 5.24.0 (CPU).
"""

import argparse
import json
import os
import platform
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import sd15_configs  # noqa: E402


def build(component, size, batch):
    """Returns (module, forward closure) with inputs made once."""
    g = torch.Generator().manual_seed(0)
    if component == "unet":
        from diffusers import UNet2DConditionModel
        model = UNet2DConditionModel(**sd15_configs.UNET_SD15).eval()
        lat = torch.randn(batch, 4, size // 8, size // 8, generator=g)
        ctx = torch.randn(batch, 77, 768, generator=g)
        t = torch.tensor(500.0)
        return model, lambda: model(lat, t, encoder_hidden_states=ctx).sample
    if component == "vae":
        from diffusers import AutoencoderKL
        model = AutoencoderKL(**sd15_configs.VAE_SD15).eval()
        lat = torch.randn(batch, 4, size // 8, size // 8, generator=g)
        return model, lambda: model.decode(lat).sample
    if component == "text":
        from transformers import CLIPTextConfig, CLIPTextModel
        model = CLIPTextModel(CLIPTextConfig(**sd15_configs.TEXT_SD15)).eval()
        ids = torch.randint(0, 49406, (batch, 77), generator=g)
        return model, lambda: model(ids).last_hidden_state
    raise SystemExit(f"unknown component {component!r}: unet, vae, text")


def main():
    ap = argparse.ArgumentParser(description="PyTorch reference timings for diffusion-bench")
    ap.add_argument("component", choices=["unet", "vae", "text"])
    ap.add_argument("--shapes", default="sd15", choices=["sd15"])
    ap.add_argument("--size", type=int, default=512, help="image side in pixels (multiple of 8)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="accepted for parity; output is JSON")
    args = ap.parse_args()
    if args.size % 8 != 0:
        raise SystemExit("--size must be a multiple of 8")
    batch = args.batch or (2 if args.component == "unet" else 1)
    torch.set_num_threads(args.threads)

    with torch.inference_mode():
        model, forward = build(args.component, args.size, batch)
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        for _ in range(args.warmup):
            forward()
        times = []
        for _ in range(args.iters):
            start = time.perf_counter()
            forward()
            times.append(time.perf_counter() - start)
        counter = FlopCounterMode(display=False)
        with counter:
            forward()
        flops = counter.get_total_flops()

    seconds = sum(times) / len(times)
    print(json.dumps({
        "engine": "pytorch", "bench": args.component, "shapes": args.shapes,
        "size": None if args.component == "text" else args.size, "batch": batch, "threads": args.threads, "dtype": "float32",
        "seconds_per_eval": round(seconds, 4), "seconds_min": round(min(times), 4),
        "times": [round(t, 4) for t in times],
        "flops": flops, "gflops": round(flops / seconds / 1e9, 2),
        "weights_mb": round(weight_bytes / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__, "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
