"""train.py's diffusers-folder input and output: warm-start loading, the fp16 export
StableDiffusionPipeline reads, and the sample grid drawn from the exported folder."""

import json
import os
import sys

import numpy as np
import torch

import shapes_data
from train_util import log


def vae_folder(folder):
    """The AutoencoderKL folder of `folder`: its vae/ subfolder (a pipeline folder), or
    `folder` itself (a bare VAE, as --vae-only writes)."""
    sub = os.path.join(folder, "vae")
    return sub if os.path.isdir(sub) else folder


def load_init(folder, parts):
    """Loads a diffusers folder's weights (fp16 widened to fp32) of `parts`, (subfolder, model)
    pairs out of vae / text_encoder / unet, into the freshly built models; returns the VAE's
    scaling factor. The architecture must be this tool's current one (strict loading); the
    VAE may also come from a bare AutoencoderKL folder (vae_folder)."""
    from safetensors.torch import load_file
    for sub, model in parts:
        name = "model.safetensors" if sub == "text_encoder" else "diffusion_pytorch_model.safetensors"
        path = os.path.join(vae_folder(folder) if sub == "vae" else os.path.join(folder, sub), name)
        tensors = {k: v.float() for k, v in load_file(path).items()}
        if sub == "text_encoder" and not any(k.startswith("text_model.") for k in model.state_dict()):
            tensors = {k.removeprefix("text_model."): v for k, v in tensors.items()}
        if sub == "unet":
            with open(os.path.join(folder, sub, "config.json")) as f:
                old_cfg = json.load(f)
            tensors = deepen_unet(tensors, old_cfg["layers_per_block"], model)
            tensors = add_attention(tensors, old_cfg, model)
        model.load_state_dict(tensors, strict=True)
    with open(os.path.join(vae_folder(folder), "config.json")) as f:
        return float(json.load(f)["scaling_factor"])


def per_block(layers, blocks):
    """layers_per_block as a list of `blocks` ints (diffusers accepts an int or one per block)."""
    return [int(layers)] * blocks if isinstance(layers, int) else [int(n) for n in layers]


def identity_start(new, wanted, zeroed):
    """The tensors of state dict `new` whose names satisfy `wanted`, as a freshly built model
    has them, except those in the `zeroed` layer (".conv2.", ".proj_out.": the last layer of a
    residual branch), which are zero, so that each such block starts as the identity."""
    return {k: torch.zeros_like(v) if zeroed in k else v.clone() for k, v in new.items() if wanted(k)}


def deepen_unet(old, old_layers, unet):
    """A folder's UNet state dict `old` (layers_per_block `old_layers`) made to fit `unet`,
    which may have more resnets in levels without attention where the folder had one, so
    that `unet` computes exactly what the folder's UNet did (net2net-style deepening): every
    new down resnet starts as the identity (conv2 zero: ResnetBlock2D adds its input back),
    and so its skip output equals the old resnet's. In the up block of that level the old
    first resnet keeps index 0 (its skip is now the last new down resnet's output, the same
    values), the old last resnet moves to the end (its skip, the level's input, is
    unchanged), and the new ones between pass the running features through: conv_shortcut
    [I | 0] drops the skip half of their concatenated input, conv2 zero. Levels with
    transformers, and levels whose depth is unchanged, must match exactly. Returns `old`
    unchanged when the depths agree."""
    cfg = unet.config
    blocks = len(cfg.block_out_channels)
    before, after = per_block(old_layers, blocks), per_block(cfg.layers_per_block, blocks)
    if before == after:
        return old
    new = dict(unet.state_dict())
    out = dict(old)
    for level, (a, b) in enumerate(zip(before, after)):
        if a == b:
            continue
        up = blocks - 1 - level
        if a != 1 or b < a or "CrossAttn" in cfg.down_block_types[level] + cfg.up_block_types[up]:
            raise SystemExit(f"--init: cannot deepen level {level} from {a} to {b} layers "
                             "(only 1 -> more, in levels without attention)")
        down_prefix, up_prefix = f"down_blocks.{level}.resnets.", f"up_blocks.{up}.resnets."
        # new down resnets: fresh init, conv2 zero
        out.update(identity_start(new, lambda k: any(k.startswith(f"{down_prefix}{j}.") for j in range(1, b)),
                                  ".conv2."))
        moved = {k.replace(f"{up_prefix}1.", f"{up_prefix}{b}.", 1): v
                 for k, v in old.items() if k.startswith(f"{up_prefix}1.")}
        out = {k: v for k, v in out.items() if not k.startswith(f"{up_prefix}1.")}
        out.update(moved)
        for j in range(1, b):  # new up resnets between: pass the running features through
            for k, v in new.items():
                if not k.startswith(f"{up_prefix}{j}."):
                    continue
                if ".conv2." in k:
                    out[k] = torch.zeros_like(v)
                elif k.endswith("conv_shortcut.weight"):
                    w = torch.zeros_like(v)  # [out, running + skip, 1, 1]
                    c = w.shape[0]
                    w[:, :c, 0, 0] = torch.eye(c)
                    out[k] = w
                elif k.endswith("conv_shortcut.bias"):
                    out[k] = torch.zeros_like(v)
                else:
                    out[k] = v.clone()
    return out


