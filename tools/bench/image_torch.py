#!/usr/bin/env python3
"""PyTorch twin of `diffusion-bench image`: seconds per image and images per hour end to end
(tokenize, text encoder, every denoising step, decode, PIL image) with diffusers'
StableDiffusionPipeline on random weights of real shapes, so the two compare side by side.

    python3 tools/bench/image_torch.py --shapes sd15|sd21|sdturbo [--size N] [--steps N]
        [--sampler NAME] [--guidance G] [--guidance-cutoff F] [--cache N] [--tiny-vae]
        [--versus-exact] [--warmup 1] [--iterations 1] [--threads 2]

The presets, options and JSON fields are diffusion-bench image's (Sources/diffusion-bench/
ImageBenchmark.swift): sd15 = SD 1.5 at 512, euler, 25 steps, guidance 7.5; sd21 = SD 2.1 at
768, the same with v-prediction; sdturbo = the SD 2.1 architecture at 512, euler_a, 1 step,
guidance 0, trailing spacing. Configs in sd15_configs.py; the tokenizer is the shipped CLIP
vocabulary (models/clip-tokenizer, --tokenizer). Float32, torch.set_num_threads(--threads),
inference_mode, the prompt "a photograph of an astronaut riding a horse", seed 1.
  --tiny-vae          AutoencoderTiny (TAESD's config) as the pipeline's vae, as diffusers'
                      TAESD recipe does (`pipe.vae = AutoencoderTiny...`)
  --guidance-cutoff F diffusers' documented dynamic-CFG callback_on_step_end recipe: after the
                      step with index int(num_timesteps * F), guidance_scale 0 and the
                      conditional half of prompt_embeds
  --cache N           DeepCache (Ma et al. 2023, cache_layer_id 0, cache_block_id 0, uniform):
                      written here over diffusers' modules (the DeepCache package patches
                      diffusers' UNet the same way); evaluations 0, N, 2N, ... run the whole
                      UNet and keep the input of up_blocks[-1].resnets[L-1] (before its skip
                      is concatenated), the others run conv_in, down_blocks[0]'s first layer
                      and up_blocks[-1] from resnet L-1 on
  --versus-exact      also times the image without --guidance-cutoff and --cache
Fields: engine, bench, shapes, size, steps, sampler, guidance, [guidance_cutoff], [cache],
decoder, threads, iterations, seconds_per_image, best_seconds_per_image, cpu_seconds_per_image,
images_per_hour, [exact_seconds_per_image, exact_cpu_seconds_per_image, ratio_to_exact,
cpu_ratio_to_exact], peak_rss_mb, build_seconds.
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

import sd15_configs  # noqa: E402

SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                    steps_offset=1, set_alpha_to_one=False, clip_sample=False)

# diffusiond's sampler names (Sources/Sampling/Samplers) → diffusers scheduler class and extra config.
SAMPLERS = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {}),
    "dpm++2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}

PRESETS = {
    "sd15": dict(unet=sd15_configs.UNET_SD15, text=sd15_configs.TEXT_SD15, size=512, steps=25, sampler="euler",
                 guidance=7.5, scheduler=dict(SD_SCHEDULER, prediction_type="epsilon"), pad="<|endoftext|>"),
    "sd21": dict(unet=sd15_configs.UNET_SD21, text=sd15_configs.TEXT_SD21, size=768, steps=25, sampler="euler",
                 guidance=7.5, scheduler=dict(SD_SCHEDULER, prediction_type="v_prediction"), pad="!"),
    "sdturbo": dict(unet=sd15_configs.UNET_SD21, text=sd15_configs.TEXT_SD21, size=512, steps=1, sampler="euler_a",
                    guidance=0.0, scheduler=dict(SD_SCHEDULER, prediction_type="epsilon", timestep_spacing="trailing"),
                    pad="!"),
}


class DeepCacheUNet:
    """DeepCache's uniform schedule over a diffusers UNet2DConditionModel: replaces
    `unet.forward` while enabled; `reset()` before each image."""

    def __init__(self, unet, interval):
        self.unet, self.interval = unet, interval
        self.original = unet.forward
        self.branch = len(unet.up_blocks[-1].resnets) - 2  # resnet L-1 of the last up block
        self.kept, self.calls = None, 0
        unet.up_blocks[-1].resnets[self.branch].register_forward_pre_hook(self._keep)
        self.keeping = False
        unet.forward = self.forward

    def reset(self):
        self.kept, self.calls = None, 0

    def _keep(self, module, args):
        if self.keeping:
            hidden = args[0]
            skip_channels = self.unet.config.block_out_channels[0]  # down_blocks[0]'s first layer
            self.kept = hidden[:, : hidden.shape[1] - skip_channels].clone()

    def forward(self, sample, timestep, encoder_hidden_states, **kwargs):
        index, self.calls = self.calls, self.calls + 1
        batch = sample.shape[0]
        if self.interval == 1:
            return self.original(sample, timestep, encoder_hidden_states=encoder_hidden_states, **kwargs)
        if index % self.interval == 0 or self.kept is None or self.kept.shape[0] < batch:
            self.keeping = True
            try:
                return self.original(sample, timestep, encoder_hidden_states=encoder_hidden_states, **kwargs)
            finally:
                self.keeping = False
        u = self.unet
        t = timestep if torch.is_tensor(timestep) else torch.tensor([timestep])
        t = t.reshape(-1).expand(batch)
        emb = u.time_embedding(u.time_proj(t).to(sample.dtype))
        h0 = u.conv_in(sample)
        first = u.down_blocks[0]
        h1 = first.resnets[0](h0, emb)
        if getattr(first, "attentions", None):
            h1 = first.attentions[0](h1, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]
        last = u.up_blocks[-1]
        h = self.kept[-batch:]  # a cond-only batch after [uncond, cond] reuses the cond row
        for j, skip in zip(range(self.branch, len(last.resnets)), (h1, h0)):
            h = last.resnets[j](torch.cat([h, skip], dim=1), emb)
            if getattr(last, "attentions", None):
                h = last.attentions[j](h, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]
        h = u.conv_out(u.conv_act(u.conv_norm_out(h)))
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput
        return UNet2DConditionOutput(sample=h) if kwargs.get("return_dict", True) else (h,)


def build(shapes, sampler, tiny_vae, tokenizer_dir):
    import diffusers
    from diffusers import AutoencoderKL, AutoencoderTiny, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    p = PRESETS[shapes]
    torch.manual_seed(0)
    tokenizer = CLIPTokenizer(os.path.join(tokenizer_dir, "vocab.json"), os.path.join(tokenizer_dir, "merges.txt"),
                              pad_token=p["pad"], model_max_length=77)
    cls, extra = SAMPLERS[sampler]
    scheduler = getattr(diffusers, cls).from_config(dict(p["scheduler"], **extra))
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**sd15_configs.VAE_SD15).eval(),
        text_encoder=CLIPTextModel(CLIPTextConfig(**p["text"])).eval(),
        tokenizer=tokenizer, unet=UNet2DConditionModel(**p["unet"]).eval(), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if tiny_vae:
        pipe.vae = AutoencoderTiny().eval()  # its default config is TAESD's
    pipe.set_progress_bar_config(disable=True)
    return pipe


def cutoff_callback(fraction):
    """diffusers' documented dynamic classifier-free guidance callback."""
    def callback(pipe, step_index, timestep, callback_kwargs):
        if pipe.do_classifier_free_guidance and step_index == int(pipe.num_timesteps * fraction):
            callback_kwargs["prompt_embeds"] = callback_kwargs["prompt_embeds"].chunk(2)[-1]
            pipe._guidance_scale = 0.0
        return callback_kwargs
    return callback


