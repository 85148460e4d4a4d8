#!/usr/bin/env python3
"""Exports the EMA weights of a train.py run's latest checkpoint as a model folder, while the
run goes on (or after it stopped), to look at or score a long run midway:

    python3 tools/train/snapshot.py WORK OUT [--threads N]
    .build/release/diffusion-bench adherence --model OUT --count 50

It rebuilds the models from the arguments in WORK/train.log's last "# start" line, loads
WORK/checkpoint.pt (written atomically by train.py, so reading it during a run is safe) and
exports as train.py's own export does: fp16 diffusers folder, then OUT/samples.png and
samples.txt (16 held-out captions, diffusers, 25 Euler a steps, guidance
model_folder.SAMPLE_GUIDANCE). Nothing in WORK
is written.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402
from model_folder import export  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("work"), p.add_argument("out")
    p.add_argument("--threads", type=int, default=1)
    cli = p.parse_args()
    torch.set_num_threads(cli.threads)
    with open(os.path.join(cli.work, "train.log")) as f:
        starts = [line for line in f if line.startswith("# start ")]
    if not starts:
        raise SystemExit(f"{cli.work}/train.log has no '# start' line")
    args = argparse.Namespace(**json.loads(starts[-1].split(" args ", 1)[1]))
    ck = torch.load(os.path.join(cli.work, "checkpoint.pt"), map_location="cpu", weights_only=False)
    if ck["ema_unet"] is None:
        raise SystemExit("the checkpoint has no EMA weights yet (the UNet phase has not started)")
    tok_dir = os.path.join(cli.work, "tokenizer")
    with open(os.path.join(tok_dir, "vocab.json")) as f:
        vocab = json.load(f)
    ids = {"bos": vocab["<|startoftext|>"], "eos": vocab["<|endoftext|>"]}
    vae, te, unet = train.build_models(len(vocab), ids, train.vae_config(args), getattr(args, "unet_layers", 1),
                                         getattr(args, "unet_attention", None))
    vae.load_state_dict(ck["vae"])
    os.makedirs(cli.out, exist_ok=True)
    args.out, args.work = cli.out, cli.out  # the sample grid and log lines go to OUT
    export(args, vae, te, unet, ck["ema_te"], ck["ema_unet"], tok_dir, ck["state"]["scaling"],
           train.scheduler_config(args), "cpu")
    print(f"snapshot of UNet step {ck['state']['step']} ({ck['state']['phase']}) in {cli.out}")


if __name__ == "__main__":
    main()
