#!/usr/bin/env python3
"""PyTorch side of `diffusion-bench`: the same measurements, for side-by-side comparison.

    python3 tools/bench/bench_torch.py unet --shapes sd15 --size 512 --batch 2 [--json]
    python3 tools/bench/bench_torch.py unet --shapes sdxl --size 1024 --batch 2
    python3 tools/bench/bench_torch.py vae --size 512        # AutoencoderKL.decode
    python3 tools/bench/bench_torch.py text                  # CLIPTextModel, 77 tokens
    python3 tools/bench/bench_torch.py text --shapes sd21 --batch 1   # OpenCLIP ViT-H (SD 2.x, SD-Turbo)
    python3 tools/bench/bench_torch.py text --shapes sdxl    # both SDXL encoders

Random weights of the real shapes (configs in sd15_configs.py, sdxl_configs.py; nothing
downloaded): --shapes sd15 (all three components), sd21 (unet; text = OpenCLIP ViT-H's 23 layers, as
SD 2.x and SD-Turbo run it, last_hidden_state), sdxl (unet with its text_time
conditioning: random pooled text embeds, time ids (size, size, 0, 0, size, size); vae = SD's
shapes; text = CLIP-L penultimate states + OpenCLIP-bigG with projection, as
StableDiffusionXLPipeline.encode_prompt runs them), ssd1b and vega (unet). SDXL-Turbo's case is
--shapes sdxl --size 512 --batch 1.
float32, torch.set_num_threads(2) unless --threads says otherwise, inference_mode.
Options and defaults follow diffusion-bench: --batch (2 for unet and text = cond + uncond,
1 for vae), --warmup 1, --iterations 2. Prints one JSON line with diffusion-bench's fields:
  seconds_per_eval       mean wall time of the timed evaluations
  best_seconds_per_eval  the fastest of them
  cpu_seconds_per_eval   mean process CPU time (all threads) per evaluation
  gflop_per_eval         counted once with torch.utils.flop_counter.FlopCounterMode (matmul,
                         conv, attention; a multiply-add counts as 2 FLOPs; norms, activations
                         and other element-wise work are not counted)
  gflops                 achieved: gflop_per_eval / seconds_per_eval
  gflops_per_cpu_s       gflop_per_eval / cpu_seconds_per_eval: less sensitive to other
                         processes on the cores than wall time
  peak_rss_mb            getrusage(RUSAGE_SELF).ru_maxrss at the end (weights, activations,
                         the interpreter), in MiB
Inputs: unet — latents (batch, 4, size/8, size/8), timestep 500, encoder states
(batch, 77, cross_attention_dim); vae — latents (batch, 4, size/8, size/8) → image (batch, 3, size, size);
text — token ids (batch, 77).
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
import sdxl_configs  # noqa: E402

UNETS = {"sd15": sd15_configs.UNET_SD15, "sd21": sd15_configs.UNET_SD21, "sdxl": sdxl_configs.UNET_SDXL,
         "ssd1b": sdxl_configs.UNET_SSD1B, "vega": sdxl_configs.UNET_VEGA}
VAES = {"sd15": sd15_configs.VAE_SD15, "sdxl": sdxl_configs.VAE_SDXL}
TEXTS = {"sd15": [sd15_configs.TEXT_SD15], "sd21": [sd15_configs.TEXT_SD21], "sdxl": [sdxl_configs.TEXT_SDXL_L, sdxl_configs.TEXT_SDXL_G]}
SHAPES = {"unet": UNETS, "vae": VAES, "text": TEXTS}


class Traceable(torch.nn.Module):
    """`call(*inputs)` as a module owning `model`'s parameters, so exporters
    (openvino.convert_model) can trace it."""

    def __init__(self, model, call):
        super().__init__()
        self.model = model
        self.call = call

    def forward(self, *inputs):
        return self.call(*inputs)


def build(component, shapes, size, batch):
    """Returns (module, call, inputs): `call(*inputs)` is one evaluation; inputs made once."""
    g = torch.Generator().manual_seed(0)
    if shapes not in SHAPES[component]:
        raise SystemExit(f"{component}: --shapes is one of {', '.join(SHAPES[component])}, got {shapes!r}")
    if component == "unet":
        from diffusers import UNet2DConditionModel
        config = UNETS[shapes]
        model = UNet2DConditionModel(**config).eval()
        lat = torch.randn(batch, 4, size // 8, size // 8, generator=g)
        ctx = torch.randn(batch, 77, config["cross_attention_dim"], generator=g)
        t = torch.tensor(500.0)
        if config.get("addition_embed_type") != "text_time":
            return model, lambda x, s, c: model(x, s, encoder_hidden_states=c).sample, [lat, t, ctx]
        text_embeds = torch.randn(batch, sdxl_configs.POOLED_WIDTH, generator=g)
        time_ids = torch.tensor([[size, size, 0, 0, size, size]] * batch, dtype=torch.float32)

        def call(x, s, c, te, ti):
            return model(x, s, encoder_hidden_states=c, added_cond_kwargs={"text_embeds": te, "time_ids": ti}).sample
        return model, call, [lat, t, ctx, text_embeds, time_ids]
    if component == "vae":
        from diffusers import AutoencoderKL
        model = AutoencoderKL(**VAES[shapes]).eval()
        lat = torch.randn(batch, 4, size // 8, size // 8, generator=g)
        return model, lambda x: model.decode(x).sample, [lat]
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    ids = torch.randint(0, 49406, (batch, 77), generator=g)
    if shapes in ("sd15", "sd21"):
        model = CLIPTextModel(CLIPTextConfig(**TEXTS[shapes][0])).eval()
        return model, lambda x: model(x).last_hidden_state, [ids]
    # StableDiffusionXLPipeline.encode_prompt: both encoders with output_hidden_states, the
    # penultimate states of each, text_embeds of the second.
    first = CLIPTextModel(CLIPTextConfig(**sdxl_configs.TEXT_SDXL_L)).eval()
    second = CLIPTextModelWithProjection(CLIPTextConfig(**sdxl_configs.TEXT_SDXL_G)).eval()
    model = torch.nn.ModuleList([first, second])

    def call(x):
        a = first(x, output_hidden_states=True)
        b = second(x, output_hidden_states=True)
        return torch.cat([a.hidden_states[-2], b.hidden_states[-2]], dim=-1), b.text_embeds
    return model, call, [ids]


def print_result(engine, args, batch, times, cpu, gflop, weight_bytes, **versions):
    """Prints diffusion-bench's JSON line for `times` (wall seconds per evaluation) and `cpu`
    (process CPU seconds over all of them); shared with bench_openvino.py."""
    seconds = sum(times) / len(times)
    cpu_seconds = cpu / len(times)
    print(json.dumps({
        "engine": engine,
        "bench": "vae_decode" if args.component == "vae" else args.component,
        "shapes": args.shapes, "size": None if args.component == "text" else args.size,
        "batch": batch, "threads": args.threads, "dtype": "float32",
        "iterations": len(times), "times": [round(t, 4) for t in times],
        "seconds_per_eval": round(seconds, 4), "best_seconds_per_eval": round(min(times), 4),
        "cpu_seconds_per_eval": round(cpu_seconds, 4),
        "gflop_per_eval": round(gflop, 3), "gflops": round(gflop / seconds, 2),
        "gflops_per_cpu_s": round(gflop / cpu_seconds, 2),
        "weights_mb": round(weight_bytes / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **versions, "torch": torch.__version__, "machine": platform.machine(),
    }))


def time_evaluations(forward, args):
    """Runs `forward` --iterations times: (wall seconds of each, process CPU seconds of all).
    With --paced, prints "# ready" and waits for a line on stdin before each evaluation (stops
    at end of input) and prints "# done SECONDS" after it: compare.py --paced's protocol, the
    same as diffusion-bench's. Shared with bench_openvino.py."""
    times, cpu = [], 0.0
    for _ in range(args.iterations):
        if args.paced:
            print("# ready", flush=True)
            if not sys.stdin.readline():
                break
        start, start_cpu = time.perf_counter(), time.process_time()
        forward()
        times.append(time.perf_counter() - start)
        cpu += time.process_time() - start_cpu
        if args.paced:
            print(f"# done {times[-1]:.6f}", flush=True)
    if not times:
        raise SystemExit("--paced: input ended before the first evaluation")
    return times, cpu


