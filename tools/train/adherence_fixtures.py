#!/usr/bin/env python3
"""Writes the adherence evaluator's test fixtures (Tests/Fixtures/adherence/):

  scene-NN.ppm        scenes rendered by the training renderer (must score 100%)
  bad-*.ppm           the same scenes hand-corrupted: one field changed in the image,
                      the caption kept (the evaluator must fail exactly that field)
  cases.json          [{"file", "caption", "expect": {"background": bool,
                        "objects": [{"color": bool, "shape": bool, "position": bool}]}}]
  captions-by-seed.json  [{"seed", "caption"}] for checking the Swift SceneSampler port

    python3 tools/train/adherence_fixtures.py [--out Tests/Fixtures/adherence]
"""
import argparse
import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_data as sd  # noqa: E402

FIXTURE_SEED_BASE = sd.HELDOUT_SEED_BASE + 100_000


def write_ppm(path, img):
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (img.shape[1], img.shape[0]) + img.tobytes())


def expect(scene, bg=True, obj=None):
    objs = [{"color": True, "shape": True, "position": True} for _ in scene["objects"]]
    if obj:
        k, field = obj
        objs[k][field] = False
    return {"background": bg, "objects": objs}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="Tests/Fixtures/adherence")
    p.add_argument("--count", type=int, default=24)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cases = []
    scenes = [sd.sample_scene(FIXTURE_SEED_BASE + i) for i in range(args.count)]
    for i, s in enumerate(scenes):
        name = f"scene-{i:02d}.ppm"
        write_ppm(os.path.join(args.out, name), sd.render(s))
        cases.append({"file": name, "caption": s["caption"], "expect": expect(s)})
    # Corruptions, one field each, cycling over the scenes.
    for i, s in enumerate(scenes[:16]):
        kind = ["color", "position", "shape", "background"][i % 4]
        bad = copy.deepcopy(s)
        k = i % len(s["objects"])
        o = bad["objects"][k]
        used = {x["color"] for x in bad["objects"]} | {bad["background"]}
        if kind == "color":
            o["color"] = next(c for c in range(len(sd.COLORS)) if c not in used)
            exp = expect(s, obj=(k, "color"))
        elif kind == "shape":
            o["shape"] = (o["shape"] + 1) % 3
            others = [sd.object_box(x)[2] for j, x in enumerate(bad["objects"]) if j != k]
            if any(not sd.boxes_apart(sd.object_box(o)[2], b) for b in others):
                continue
            exp = expect(s, obj=(k, "shape"))
        elif kind == "position":
            taken = {x["position"] for x in bad["objects"]}
            others = [sd.object_box(x)[2] for j, x in enumerate(bad["objects"]) if j != k]
            for pos in [8, 0, 2, 6, 4, 1, 3, 5, 7]:
                if pos in taken:
                    continue
                o["position"], o["dx"], o["dy"] = pos, 0, 0
                if all(sd.boxes_apart(sd.object_box(o)[2], b) for b in others):
                    break
            else:
                continue
            exp = expect(s, obj=(k, "position"))
        else:
            bad["background"] = next(c for c in range(len(sd.COLORS)) if c not in used)
            exp = expect(s, bg=False)
        name = f"bad-{kind}-{i:02d}.ppm"
        write_ppm(os.path.join(args.out, name), sd.render(bad))
        cases.append({"file": name, "caption": s["caption"], "expect": exp})
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    seeds = list(range(20)) + [sd.HELDOUT_SEED_BASE + i for i in range(20)] + [2**63 + 12345, 2**64 - 1]
    with open(os.path.join(args.out, "captions-by-seed.json"), "w") as f:
        json.dump([{"seed": str(x), "caption": sd.sample_scene(x)["caption"]} for x in seeds], f, indent=1)
    print(f"{len(cases)} cases in {args.out}")


if __name__ == "__main__":
    main()
