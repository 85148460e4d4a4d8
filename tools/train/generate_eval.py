#!/usr/bin/env python3
"""Generates held-out adherence images with diffusers from a model folder, for the
Swift evaluator (`diffusion-bench adherence --images DIR`).

    python3 tools/train/generate_eval.py --model models/shapes --out /tmp/eval --count 200 \
        --sampler euler_a --eta 1.75 --guidance 1.5   # the card's settings (defaults: Euler, guidance 5)

Writes DIR/captions.json ([{"file", "caption", "seed"}]) and one binary PPM (P6) per
image. Captions are the training generator's (shapes_data.py) with held-out seeds
HELDOUT_SEED_BASE + i for i in --first ..< --first + --count, the same ones
`diffusion-bench adherence --first` draws in Swift (--training-captions: the training
scenes TRAIN_SEED_BASE + i instead). Image i uses the torch CPU generator seeded with i.
--autoguide CARRY guides the folder's UNet by the EMA UNet of a carry (tools/train/carry.py)
of the same run (autoguidance; `AutoguidedUNet`).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_data  # noqa: E402
from model_folder import job_samplers, use_sampler  # noqa: E402


# train.py's default --pool: the training scenes are TRAIN_SEED_BASE + 0 ..< TRAINING_POOL.
TRAINING_POOL = 40000


class AutoguidedUNet(torch.nn.Module):
    """The pipeline's UNet with autoguidance (Karras et al. 2024, "Guiding a diffusion model
    with a bad version of itself", eq. 1 with the weaker model's conditional prediction): the
    conditional half of each batch becomes D_bad + w·(D − D_bad), where D_bad is the EMA UNet of
    a carry of the same architecture; the pipeline's classifier-free guidance then applies."""

    def __init__(self, good, carry, weight, batched_cfg, text_encoder):
        from diffusers import UNet2DConditionModel
        from safetensors.torch import load_file
        super().__init__()
        self.good, self.weight, self.batched_cfg = good, weight, batched_cfg
        self.config, self.dtype, self.device, self.add_embedding = good.config, good.dtype, good.device, None
        self.bad = UNet2DConditionModel.from_config(good.config)
        tensors = load_file(carry)
        # The weaker UNet reads the folder's text states, so it must have been trained on them:
        # the carry's fp32 text encoder, rounded to fp16 as the folder's export was, equals it.
        for k, v in text_encoder.state_dict().items():
            theirs = tensors.get(f"te.{k}")
            if theirs is None or not torch.equal(theirs.half().to(v.dtype), v):
                raise SystemExit(f"--autoguide: {carry}'s text encoder differs from the folder's at {k}: "
                                 "it is not a carry of the run that made this folder")
        prefix = "ema_unet."
        self.bad.load_state_dict({k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)})
        self.bad.eval()

    def forward(self, x, t, encoder_hidden_states=None, timestep_cond=None, cross_attention_kwargs=None,
                added_cond_kwargs=None, **kwargs):
        # SD 1.x folders: no timestep conditioning, attention processor arguments or added embeddings.
        assert timestep_cond is None and cross_attention_kwargs is None and not added_cond_kwargs
        out = self.good(x, t, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0].clone()
        n = x.shape[0]
        cond = slice(n // 2, n) if self.batched_cfg else slice(0, n)
        bad = self.bad(x[cond], t, encoder_hidden_states=encoder_hidden_states[cond], return_dict=False)[0]
        out[cond] = bad + self.weight * (out[cond] - bad)
        return (out,)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="models/shapes")
    p.add_argument("--out", required=True)
    p.add_argument("--first", type=int, default=0,
                   help="first caption index (diffusion-bench adherence --first): 1000 for the choosing set")
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
    p.add_argument("--training-captions", action="store_true",
                   help="captions of training scenes (TRAIN_SEED_BASE + i) instead of held-out ones: "
                        "does the model draw what it was trained on better than new captions?")
    p.add_argument("--autoguide", default=None,
                   help="a carry (tools/train/carry.py's carry.safetensors) whose EMA UNet guides this "
                        "folder's: autoguidance, Karras et al. 2024, D_bad + w·(D − D_bad) on the "
                        "conditional prediction, before classifier-free guidance")
    p.add_argument("--autoguide-weight", type=float, default=2.0)
    p.add_argument("--sampler", choices=sorted(job_samplers()), default="euler",
                   help="the job sampler name: euler (the folder's scheduler, diffusion-bench's default) "
                        "or euler_a (EulerAncestralDiscreteScheduler, the built-in model's card setting)")
    args = p.parse_args()
    if args.first < 0 or args.count < 1:
        p.error("--first must be at least 0 and --count at least 1")
    if args.training_captions and args.first + args.count > TRAINING_POOL:
        p.error(f"--training-captions: train.py's pool has {TRAINING_POOL} scenes (indices 0..{TRAINING_POOL - 1})")
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
    if args.autoguide:
        pipe.unet = AutoguidedUNet(pipe.unet, args.autoguide, args.autoguide_weight, args.guidance > 1,
                                   pipe.text_encoder)
    seed_base = shapes_data.TRAIN_SEED_BASE if args.training_captions else shapes_data.HELDOUT_SEED_BASE
    os.makedirs(args.out, exist_ok=True)
    records = []
    end = args.first + args.count
    for start in range(args.first, end, args.batch):
        n = min(args.batch, end - start)
        caps = [shapes_data.sample_scene(seed_base + i)["caption"] for i in range(start, start + n)]
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
        print(f"{start + n - args.first}/{args.count}", flush=True)


if __name__ == "__main__":
    main()
