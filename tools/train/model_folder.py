"""train.py's diffusers-folder input and output: warm-start loading, the fp16 export
StableDiffusionPipeline reads, and the sample grid drawn from the exported folder."""

import json
import os

import numpy as np
import torch

import shapes_data
from train_util import log


def load_init(folder, parts):
    """Loads a diffusers folder's weights (fp16 widened to fp32) of `parts`, (subfolder, model)
    pairs out of vae / text_encoder / unet, into the freshly built models; returns the VAE's
    scaling factor. The architecture must be this tool's current one (strict loading)."""
    from safetensors.torch import load_file
    for sub, model in parts:
        name = "model.safetensors" if sub == "text_encoder" else "diffusion_pytorch_model.safetensors"
        tensors = {k: v.float() for k, v in load_file(os.path.join(folder, sub, name)).items()}
        if sub == "text_encoder" and not any(k.startswith("text_model.") for k in model.state_dict()):
            tensors = {k.removeprefix("text_model."): v for k, v in tensors.items()}
        model.load_state_dict(tensors, strict=True)
    with open(os.path.join(folder, "vae", "config.json")) as f:
        return float(json.load(f)["scaling_factor"])


def export(args, vae, te, unet, ema_te, ema_unet, tok_dir, scaling, scheduler_config, device):
    """Writes args.out: the EMA weights, the scheduler config, the tokenizer files from
    `tok_dir` unchanged, all as StableDiffusionPipeline.save_pretrained lays them out, in
    fp16; then the sample grid."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer
    te.load_state_dict(ema_te), unet.load_state_dict(ema_unet)
    vae.register_to_config(scaling_factor=scaling)
    scheduler = EulerDiscreteScheduler(**scheduler_config)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.to(torch.float16)
    pipe.save_pretrained(args.out, safe_serialization=True)
    # The tokenizer files are written by shapes_vocab (CLIP's format); keep exactly those.
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        with open(os.path.join(tok_dir, name), "rb") as src, \
                open(os.path.join(args.out, "tokenizer", name), "wb") as dst:
            dst.write(src.read())
    for extra in ("tokenizer.json", "added_tokens.json", "chat_template.jinja"):
        path = os.path.join(args.out, "tokenizer", extra)
        if os.path.exists(path):
            os.remove(path)
    add_text_model_prefix(os.path.join(args.out, "text_encoder", "model.safetensors"))
    log(args.work, "# exported", args.out)
    sample_grid(args, device)


def add_text_model_prefix(path):
    """transformers 5 saves CLIPTextModel tensors without the `text_model.` prefix;
    Stable Diffusion checkpoints (and transformers 4, and diffusiond) name them
    `text_model.embeddings…`, `text_model.encoder…`. transformers reads both."""
    from safetensors.torch import load_file, save_file
    tensors = load_file(path)
    if all(k.startswith("text_model.") for k in tensors):
        return
    renamed = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in tensors.items()}
    save_file(renamed, path, metadata={"format": "pt"})


def sample_grid(args, device):
    """Reloads the exported folder the way a user would and draws held-out captions."""
    from diffusers import StableDiffusionPipeline
    from PIL import Image
    pipe = StableDiffusionPipeline.from_pretrained(args.out, safety_checker=None, torch_dtype=torch.float32).to(device)
    pipe.set_progress_bar_config(disable=True)
    scenes = [shapes_data.sample_scene(shapes_data.HELDOUT_SEED_BASE + i) for i in range(args.samples)]
    caps = [s["caption"] for s in scenes]
    g = torch.Generator("cpu").manual_seed(args.seed)
    out = pipe(caps, height=64, width=64, num_inference_steps=25, guidance_scale=5.0,
               generator=g, output_type="np").images
    truth = np.stack([shapes_data.render(s) for s in scenes]).astype(np.float32) / 255
    cols = 8
    rows = []
    for r in range(0, len(caps), cols):
        rows.append(np.concatenate(list(truth[r:r + cols]), 1))
        rows.append(np.concatenate(list(out[r:r + cols]), 1))
    grid = (np.concatenate(rows, 0) * 255).round().astype(np.uint8)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST) \
        .save(os.path.join(args.work, "samples.png"))
    with open(os.path.join(args.work, "samples.txt"), "w") as f:
        f.write("Rows alternate: rendered truth, generated (25 Euler steps, guidance 5, seed %d).\n" % args.seed)
        f.write("\n".join(caps) + "\n")
    log(args.work, "# sample grid", os.path.join(args.work, "samples.png"))
