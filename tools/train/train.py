#!/usr/bin/env python3
"""Trains diffusiond's built-in `shapes` model: a complete Stable-Diffusion-layout
model (AutoencoderKL, CLIPTextModel with its own vocabulary, UNet2DConditionModel,
EulerDiscreteScheduler config) on scenes this tool renders itself (shapes_data.py).

    python3 tools/train/train.py --work tools/train/runs/shapes --out models/shapes

Phases, in order, each resumable from <work>/checkpoint.pt (rerun the same command
to continue; --max-minutes stops cleanly with a checkpoint so it can run in parts; a finished
run rerun with a larger --unet-steps trains its UNet on from where it ended):
  1. tokenizer: vocab.json / merges.txt (shapes_vocab.py), checked with transformers.
  2. vae: reconstruction (L1 + MSE, outline pixels weighted by --vae-edge-weight) + small KL on
     rendered 64x64 images; the architecture from --vae-blocks / --vae-latent-channels /
     --vae-layers, from scratch or from --vae-init's VAE (widened to more latent channels).
     --vae-only stops after phase 3b and writes --out as a bare AutoencoderKL folder.
  3. latents: encode the scene pool; latent scaling factor = 1 / std. Kept in WORK/latents.pt
     (1.3 GB), so a resume with the same VAE reads them instead of encoding again.
  3b. decoder: the VAE decoder alone trains on against the frozen encoder's latents
     (decoder_tuning.py; --decoder-steps 0: no such phase).
  4. text: the text encoder alone, with two throw-away linear heads (each token's identity,
     and the scene's background and objects from the end-of-text token), then frozen
     (--text-steps 0: no such phase, the text encoder trains jointly with the UNet).
  5. unet: the UNet against that text encoder: v-prediction on a zero-terminal-SNR schedule
     (default; --no-zero-snr: SD 1.x's schedule, epsilon MSE with min-SNR-5 weighting, Hang
     et al. 2023), 15% of each batch's timesteps from the top quarter, 10% empty captions
     for classifier-free guidance, EMA of the weights for sampling.
  6. export: StableDiffusionPipeline.save_pretrained in fp16 + a sample grid.
Logs: <work>/train.log (phase, step, loss, seconds) and stdout.

Retraining (--vae-from FOLDER): keeps FOLDER's VAE and scaling factor (no VAE phase; its
decoder still trains on for --decoder-steps, 0 = keep it exactly) and trains a new text
encoder and UNet from scratch (how models/shapes was made: see its model card). Warm start
(--init FOLDER): keeps FOLDER's VAE the same way (phases 1-3 only re-encode the pool) and
trains its UNet further (--unet-steps 0: not at all) on a fresh optimizer and cosine
schedule over --unet-steps; its text encoder stays frozen as it is (with --text-steps 0 it
trains jointly). FOLDER must have this tool's current architecture. --high-noise-weight
weighs the x0 error of the high-noise steps (where the layout is decided) more, for epsilon
training (--no-zero-snr) only.
"""

import argparse
import hashlib
import json
import os
import sys
import time

# glibc hands every buffer above its mmap threshold back to the kernel when torch frees it,
# so each big conv activation is page-faulted in again: on 2 cores the VAE encoding of the
# pool spent half its time in the kernel (500,000 minor faults/s). Keep freed memory in the
# heap instead; the variables are read at process start, so the script (not an importer)
# re-executes once with them set.
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 36), "MALLOC_TOP_PAD_": str(1 << 30)}
if __name__ == "__main__" and sys.platform == "linux" and "MALLOC_MMAP_MAX_" not in os.environ:
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **MALLOC_ENV})

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_vocab  # noqa: E402
import shapes_data  # noqa: E402
from text_pretraining import pretrain_text_encoder  # noqa: E402
from decoder_tuning import reconstruction_error, tune_decoder  # noqa: E402
from model_folder import export, export_vae, load_init, load_vae_init  # noqa: E402
from train_util import (band_weight, batch_rng, latent_outline_band, log, lr_at,  # noqa: E402
                        pick_device, reconstruction_loss, to_device)