def add_attention(old, old_cfg, unet):
    """A folder's UNet state dict `old` (config `old_cfg`) made to fit `unet`, which may have
    transformers in levels where the folder's UNet had none (DownBlock2D -> CrossAttnDownBlock2D,
    UpBlock2D -> CrossAttnUpBlock2D; the resnets and resamplers keep their names), so that
    `unet` computes exactly what the folder's UNet did: every new Transformer2DModel starts
    fresh but with proj_out zero, and as it adds its input back (diffusers'
    Transformer2DModel: output = proj_out(...) + residual) it starts as the identity.
    Returns `old` unchanged when no level gains attention."""
    cfg = unet.config
    gained = []
    for kind, old_types, new_types in (("down", old_cfg["down_block_types"], cfg.down_block_types),
                                       ("up", old_cfg["up_block_types"], cfg.up_block_types)):
        for i, (a, b) in enumerate(zip(old_types, new_types)):
            if a == b:
                continue
            if "CrossAttn" in a or "CrossAttn" not in b:
                raise SystemExit(f"--init: {kind}_blocks.{i} is {a} in the folder and {b} here "
                                 "(a level may only gain attention)")
            gained.append(f"{kind}_blocks.{i}.attentions.")
    if not gained:
        return old
    return dict(old, **identity_start(unet.state_dict(), lambda k: k.startswith(tuple(gained)), ".proj_out."))


def deepen_vae(old, vae):
    """An AutoencoderKL state dict `old` made to fit `vae`, built with a larger
    layers_per_block (diffusers' one setting for both halves: the encoder's down blocks have
    that many resnets, the decoder's up blocks one more), so that `vae` computes exactly what
    `old` did: the resnets appended to every block start fresh with conv2 zero, and a
    ResnetBlock2D whose input and output widths agree adds its input back, so each starts as
    the identity. Appended, not inserted: a block's first resnet may change the width. The
    encoder's new resnets are meant to stay the identity (sample_decoder.py freezes the
    encoder, so the latent space is untouched); the decoder's learn."""
    new = vae.state_dict()
    outside = [k for k in new if k not in old and ".resnets." not in k]
    if outside:
        raise SystemExit(f"deepen_vae: {outside[:3]} are new but not in appended resnets")
    out = dict(old, **identity_start(new, lambda k: k not in old, ".conv2."))
    stale = set(old) - set(new)
    if stale:
        raise SystemExit(f"deepen_vae: the deeper VAE lacks {sorted(stale)[:3]} ...")
    return out


