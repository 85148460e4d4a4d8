#!/usr/bin/env python3
"""OpenVINO side of `diffusion-bench`: the same measurements, for a three-way comparison.

    python3 tools/bench/bench_openvino.py unet --size 512 --batch 2
    python3 tools/bench/bench_openvino.py vae --size 512          # AutoencoderKL.decode
    python3 tools/bench/bench_openvino.py text                    # CLIPTextModel, 77 tokens

    pip install openvino   # tested with openvino 2026.4.1 (PyPI), torch 2.15.0, diffusers 0.42.1

The models are the ones `bench_torch.py` builds (random weights of the real shapes from
sd15_configs.py and sdxl_configs.py, --shapes as there; nothing downloaded), converted in memory with `openvino.convert_model` from
the PyTorch module, as optimum-intel and fastsdcpu do, with static input shapes, and compiled
for "CPU" with float32 inference (`INFERENCE_PRECISION_HINT: f32`: OpenVINO would otherwise
pick bf16 on CPUs that have AMX/AVX512-BF16), `INFERENCE_NUM_THREADS` = --threads (2 by
default, as diffusion-bench on this project's machines) and the LATENCY hint (one stream).
Inputs are the same tensors bench_torch.py feeds (same generator seed).

--profile (as diffusion-bench's): after the timed runs, one more inference with OpenVINO's
per-node counters (`PERF_COUNT`), printed as one JSON line per (node type, kernel OpenVINO
chose, output shape), most time first, with calls and seconds per evaluation and the share of
the nodes' total, so a layer kind can be set beside diffusion-bench's operator of that shape.

Options and defaults follow diffusion-bench: --batch (2 for unet and text = cond + uncond,
1 for vae), --warmup 1, --iterations 2. Prints one JSON line with diffusion-bench's fields
(see bench_torch.py for their meaning); gflop_per_eval is counted on the PyTorch module
(the same graph), and peak_rss_mb includes the PyTorch model kept during conversion.
"""

import gc
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import bench_torch  # noqa: E402


def main():
    args, batch = bench_torch.parse_arguments("OpenVINO reference timings for diffusion-bench")
    try:
        import openvino as ov
    except ImportError:
        raise SystemExit("bench_openvino.py needs OpenVINO: pip install openvino")
    torch.set_num_threads(args.threads)

    with torch.no_grad():  # not inference_mode: its tensors cannot be traced
        model, call, inputs = bench_torch.build(args.component, args.shapes, args.size, batch)
        forward = lambda: call(*inputs)  # noqa: E731
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        counter = FlopCounterMode(display=False)
        with counter:
            forward()
        gflop = counter.get_total_flops() / 1e9

    wrapper = bench_torch.Traceable(model, call).eval()
    with torch.no_grad():
        converted = ov.convert_model(wrapper, example_input=tuple(inputs),
                                     input=[ov.PartialShape(list(x.shape)) for x in inputs])
    compiled = ov.Core().compile_model(converted, "CPU", {
        "INFERENCE_NUM_THREADS": args.threads,
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        **({"PERF_COUNT": True} if args.profile else {}),
    })
    del converted, wrapper, model
    gc.collect()
    request = compiled.create_infer_request()
    feed = [x.numpy() for x in inputs]
    for _ in range(args.warmup):
        request.infer(feed)
    times, cpu = bench_torch.time_evaluations(lambda: request.infer(feed), args)

    bench_torch.print_result("openvino", args, batch, times, cpu, gflop, weight_bytes, openvino=ov.__version__)
    if args.profile:
        print_profile(compiled, request, feed)


def print_profile(compiled, request, feed):
    """One inference with the per-node counters on, grouped by (layer type, kernel, output shape)
    from the runtime graph (its nodes' `execTimeMcs`, `layerType`, `primitiveType`)."""
    request.infer(feed)
    groups = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()

        def field(name):
            return str(info[name].astype(str)) if name in info else ""
        try:
            seconds = float(field("execTimeMcs")) / 1e6
        except ValueError:
            continue  # "not_executed" and the like
        if seconds <= 0:
            continue
        shape = "x".join(str(d) for d in op.get_output_partial_shape(0).to_shape()) if op.get_output_size() else ""
        key = (field("layerType"), field("primitiveType"), shape)
        calls, total, first = groups.get(key, (0, 0.0, op.get_friendly_name()))
        groups[key] = (calls + 1, total + seconds, first)
    total = sum(t for _, t, _ in groups.values())
    for (kind, kernel, shape), (calls, seconds, first) in sorted(groups.items(), key=lambda g: -g[1][1]):
        print(json.dumps({"operator": f"{kind} {kernel} {shape}", "calls_per_eval": calls,
                          "seconds_per_eval": seconds, "share": seconds / total, "first": first}))


if __name__ == "__main__":
    main()
