#!/usr/bin/env python3
"""Generates held-out adherence images with diffusers from a model folder, for the
Swift evaluator (`diffusion-bench adherence --images DIR`).

    python3 tools/train/generate_eval.py --model models/shapes --out /tmp/eval --count 200 \
        --sampler euler_a --eta 1.75 --guidance 1.5   # the card's settings (defaults: Euler, guidance 5)

Writes DIR/captions.json ([{"file", "caption", "seed"}]) and one binary PPM (P6) per
image. Captions are the training generator's (shapes_data.py) with held-out seeds
HELDOUT_SEED_BASE + i, the same ones the benchmark draws in Swift. Image i uses the
torch CPU generator seeded with i.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_data  # noqa: E402
from model_folder import job_samplers, use_sampler  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="models/shapes")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--guidance-rescale", type=float, default=0.0,
                   help="diffusers' guidance_rescale (Lin et al. 2024, sec. 3.4; 0 = off, as diffusiond)")
    p.add_argument("--eta", type=float, default=None,
                   help="euler_a's eta (job field eta; tools/fixtures/ancestral_restart.py)")
    p.add_argument("--restart", default=None,
                   help="N,K,MIN,MAX: euler_a's restart segment (job field restart: [N, K, MIN, MAX])")
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--sampler", choices=sorted(job_samplers()), default="euler",
                   help="the job sampler name: euler (the folder's scheduler, diffusion-bench's default) "
                        "or euler_a (EulerAncestralDiscreteScheduler, the built-in model's card setting)")
    args = p.parse_args()
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(args.model, safety_checker=None, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    use_sampler(pipe, args.sampler)
    if args.eta is not None or args.restart:
        if args.sampler != "euler_a":
            p.error("--eta and --restart go with --sampler euler_a")
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
        from ancestral_restart import EulerAncestralRestartScheduler
        pipe.scheduler = EulerAncestralRestartScheduler.from_config(pipe.scheduler.config)
        if args.eta is not None:
            pipe.scheduler.eta = args.eta
        if args.restart:
            n, k, low, high = args.restart.split(",")
            pipe.scheduler.restart = (int(n), int(k), float(low), float(high))
    os.makedirs(args.out, exist_ok=True)
    records = []
    for start in range(0, args.count, args.batch):
        n = min(args.batch, args.count - start)
        caps = [shapes_data.sample_scene(shapes_data.HELDOUT_SEED_BASE + i)["caption"] for i in range(start, start + n)]
        gens = [torch.Generator("cpu").manual_seed(i) for i in range(start, start + n)]
        imgs = pipe(caps, height=64, width=64, num_inference_steps=args.steps, guidance_scale=args.guidance,
                    guidance_rescale=args.guidance_rescale,
                    generator=gens, output_type="np").images
        for k, img in enumerate(imgs):
            i = start + k
            name = f"image-{i:03d}.ppm"
            data = (img * 255).round().clip(0, 255).astype("uint8")
            with open(os.path.join(args.out, name), "wb") as f:
                f.write(b"P6\n64 64\n255\n" + data.tobytes())
            records.append({"file": name, "caption": caps[k], "seed": i})
        # Rewritten after every batch, so a stopped run still leaves a usable folder.
        with open(os.path.join(args.out, "captions.json"), "w") as f:
            json.dump(records, f, indent=1)
        print(f"{start + n}/{args.count}", flush=True)


if __name__ == "__main__":
    main()