def load_vae_init(folder, vae):
    """Starts `vae` from the AutoencoderKL in `folder` (train.py --vae-init): every tensor of
    the same shape is copied; the latent layers may be wider in `vae` (more latent_channels).
    Then the folder's latent channels keep their roles (the encoder's mean and log-variance
    halves, DiagonalGaussianDistribution's chunk(2, dim=1)), the new channels start at the
    fresh model's init in the encoder and with zero weight into the decoder (post_quant_conv
    and decoder.conv_in columns), so the widened VAE starts reconstructing exactly as the
    folder's did and learns to use the new channels. Returns the folder's latent_channels."""
    from safetensors.torch import load_file
    src = vae_folder(folder)
    with open(os.path.join(src, "config.json")) as f:
        old_c = int(json.load(f)["latent_channels"])
    old = {k: v.float() for k, v in load_file(os.path.join(src, "diffusion_pytorch_model.safetensors")).items()}
    new = vae.state_dict()
    c = vae.config.latent_channels
    if c < old_c:
        raise SystemExit(f"--vae-init {folder}: {old_c} latent channels, more than the new VAE's {c}")
    # Index in the new moments (2c) of the old moment channel i (mean 0..old_c-1, then logvar).
    moment = [i if i < old_c else c + i - old_c for i in range(2 * old_c)]
    missing = set(new) - set(old)
    if missing:
        raise SystemExit(f"--vae-init {folder}: another architecture (lacks {sorted(missing)[:3]} ...)")
    with torch.no_grad():
        for k, t in new.items():
            o = old[k]
            if o.shape == t.shape:
                t.copy_(o)
            elif k in ("encoder.conv_out.weight", "encoder.conv_out.bias"):
                t[moment] = o
                if k.endswith("bias"):  # the new channels' log-variance starts at the old ones' mean
                    t[c + old_c:] = o[old_c:].mean()
            elif k in ("quant_conv.weight", "quant_conv.bias"):
                if k.endswith("bias"):
                    t[moment] = o
                    t[c + old_c:] = o[old_c:].mean()
                else:
                    t[moment] = 0.0  # the old outputs read only the old inputs, as before
                    t[torch.tensor(moment)[:, None], torch.tensor(moment)[None, :]] = o
            elif k == "post_quant_conv.weight":
                t.zero_()
                t[:old_c, :old_c] = o
                t[old_c:, old_c:] = torch.eye(c - old_c)[:, :, None, None]
            elif k == "post_quant_conv.bias":
                t.zero_()
                t[:old_c] = o
            elif k == "decoder.conv_in.weight":
                t.zero_()
                t[:, :old_c] = o
            else:
                raise SystemExit(f"--vae-init {folder}: {k} is {tuple(o.shape)}, not {tuple(t.shape)}")
    return old_c


def export_vae(args, vae, scaling):
    """Writes args.out as a bare AutoencoderKL folder (train.py --vae-only): config.json with
    `scaling_factor`, fp16 safetensors, as `AutoencoderKL.save_pretrained` lays them out."""
    import copy
    half = copy.deepcopy(vae).to("cpu", torch.float16)
    half.register_to_config(scaling_factor=scaling)
    half.save_pretrained(args.out, safe_serialization=True)
    log(args.work, "# exported the VAE", args.out, "scaling_factor", f"{scaling:.5f}")


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
    keep_latents_unclipped(os.path.join(args.out, "scheduler", "scheduler_config.json"))
    log(args.work, "# exported", args.out)
    sample_grid(args, device)


def keep_latents_unclipped(path):
    """Adds `clip_sample: false` to the exported scheduler config, as Stable Diffusion 1.5's
    own config has it. EulerDiscreteScheduler has no such key (so it cannot be passed to it),
    but DDIMScheduler and DDPMScheduler read it with a class default of true, which clips the
    predicted latent to ±1: this model's latents have unit standard deviation, and clipped, DDPM
    scored 0% whole images on held-out captions against 60.5% unclipped (6 Dec 2026)."""
    with open(path) as f:
        config = json.load(f)
    config["clip_sample"] = False
    with open(path, "w") as f:
        json.dump(dict(sorted(config.items())), f, indent=2)
        f.write("\n")


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


