#!/usr/bin/env python3
"""Writes Tests/Fixtures/adherence/render-checksums.json: the FNV-1a 64 hash of the RGB
bytes of the training renderer's image (shapes_data.render, 64x64, row-major RGB) for
training scenes 0..299 and held-out scenes 2^40 + 0..99, so the Swift port
(Sources/Evaluation/SceneRenderer.swift) is checked pixel for pixel without committing
the images.

    python3 tools/train/render_checksums.py [--out Tests/Fixtures/adherence/render-checksums.json]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_data as sd  # noqa: E402

FNV_OFFSET, FNV_PRIME, MASK64 = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def fnv1a64(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="Tests/Fixtures/adherence/render-checksums.json")
    args = p.parse_args()
    seeds = [sd.TRAIN_SEED_BASE + i for i in range(300)] + [sd.HELDOUT_SEED_BASE + i for i in range(100)]
    entries = [{"seed": str(s), "fnv1a64": "%016x" % fnv1a64(sd.render(sd.sample_scene(s)).tobytes())}
               for s in seeds]
    with open(args.out, "w") as f:
        json.dump(entries, f, indent=0)
        f.write("\n")
    print(f"{len(entries)} checksums in {args.out}")


if __name__ == "__main__":
    main()
