#!/usr/bin/env python3
"""Carries a train.py run that stopped in its UNet phase from one machine to another, in a
form small enough to commit (a full checkpoint.pt of the shapes model is ~110 MB; a carry is
~40 MB), so a part that one session could not finish continues in the next.

    python3 tools/train/carry.py pack WORK DEST      # WORK/checkpoint.pt -> DEST/carry.safetensors + carry.json
    python3 tools/train/carry.py unpack DEST WORK    # -> WORK/checkpoint.pt, then rerun train.py with --work WORK

What a carry keeps, and how exactly (checked at pack time; pack refuses otherwise):
  unet, ema_unet       fp16. fp16 rounding moves a weight by at most 2^-11 of itself, well
                       under one optimizer step at the learning rates train.py uses; the
                       export is fp16 anyway.
  opt exp_avg_sq       bf16 (Adam's second moment: 0.4% relative; it needs ~1,000 steps to
                       rebuild, so it is kept). exp_avg (the momentum, beta1 0.9) is dropped:
                       unpack restarts it at zero, which damps the next ~20 updates (Adam's bias
                       correction at step > 1,000 no longer scales it up).
  opt step, param_groups, the run's state   as they were.
  te (and ema_te)      fp32, exactly: it is frozen through the UNet phase (--text-steps > 0),
                       and pack checks ema_te equals it.
  vae                  fp16 when that is exact (a --vae-from VAE is an fp16 export, widened), else fp32.
  opt_vae              must hold no state (no VAE phase in this run), else pack refuses.
The tokenizer, renders and latents are rebuilt by train.py from the seed when it resumes (the
latents once per work folder: it keeps them in WORK/latents.pt).
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file


def fail(message):
    print(f"carry: {message}", file=sys.stderr)
    sys.exit(1)


def pack(work, dest):
    ck = torch.load(os.path.join(work, "checkpoint.pt"), map_location="cpu", weights_only=False)
    state = ck["state"]
    if state.get("phase") != "unet":
        fail(f"the checkpoint is in phase {state.get('phase')!r}; a carry is for a run stopped in its UNet phase")
    if ck["opt_vae"]["state"]:
        fail("opt_vae holds state (this run trained its VAE); carry only runs made with --vae-from")
    for k, v in ck["te"].items():
        if not torch.equal(ck["ema_te"][k], v):
            fail(f"ema_te.{k} differs from te.{k}: the text encoder was not frozen (--text-steps 0?)")
    tensors = {}
    vae_exact = all(torch.equal(v.half().float(), v) for v in ck["vae"].values() if v.dtype.is_floating_point)
    for k, v in ck["vae"].items():
        tensors[f"vae.{k}"] = v.half() if vae_exact and v.dtype.is_floating_point else v.contiguous()
    for k, v in ck["te"].items():
        tensors[f"te.{k}"] = v.contiguous()
    for name in ("unet", "ema_unet"):
        for k, v in ck[name].items():
            tensors[f"{name}.{k}"] = v.half() if v.dtype.is_floating_point else v.contiguous()
    steps = set()
    for i, s in ck["opt"]["state"].items():
        tensors[f"opt.exp_avg_sq.{i}"] = s["exp_avg_sq"].to(torch.bfloat16).contiguous()
        steps.add(float(s["step"]))
    if len(steps) != 1:
        fail(f"optimizer steps differ between parameters: {sorted(steps)}")
    meta = dict(state=state, opt_param_groups=ck["opt"]["param_groups"],
                opt_vae_param_groups=ck["opt_vae"]["param_groups"], opt_step=steps.pop(),
                opt_params_with_state=sorted(int(i) for i in ck["opt"]["state"]),
                vae_dtype="float16" if vae_exact else "float32", about=__doc__.split("\n\n")[0])
    os.makedirs(dest, exist_ok=True)
    save_file(tensors, os.path.join(dest, "carry.safetensors"))
    with open(os.path.join(dest, "carry.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    size = os.path.getsize(os.path.join(dest, "carry.safetensors"))
    print(f"carry: UNet step {state['step']} packed into {dest} ({size / 1e6:.1f} MB)")


def tuple_betas(group):
    """A param group as torch wrote it (JSON turned its betas tuple into a list)."""
    return {**group, "betas": tuple(group["betas"])} if "betas" in group else group


def unpack(dest, work):
    with open(os.path.join(dest, "carry.json")) as f:
        meta = json.load(f)
    tensors = load_file(os.path.join(dest, "carry.safetensors"))

    def part(prefix):
        n = len(prefix) + 1
        return {k[n:]: (v.float() if v.dtype.is_floating_point else v)
                for k, v in tensors.items() if k.startswith(prefix + ".")}

    te = part("te")
    opt_state = {}
    for i in meta["opt_params_with_state"]:
        sq = tensors[f"opt.exp_avg_sq.{i}"].float()
        opt_state[i] = dict(step=torch.tensor(meta["opt_step"]), exp_avg=torch.zeros_like(sq), exp_avg_sq=sq)
    ck = dict(vae=part("vae"), te=te, unet=part("unet"),
              opt_vae=dict(state={}, param_groups=[tuple_betas(g) for g in meta["opt_vae_param_groups"]]),
              opt=dict(state=opt_state, param_groups=[tuple_betas(g) for g in meta["opt_param_groups"]]),
              ema_te={k: v.clone() for k, v in te.items()}, ema_unet=part("ema_unet"), state=meta["state"])
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "checkpoint.pt")
    if os.path.exists(path):
        fail(f"{path} exists; unpack into a fresh work folder")
    torch.save(ck, path + ".tmp")
    os.replace(path + ".tmp", path)
    print(f"carry: UNet step {meta['state']['step']} unpacked into {path}; rerun train.py with --work {work}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="WORK/checkpoint.pt -> DEST")
    a.add_argument("work"), a.add_argument("dest")
    b = sub.add_parser("unpack", help="DEST -> WORK/checkpoint.pt")
    b.add_argument("dest"), b.add_argument("work")
    args = p.parse_args()
    if args.command == "pack":
        pack(args.work, args.dest)
    else:
        unpack(args.dest, args.work)


if __name__ == "__main__":
    main()
