"""Small helpers of train.py: logging, device choice, reproducible batches, learning rate."""

import math
import os

import torch


def log(work, *fields):
    line = " ".join(str(f) for f in fields)
    print(line, flush=True)
    with open(os.path.join(work, "train.log"), "a") as f:
        f.write(line + "\n")


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batch_rng(seed, phase, step):
    """A generator that depends only on (seed, phase, step): resuming replays the same batches."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + phase * 10_000_019 + step) & 0x7FFF_FFFF_FFFF_FFFF)
    return g


def to_device(t, device):
    """Host tensor -> device without a synchronizing copy (pinned, non-blocking) on CUDA."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def lr_at(step, total, peak, warmup=200):
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))