def layers_arg(text):
    """--unet-layers: "2" or "2,2,1,1"."""
    parts = [int(x) for x in text.split(",")]
    if any(n < 1 for n in parts):
        raise argparse.ArgumentTypeError(f"layers per block must be >= 1, got {text}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def attention_arg(text):
    """--unet-attention: one 0 or 1 per level, finest first, e.g. "0,1,1,1"."""
    parts = [int(x) for x in text.split(",")]
    if any(n not in (0, 1) for n in parts):
        raise argparse.ArgumentTypeError(f"--unet-attention takes 0 or 1 per level, got {text}")
    return tuple(bool(n) for n in parts)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="folder for checkpoint, log, samples")
    p.add_argument("--out", required=True, help="diffusers model folder to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--pool", type=int, default=40000, help="rendered training scenes")
    p.add_argument("--vae-blocks", default=VAE_DEFAULTS["blocks"],
                   help="the VAE's block_out_channels, comma-separated; n blocks downsample by 2^(n-1) "
                        "(32,64,64: 64x64 images <-> 16x16 latents)")
    p.add_argument("--vae-latent-channels", type=int, default=VAE_DEFAULTS["latent_channels"])
    p.add_argument("--vae-layers", type=int, default=VAE_DEFAULTS["layers"], help="the VAE's layers_per_block")
    p.add_argument("--vae-init", default=None,
                   help="start the VAE phase from this folder's AutoencoderKL (a pipeline folder or a bare "
                        "VAE) instead of from scratch; more latent channels than it has are added "
                        "(model_folder.load_vae_init), the rest of the architecture must match")
    p.add_argument("--vae-edge-weight", type=float, default=VAE_DEFAULTS["edge_weight"],
                   help="weight of the outline pixels in the VAE and decoder losses (train_util.outline_weight; "
                        "1 = plain L1 + MSE)")
    p.add_argument("--vae-only", action="store_true",
                   help="stop after the VAE phases (2, 3, 3b) and write --out as an AutoencoderKL folder "
                        "(config.json + fp16 safetensors, scaling_factor set), for --vae-from")
    p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--decoder-steps", type=int, default=2400,
                   help="VAE decoder steps on the frozen encoder's latents after the VAE phase (0 = none)")
    p.add_argument("--decoder-batch", type=int, default=32)
    p.add_argument("--decoder-lr", type=float, default=5e-4)
    p.add_argument("--decoder-hard-weight", type=float, default=0.0,
                   help="weight of train_util.hard_pixel_loss (pixels far off their true colour) in "
                        "the decoder phase; 0 = L1 + MSE only")
    p.add_argument("--text-steps", type=int, default=600,
                   help="text-encoder pretraining steps (0 = none: train it jointly with the UNet)")
    p.add_argument("--text-batch", type=int, default=128)
    p.add_argument("--unet-steps", type=int, default=None,
                   help="UNet steps, the cosine schedule's length (default: what the run in --work "
                        "recorded when it started or was lengthened, else 10000)")
    p.add_argument("--unet-layers", type=layers_arg, default=1,
                   help="the UNet's layers_per_block (resnets, and transformers where it has them, per level): "
                        "one number, or one per level from the finest (e.g. 2,2,1,1); with --init, levels "
                        "without attention may be deeper than the folder's (model_folder.deepen_unet)")
    p.add_argument("--unet-attention", type=attention_arg, default=None,
                   help="which levels have transformers (self- and cross-attention), one 0 or 1 per level "
                        "from the finest (default: the two coarsest, 0,0,1,1 for 32x32 latents); with "
                        "--init, levels may gain attention the folder's UNet lacked (model_folder.add_attention)")
    p.add_argument("--unet-edge-weight", type=float, default=1.0,
                   help="weight of the latent cells on an object's outline in the UNet loss (the render's "
                        "outline band, max-pooled to the latent grid; 1 = every cell alike)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--cfg-drop", type=float, default=0.1)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this long; 0 = no limit")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--compile", action="store_true",
                   help="run the UNet phase's forward and backward through torch.compile (inductor): "
                        "1.69 -> 1.14 s per forward-backward-Adam step of the --unet-layers 2 UNet at batch "
                        "32 on 2 CPU cores; the first step compiles for a minute or two")
    p.add_argument("--samples", type=int, default=16, help="held-out captions in the sample grid")
    p.add_argument("--init", default=None,
                   help="warm start: a diffusers folder made by this tool (e.g. models/shapes); its VAE "
                        "encoder and scaling factor are kept (no VAE phase; the decoder trains on for "
                        "--decoder-steps), its UNet trains on (and its text "
                        "encoder too with --text-steps 0; otherwise that stays frozen, not re-pretrained)")
    p.add_argument("--vae-from", default=None,
                   help="keep this diffusers folder's VAE encoder and scaling factor (no VAE phase; the "
                        "decoder trains on for --decoder-steps) but train the "
                        "text encoder and UNet from scratch, e.g. to retrain them with another schedule")
    p.add_argument("--high-noise-share", type=float, default=0.15,
                   help="fraction of each batch whose timesteps are drawn from the top quarter "
                        "(t >= 750) instead of all 1000, where the layout is decided (0 = uniform)")
    p.add_argument("--high-noise-weight", type=float, default=1.0,
                   help="multiply the loss of noise levels with SNR < 1 by min(1/SNR, this): the "
                        "x0 error there, which carries the layout, counts more (1 = plain min-SNR-5; "
                        "epsilon training only, not with --zero-snr)")
    p.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up steps of the UNet phase")
    p.add_argument("--zero-snr", action=argparse.BooleanOptionalAction, default=True,
                   help="train (and export) with a zero-terminal-SNR schedule and v-prediction "
                        "(rescale_betas_zero_snr, trailing spacing; Lin et al. 2024), so that the "
                        "layout at the first sampling step can only come from the caption; "
                        "--no-zero-snr: SD 1.x's schedule and epsilon prediction)")
    return p.parse_args()