def timed(run, warmup, iterations):
    for _ in range(warmup):
        run()
    times, cpu = [], 0.0
    for _ in range(iterations):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - start)
        cpu += time.process_time() - start_cpu
    return sum(times) / len(times), min(times), cpu / len(times)


def main():
    ap = argparse.ArgumentParser(description="PyTorch twin of diffusion-bench image")
    ap.add_argument("--shapes", default="sd15", choices=sorted(PRESETS))
    ap.add_argument("--size", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--sampler", choices=sorted(SAMPLERS))
    ap.add_argument("--guidance", type=float)
    ap.add_argument("--guidance-cutoff", type=float)
    ap.add_argument("--cache", type=int)
    ap.add_argument("--tiny-vae", action="store_true")
    ap.add_argument("--versus-exact", action="store_true")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokenizer", default="models/clip-tokenizer")
    ap.add_argument("--json", action="store_true", help="accepted for parity; output is JSON")
    a = ap.parse_args()
    p = PRESETS[a.shapes]
    size, steps = a.size or p["size"], a.steps or p["steps"]
    sampler = a.sampler or p["sampler"]
    guidance = p["guidance"] if a.guidance is None else a.guidance
    if size % 8 or steps < 1 or a.iterations < 1 or a.warmup < 0 or guidance < 0:
        raise SystemExit("--size must be a multiple of 8, --steps and --iterations ≥ 1, --warmup and --guidance ≥ 0")
    if a.guidance_cutoff is not None and not 0 < a.guidance_cutoff <= 1:
        raise SystemExit("--guidance-cutoff must be in (0, 1]")
    if a.cache is not None and a.cache < 1:
        raise SystemExit("--cache must be a whole number ≥ 1")
    torch.set_num_threads(a.threads)

    with torch.inference_mode():
        start = time.perf_counter()
        pipe = build(a.shapes, sampler, a.tiny_vae, a.tokenizer)
        deep_cache = DeepCacheUNet(pipe.unet, a.cache) if a.cache and a.cache > 1 else None
        build_seconds = time.perf_counter() - start

        def image(cutoff, cached):
            if deep_cache:
                deep_cache.reset()
                deep_cache.interval = a.cache if cached else 1
            kwargs = {}
            if cutoff is not None:
                kwargs = dict(callback_on_step_end=cutoff_callback(cutoff),
                              callback_on_step_end_tensor_inputs=["prompt_embeds"])
            pipe("a photograph of an astronaut riding a horse", height=size, width=size, num_inference_steps=steps,
                 guidance_scale=guidance, generator=torch.Generator().manual_seed(1), **kwargs)

        mean, best, cpu = timed(lambda: image(a.guidance_cutoff, True), a.warmup, a.iterations)
        exact = timed(lambda: image(None, False), a.warmup, a.iterations) if a.versus_exact else None

    out = {"engine": "pytorch", "bench": "image", "shapes": a.shapes, "size": size, "steps": steps,
           "sampler": sampler, "guidance": guidance}
    if a.guidance_cutoff is not None:
        out["guidance_cutoff"] = a.guidance_cutoff
    if a.cache is not None:
        out["cache"] = a.cache
    out.update({"decoder": "tiny" if a.tiny_vae else "full", "threads": a.threads, "iterations": a.iterations,
                "seconds_per_image": round(mean, 4), "best_seconds_per_image": round(best, 4),
                "cpu_seconds_per_image": round(cpu, 4), "images_per_hour": round(3600 / mean, 2)})
    if exact:
        out.update({"exact_seconds_per_image": round(exact[0], 4), "exact_cpu_seconds_per_image": round(exact[2], 4),
                    "ratio_to_exact": round(mean / exact[0], 4), "cpu_ratio_to_exact": round(cpu / exact[2], 4)})
    out.update({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "build_seconds": round(build_seconds, 2), "torch": torch.__version__, "machine": platform.machine()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