def parse_arguments(description):
    """diffusion-bench's options, shared with bench_openvino.py: (args, batch), where batch
    defaults to 2 for unet and text (cond + uncond) and 1 for vae."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("component", choices=["unet", "vae", "text"])
    ap.add_argument("--shapes", default="sd15", choices=list(UNETS))
    ap.add_argument("--size", type=int, default=512, help="image side in pixels (multiple of 8)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iterations", "--iters", dest="iterations", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="accepted for parity; output is JSON")
    ap.add_argument("--profile", action="store_true",
                    help="bench_openvino.py only: also one JSON line per operator kind and shape, most time first")
    ap.add_argument("--paced", action="store_true",
                    help="wait for a line on stdin before each timed evaluation (compare.py --paced)")
    args = ap.parse_args()
    if args.size % 8 != 0 or args.iterations < 1 or args.warmup < 0:
        raise SystemExit("--size must be a multiple of 8, --iterations ≥ 1, --warmup ≥ 0")
    return args, args.batch or (1 if args.component == "vae" else 2)


def main():
    args, batch = parse_arguments("PyTorch reference timings for diffusion-bench")
    torch.set_num_threads(args.threads)

    with torch.inference_mode():
        model, call, inputs = build(args.component, args.shapes, args.size, batch)
        forward = lambda: call(*inputs)  # noqa: E731
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        for _ in range(args.warmup):
            forward()
        times, cpu = time_evaluations(forward, args)
        counter = FlopCounterMode(display=False)
        with counter:
            forward()
        gflop = counter.get_total_flops() / 1e9

    print_result("pytorch", args, batch, times, cpu, gflop, weight_bytes)


if __name__ == "__main__":
    main()