# ---------------------------------------------------------------- model configs
# Architecture lives here only; the exported config.json files carry it to diffusers
# and to diffusiond (which never hard-codes it).

IMAGE_SIZE = 64  # shapes_data's scene geometry (object sizes, grid) is laid out on 64 px

VAE_DEFAULTS = dict(blocks="32,64,64", latent_channels=4, layers=1, edge_weight=1.0)


def vae_config(args):
    """The AutoencoderKL config: a --vae-from / --init folder's own (its architecture is
    kept), else --vae-blocks / --vae-latent-channels / --vae-layers."""
    folder = args.vae_from or args.init
    if folder:
        from model_folder import vae_folder
        with open(os.path.join(vae_folder(folder), "config.json")) as f:
            c = json.load(f)
        keys = ("in_channels", "out_channels", "latent_channels", "sample_size", "down_block_types",
                "up_block_types", "block_out_channels", "layers_per_block", "norm_num_groups", "act_fn")
        return {k: (tuple(c[k]) if isinstance(c[k], list) else c[k]) for k in keys}
    blocks = tuple(int(b) for b in args.vae_blocks.split(","))
    return dict(in_channels=3, out_channels=3, latent_channels=args.vae_latent_channels, sample_size=IMAGE_SIZE,
                down_block_types=("DownEncoderBlock2D",) * len(blocks),
                up_block_types=("UpDecoderBlock2D",) * len(blocks),
                block_out_channels=blocks, layers_per_block=args.vae_layers, norm_num_groups=32, act_fn="silu")


def latent_shape(vae_cfg):
    """(channels, side) of the latents: every block but the last halves the side."""
    side = vae_cfg["sample_size"] // 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    return vae_cfg["latent_channels"], side