# Guidance of the sample grids (train.py's export, snapshot.py). It should be the built-in
# model's card setting, so that a grid shows what a job with the shipped defaults gets: when
# tools/train/choose_guidance.sh picks the scale for models/shapes, that value goes here and in
# etc/diffusiond.yaml's shapes entry (`defaults:`; JobDefaults keeps the built-in 5). 1.5 comes from the
# midway sweep of issue 18's v2 run; above 2 its colours saturate.
SAMPLE_GUIDANCE = 1.5
# Sampler of the grids, the card's too (etc/diffusiond.yaml's `sampler: euler_a` for shapes):
# Euler a scored 12.5 points above Euler on held-out captions 1000-1199 (models/shapes/README.md).
SAMPLE_SAMPLER = "euler_a"
# Its eta (the job field `eta`, etc/diffusiond.yaml's `eta: 1.75` for shapes): more fresh noise
# per step than diffusers' class (eta 1) scored 13 points more on held-out captions 1000-1599
# (models/shapes/README.md, Sampler). Drawn with tools/fixtures/ancestral_restart.py's scheduler.
SAMPLE_ETA = 1.75


def job_samplers():
    """Job sampler name (etc/diffusiond.yaml) -> (diffusers scheduler class, from_config
    overrides): the table the diffusers fixtures are made with (tools/fixtures/pipeline_refs.py),
    so a tool drawing with diffusers means by a name what a job gets from diffusiond. Its nine
    samplers; TCD, which also needs the pipeline's eta, is left out."""
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    if fixtures not in sys.path:
        sys.path.insert(0, fixtures)
    from pipeline_refs import SAMPLERS
    return {name: (cls, overrides) for name, cls, overrides in SAMPLERS}


def use_sampler(pipe, name, eta=None):
    """Gives the diffusers pipeline `pipe` the scheduler of job sampler `name` (job_samplers),
    built from the folder's scheduler config (spacing, betas, prediction type kept); an
    `eta` (the job field, euler_a only here) takes tools/fixtures/ancestral_restart.py's
    class, diffusers' Euler a with k-diffusion's eta."""
    import diffusers
    cls, overrides = job_samplers()[name]
    pipe.scheduler = getattr(diffusers, cls).from_config(pipe.scheduler.config, **overrides)
    if eta is not None and eta != 1:
        assert name == "euler_a", "eta is drawn here for euler_a only"
        from ancestral_restart import EulerAncestralRestartScheduler  # job_samplers put fixtures/ on sys.path
        pipe.scheduler = EulerAncestralRestartScheduler.from_config(pipe.scheduler.config)
        pipe.scheduler.eta = eta


def sample_grid(args, device):
    """Reloads the exported folder the way a user would and draws held-out captions."""
    from diffusers import StableDiffusionPipeline
    from PIL import Image
    pipe = StableDiffusionPipeline.from_pretrained(args.out, safety_checker=None, torch_dtype=torch.float32).to(device)
    pipe.set_progress_bar_config(disable=True)
    use_sampler(pipe, SAMPLE_SAMPLER, eta=SAMPLE_ETA)
    scenes = [shapes_data.sample_scene(shapes_data.HELDOUT_SEED_BASE + i) for i in range(args.samples)]
    caps = [s["caption"] for s in scenes]
    g = torch.Generator("cpu").manual_seed(args.seed)
    out = pipe(caps, height=64, width=64, num_inference_steps=25, guidance_scale=SAMPLE_GUIDANCE,
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
        f.write("Rows alternate: rendered truth, generated (25 Euler a steps, eta %g, guidance %g, seed %d).\n"
                % (SAMPLE_ETA, SAMPLE_GUIDANCE, args.seed))
        f.write("\n".join(caps) + "\n")
    log(args.work, "# sample grid", os.path.join(args.work, "samples.png"))