TEXT_CONFIG = dict(
    hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4,
    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=128,
)

UNET_CONFIG = dict(
    layers_per_block=1,  # sample_size, in_channels, out_channels: the VAE's latents (build_models)
    block_out_channels=(64, 128, 128),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=128, attention_head_dim=4, norm_num_groups=32,
)  # attention_head_dim is the number of heads (diffusers' legacy naming). Cross-attention at
# 8x8, at the innermost 4x4 and in the mid block: there every cell's features see the image
# borders (the UNet's only sense of place is zero padding), so a position word can be put in
# place. The 16x16 level is resnets only: its self-attention over 256 cells cost 30% of a
# training step on 2 cores, and the layout is decided at the coarser levels. Giving it a
# transformer on a warm start (--unet-attention 0,1,1,1) did not draw cleaner shapes either
# (models/shapes/README.md, part 2f).


def unet_config(side, layers=1, attention=None):
    """UNET_CONFIG for latents of `side` cells, with `layers` layers per block: the levels
    above stay at 16, 8 and 4 cells; 32x32 latents (a VAE that downsamples by 2) get one more
    level in front, 32 channels and resnets only, which costs about as much per step as the
    16x16 level (4x the cells, a quarter of the channel pairs). `attention` (one bool per
    level, finest first) overrides which levels have transformers."""
    c = dict(UNET_CONFIG, layers_per_block=layers)
    blocks = len(UNET_CONFIG["block_out_channels"]) + (side == 32)
    if not isinstance(layers, int) and len(layers) != blocks:
        raise SystemExit(f"--unet-layers: {len(layers)} numbers for a UNet of {blocks} levels")
    if side == 32:
        c["block_out_channels"] = (32,) + UNET_CONFIG["block_out_channels"]
        c["down_block_types"] = ("DownBlock2D",) + UNET_CONFIG["down_block_types"]
        c["up_block_types"] = UNET_CONFIG["up_block_types"] + ("UpBlock2D",)
    elif side != 16:
        raise SystemExit(f"no UNet design for {side}x{side} latents (16 or 32: a VAE of 3 or 2 blocks at 64x64)")
    if attention is not None:
        if len(attention) != blocks:
            raise SystemExit(f"--unet-attention: {len(attention)} numbers for a UNet of {blocks} levels")
        c["down_block_types"] = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention)
        c["up_block_types"] = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention))
    return c

# Stable Diffusion 1.x's noise schedule (scaled_linear, 0.00085..0.012, 1000 steps).
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    prediction_type="epsilon", steps_offset=1, timestep_spacing="leading",
)


def build_models(vocab_size, ids, vae_cfg, unet_layers=1, unet_attention=None):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    vae = AutoencoderKL(**vae_cfg)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, bos_token_id=ids["bos"],
                                      eos_token_id=ids["eos"], pad_token_id=ids["eos"], **TEXT_CONFIG))
    channels, side = latent_shape(vae_cfg)
    unet = UNet2DConditionModel(sample_size=side, in_channels=channels, out_channels=channels,
                                **unet_config(side, unet_layers, unet_attention))
    return vae, te, unet


def main():
    args = parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    started = time.time()
    deadline = started + args.max_minutes * 60 if args.max_minutes else float("inf")
    log(args.work, "# start", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device", device,
        "torch", torch.__version__, "threads", torch.get_num_threads(), "args", json.dumps(vars(args)))

    # 1. tokenizer
    tok_dir = os.path.join(args.work, "tokenizer")
    vocab = shapes_vocab.write_tokenizer(tok_dir, shapes_data.WORDS + [","])
    ids = {"bos": vocab["<|startoftext|>"], "eos": vocab["<|endoftext|>"]}
    t0 = time.time()
    scenes = [shapes_data.sample_scene(shapes_data.TRAIN_SEED_BASE + i) for i in range(args.pool)]
    captions = [s["caption"] for s in scenes]
    tokenizer = shapes_vocab.check_tokenizer(tok_dir, shapes_data.WORDS, captions[:2000])
    images = torch.from_numpy(np.stack([shapes_data.render(s) for s in scenes])).permute(0, 3, 1, 2).contiguous()
    tokens = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    empty = tokenizer([""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    log(args.work, "# data", args.pool, "scenes rendered and tokenized in", f"{time.time() - t0:.1f}s")
    images, tokens, empty = images.to(device), tokens.to(device), empty.to(device)

    torch.manual_seed(args.seed)
    vae_cfg = vae_config(args)
    vae, te, unet = build_models(len(vocab), ids, vae_cfg, args.unet_layers, args.unet_attention)
    for name, m in (("vae", vae), ("text_encoder", te), ("unet", unet)):
        log(args.work, "# params", name, sum(p.numel() for p in m.parameters()))
    log(args.work, "# vae", json.dumps(vae_cfg), "latents", latent_shape(vae_cfg))
    vae.to(device), te.to(device), unet.to(device)
    opt_vae = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    params = (list(te.parameters()) if not args.text_steps else []) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema_te, ema_unet = None, None
    state = dict(phase="vae", step=0, scaling=None, elapsed=0.0)

    ckpt_path = os.path.join(args.work, "checkpoint.pt")
    if (args.init or args.vae_from) and not os.path.exists(ckpt_path):
        folder = args.init or args.vae_from
        parts = (("vae", vae), ("text_encoder", te), ("unet", unet)) if args.init else (("vae", vae),)
        state["scaling"] = load_init(folder, parts)
        state["phase"] = "latents"
        log(args.work, "# warm start from", folder, "of", [n for n, _ in parts], "scaling_factor", state["scaling"])
    if args.vae_init and not (args.init or args.vae_from) and not os.path.exists(ckpt_path):
        old_c = load_vae_init(args.vae_init, vae)
        log(args.work, "# VAE phase starts from", args.vae_init, "latent channels", old_c, "->", vae_cfg["latent_channels"])
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        vae.load_state_dict(ck["vae"]), te.load_state_dict(ck["te"]), unet.load_state_dict(ck["unet"])
        opt_vae.load_state_dict(ck["opt_vae"]), opt.load_state_dict(ck["opt"])
        ema_te, ema_unet, state = ck["ema_te"], ck["ema_unet"], ck["state"]
        log(args.work, "# resumed", json.dumps(state))
        done = state.get("unet_steps_done", 0)
        if args.unet_steps is not None and state["phase"] == "export" and args.unet_steps > done > 0:
            # A finished run given a larger --unet-steps trains on from where it ended, with
            # its optimizer state and EMA; the cosine schedule's tail restarts at lr_at(done).
            state.update(phase="unet", step=done, unet_steps=args.unet_steps)
            log(args.work, "# continuing the finished run from UNet step", done, "to", args.unet_steps)
    # The schedule's length is part of the run: kept in its state (and so in a carry), so a
    # resume without --unet-steps keeps it; runs from before it was kept had 10000 or said so.
    if args.unet_steps is None:
        args.unet_steps = state.get("unet_steps", 10000)
    elif state.get("unet_steps", args.unet_steps) != args.unet_steps and state["phase"] == "unet":
        log(args.work, "# UNet schedule length changed from", state["unet_steps"], "to", args.unet_steps,
            "steps at step", state["step"])
    state["unet_steps"] = args.unet_steps
    elapsed0 = state["elapsed"]

    def save_checkpoint():
        state["elapsed"] = elapsed0 + time.time() - started
        ck = dict(vae=vae.state_dict(), te=te.state_dict(), unet=unet.state_dict(),
                  opt_vae=opt_vae.state_dict(), opt=opt.state_dict(),
                  ema_te=ema_te, ema_unet=ema_unet, state=state)
        torch.save(ck, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    def out_of_time():
        if time.time() < deadline:
            return False
        save_checkpoint()
        log(args.work, "# stopping at --max-minutes", json.dumps(state), "rerun the same command to continue")
        return True

    # 2. VAE
    if state["phase"] == "vae":
        vae.train()
        t_phase, acc = time.time(), 0.0
        while state["step"] < args.vae_steps:
            step = state["step"]
            g = batch_rng(args.seed, 1, step)
            idx = to_device(torch.randint(0, args.pool, (args.vae_batch,), generator=g), device)
            x = images[idx].float() / 127.5 - 1
            for group in opt_vae.param_groups:
                group["lr"] = lr_at(step, args.vae_steps, args.vae_lr, warmup=100)
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * to_device(torch.randn(post.mean.shape, generator=g), device)
            rec = vae.decode(z).sample
            kl = post.kl().mean()
            loss = reconstruction_loss(rec, x, args.vae_edge_weight) + 1e-6 * kl
            opt_vae.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt_vae.step()
            acc += loss.detach()
            state["step"] = step + 1
            if state["step"] % args.log_every == 0:
                per = (time.time() - t_phase) / args.log_every
                log(args.work, "vae", state["step"], f"{acc.item() / args.log_every:.5f}", f"kl={kl.item():.1f}", f"{per:.3f}s/step")
                acc, t_phase = 0.0, time.time()
            if state["step"] % args.checkpoint_every == 0:
                save_checkpoint()
            if out_of_time():
                return 0
        state.update(phase="latents", step=0)
        save_checkpoint()

    # 3. latents of the whole pool (posterior mean and std), and the scaling factor
    vae.eval()
    mean, std, error = pool_latents(args, vae, images, device)
    scaling = state["scaling"] or float(1.0 / mean.std())
    latent_stats = (mean, std)
    log(args.work, "# latents", tuple(mean.shape), "scaling_factor", f"{scaling:.5f}",
        "vae mean abs error (0-255)", f"{error:.2f}")
    # A warm start's text encoder is already trained: with --text-steps > 0 it stays frozen
    # as it is (pretraining it again would move the embeddings its UNet learned against).
    after_decoder = "text" if args.text_steps and not args.init else "unet"
    if state["phase"] == "latents":
        state.update(phase="decoder" if args.decoder_steps else after_decoder, step=0)

    # 3b. the VAE decoder alone, against the frozen encoder (see decoder_tuning.py)
    if state["phase"] == "decoder":
        def after_decoder_step():
            if state["step"] % args.checkpoint_every == 0:
                save_checkpoint()
            return out_of_time()
        if not tune_decoder(args, vae, opt_vae, images, latent_stats, state, device, after_decoder_step):
            return 0
        log(args.work, "# decoder tuned: vae mean abs error (0-255)",
            f"{reconstruction_error(vae, images, latent_stats):.2f}")
        state.update(phase=after_decoder, step=0)
        save_checkpoint()
    if args.vae_only:
        export_vae(args, vae, scaling)
        state["elapsed"] = elapsed0 + time.time() - started
        log(args.work, "# done (--vae-only)", f"total training wall time {state['elapsed'] / 60:.1f} min")
        return 0

    # 4a. text encoder pretraining, then frozen (see pretrain_text_encoder)
    frozen_text = args.text_steps > 0
    if state["phase"] == "text":
        pretrain_text_encoder(args, te, tokens, scenes, device)
        state.update(phase="unet", step=0)
        save_checkpoint()
    if frozen_text:
        te.eval()
        te.requires_grad_(False)

    # 4. text encoder + UNet
    from diffusers import DDPMScheduler
    sched = DDPMScheduler(**{k: v for k, v in scheduler_config(args).items() if k != "timestep_spacing"})
    alphas_cumprod = sched.alphas_cumprod.to(device)
    if ema_te is None or (frozen_text and state["phase"] == "unet" and state["step"] == 0):
        ema_te = {k: v.detach().clone() for k, v in te.state_dict().items()}
        ema_unet = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    band = None
    if state["phase"] == "unet" and args.unet_edge_weight != 1:
        band = latent_outline_band(images, mean.shape[-1])
        log(args.work, "# outline cells weighted", args.unet_edge_weight, "share of latent cells",
            f"{band.float().mean().item():.3f}")
    text_cache = None
    if state["phase"] == "unet":
        unet.train()
        if not frozen_text:
            te.train()
        elif state["step"] < args.unet_steps:
            t0 = time.time()
            text_cache = encode_pool(te, tokens, empty)
            log(args.work, "# text states of", tokens.shape[0], "pool captions",
                f"{text_cache[0].numel() * 4 / 2**30:.2f} GiB, {time.time() - t0:.0f} s")
        # The compiled module shares the UNet's parameters; checkpoints, EMA and the export
        # keep reading `unet` itself, so their keys do not change.
        unet_forward = torch.compile(unet) if args.compile else unet
        t_phase, acc = time.time(), 0.0
        while state["step"] < args.unet_steps:
            step = state["step"]
            g = batch_rng(args.seed, 2, step)
            idx = to_device(torch.randint(0, args.pool, (args.batch,), generator=g), device)
            eps_latent = to_device(torch.randn((args.batch,) + tuple(mean.shape[1:]), generator=g), device)
            x0 = (mean[idx] + std[idx] * eps_latent) * scaling
            ids_b = tokens[idx].clone()
            drop = to_device(torch.rand(args.batch, generator=g) < args.cfg_drop, device)
            ids_b = torch.where(drop[:, None], empty, ids_b)
            t = torch.randint(0, 1000, (args.batch,), generator=g)
            if args.high_noise_share > 0:
                high = torch.rand(args.batch, generator=g) < args.high_noise_share
                t = torch.where(high, torch.randint(750, 1000, (args.batch,), generator=g), t)
            t = to_device(t, device)
            noise = to_device(torch.randn(x0.shape, generator=g), device)
            a = alphas_cumprod[t].view(-1, 1, 1, 1)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            for group in opt.param_groups:
                group["lr"] = lr_at(step, args.unet_steps, args.lr, warmup=args.warmup)
            if text_cache is not None:
                cond = torch.where(drop[:, None, None], text_cache[1], text_cache[0][idx])
            else:
                cond = te(ids_b)[0]
            pred = unet_forward(xt, t, encoder_hidden_states=cond).sample
            snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
            if args.zero_snr:
                # v = sqrt(a) eps - sqrt(1 - a) x0, and ||v error||^2 = (SNR + 1) ||x0 error||^2:
                # plain v-MSE (x0 weight SNR + 1, 1 at the terminal step, where the target is
                # -x0 and only the caption can tell it), capped at 6 like min-SNR-5.
                target = a.sqrt() * noise - (1 - a).sqrt() * x0
                weight = torch.clamp(snr + 1, max=6.0) / (snr + 1)
            else:
                target = noise
                weight = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 for epsilon prediction
                # ||x0 error||^2 = ||eps error||^2 / SNR: below SNR 1 (where the layout is decided,
                # since x_t shows little of it) weigh the x0 error up to --high-noise-weight times.
                weight = weight * torch.clamp(1.0 / snr, min=1.0, max=max(1.0, args.high_noise_weight))
            sq = (pred - target) ** 2
            if band is None:
                per_image = sq.mean(dim=(1, 2, 3))
            else:
                # Outline cells count --unet-edge-weight times; normalised per image, so the
                # loss keeps its scale and its timestep weighting.
                w = band_weight(band[idx], args.unet_edge_weight)
                per_image = (sq * w).mean(dim=(1, 2, 3)) / w.mean(dim=(1, 2, 3))
            loss = (weight * per_image).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            decay = min(args.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for ema, model in ((ema_te, te), (ema_unet, unet))[1 if frozen_text else 0:]:
                    current = model.state_dict()
                    floats = [k for k in ema if current[k].dtype.is_floating_point]
                    ema_f = [ema[k] for k in floats]
                    torch._foreach_mul_(ema_f, decay)
                    torch._foreach_add_(ema_f, [current[k].detach() for k in floats], alpha=1 - decay)
            acc += loss.detach()
            state["step"] = step + 1
            if state["step"] % args.log_every == 0:
                per = (time.time() - t_phase) / args.log_every
                log(args.work, "unet", state["step"], f"{acc.item() / args.log_every:.5f}", f"{per:.3f}s/step")
                acc, t_phase = 0.0, time.time()
            if state["step"] % args.checkpoint_every == 0:
                save_checkpoint()
            if out_of_time():
                # A usable snapshot of the run so far (EMA weights); the next part overwrites it.
                export(args, vae, te, unet, ema_te, ema_unet, tok_dir, scaling, scheduler_config(args), device)
                return 0
        state.update(phase="export", step=0, unet_steps_done=state["step"])
        save_checkpoint()

    # 5. export with the EMA weights, fp16 on disk
    export(args, vae, te, unet, ema_te, ema_unet, tok_dir, scaling, scheduler_config(args), device)
    state["elapsed"] = elapsed0 + time.time() - started
    log(args.work, "# done", f"total training wall time {state['elapsed'] / 60:.1f} min")
    return 0


def encode_pool(te, tokens, empty, chunk=256):
    """The frozen text encoder's last hidden states of every pool caption and of the empty one,
    computed once per part instead of on every UNet step (at batch 32 the encoder's forward alone
    took 0.27 s on a 2-core Xeon whose whole deeper-UNet step took about 1 s). Returns (pool [N, 77, width], empty [1, 77, width]).
    A caption's states do not depend on the other captions of its batch, so this is the
    per-step result up to float rounding."""
    with torch.no_grad():
        first = te(tokens[:chunk])[0]
        pool = first.new_empty((tokens.shape[0],) + tuple(first.shape[1:]))
        pool[:chunk] = first
        for i in range(chunk, tokens.shape[0], chunk):
            pool[i:i + chunk] = te(tokens[i:i + chunk])[0]
        return pool, te(empty)[0]


def pool_latents(args, vae, images, device):
    """Posterior mean and std of every pool scene, and the VAE's reconstruction error.

    Encoding the pool is 14 minutes of a resume on a slow 2-core machine, so the result is kept
    in WORK/latents.pt (fp32, exact) under a key of the VAE's weights (the encoder's give the
    latents, the decoder's the error), the pool size and the seed, and read back by the next
    resume while the key matches. After the VAE and decoder phases the VAE no longer changes,
    so a UNet phase resumed any number of times encodes once.
    """
    digest = hashlib.sha256(f"{args.pool} {args.seed}".encode())
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    key = digest.hexdigest()
    path = os.path.join(args.work, "latents.pt")
    if os.path.exists(path):
        cached = torch.load(path, map_location="cpu")
        if cached.get("key") == key:
            log(args.work, "# latents read from", path)
            return cached["mean"].to(device), cached["std"].to(device), cached["error"]
    with torch.no_grad():
        means, stds = [], []
        for i in range(0, args.pool, 500):
            post = vae.encode(images[i:i + 500].float() / 127.5 - 1).latent_dist
            means.append(post.mean), stds.append(post.std)
        mean, std = torch.cat(means), torch.cat(stds)
    error = reconstruction_error(vae, images, (mean, std))
    torch.save({"key": key, "mean": mean.cpu(), "std": std.cpu(), "error": error}, path + ".tmp")
    os.replace(path + ".tmp", path)
    return mean, std, error


def scheduler_config(args):
    """SCHEDULER_CONFIG, or its zero-terminal-SNR v-prediction variant with --zero-snr."""
    if not args.zero_snr:
        return dict(SCHEDULER_CONFIG)
    return dict(SCHEDULER_CONFIG, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                timestep_spacing="trailing", steps_offset=0)


if __name__ == "__main__":
    sys.exit(main())
