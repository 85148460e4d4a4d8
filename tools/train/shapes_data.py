"""Scenes of the built-in `shapes` model: sampling, captions and rendering.

Everything here is deterministic from an integer seed. Scene sampling uses only
integer arithmetic on a SplitMix64 stream, so the Swift port in
Sources/Evaluation/SceneSampler.swift draws exactly the same scenes and captions
for the same seed (the adherence benchmark relies on that to make held-out
captions with the training generator and a different seed).

A scene is a background colour and one or two objects. Each object has a colour
(never the background's, never the other object's), a shape, a size (bounding-box
side, 14..22 px on a 64 px image, so at least 1/8 of the side) and one of nine
positions on a 3x3 grid. Objects never overlap: their bounding boxes keep at least
2 px apart, re-drawing the second object until they do.
"""

import numpy as np

MASK64 = (1 << 64) - 1

# Named colours and the sRGB values they are rendered with. The evaluator
# (Sources/Evaluation/NamedColor.swift) classifies pixels to the nearest of these.
COLORS = [
    ("red", (220, 30, 40)),
    ("green", (40, 170, 60)),
    ("blue", (40, 80, 220)),
    ("yellow", (245, 215, 40)),
    ("purple", (140, 50, 170)),
    ("orange", (245, 140, 30)),
    ("white", (245, 245, 245)),
    ("black", (20, 20, 20)),
]
SHAPES = ["circle", "square", "triangle"]
# Row-major 3x3 grid: index = 3 * row + column.
POSITIONS = ["top left", "top", "top right", "left", "center", "right",
             "bottom left", "bottom", "bottom right"]
SIZE_MIN, SIZE_STEPS = 14, 5  # sizes 14, 16, 18, 20, 22


class SplitMix64:
    """SplitMix64 (Steele, Lea, Flood 2014); identical to the Swift port."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        """A number in 0..<n (modulo bias is below 2^-59 for these n)."""
        return self.next() % n


def object_box(obj, size_px=64):
    """Integer centre and bounding box (x0, y0, x1, y1), end-exclusive, of an object.

    The centre starts at its grid cell's centre plus a jitter of -3..3 px and is
    clamped so the object stays 1 px inside the image. For a triangle the centre is
    its area centroid, which lies a third of the height above the base.
    """
    s = obj["size"]
    row, col = divmod(obj["position"], 3)
    cx = (2 * col + 1) * size_px // 6 + obj["dx"]
    cy = (2 * row + 1) * size_px // 6 + obj["dy"]
    half = s // 2
    cx = min(max(cx, half + 1), size_px - half - 1)
    if obj["shape"] == 2:  # triangle: apex 2/3 of the height above the centroid
        up = (2 * s) // 3
        cy = min(max(cy, up + 1), size_px - (s - up) - 1)
        return cx, cy, (cx - half, cy - up, cx - half + s, cy - up + s)
    cy = min(max(cy, half + 1), size_px - half - 1)
    return cx, cy, (cx - half, cy - half, cx - half + s, cy - half + s)


def boxes_apart(a, b, gap=2):
    """True when boxes a and b are at least `gap` px apart horizontally or vertically."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def sample_scene(seed, size_px=64):
    """Draws one scene (dict) from `seed`. See the module docstring."""
    rng = SplitMix64(seed)
    background = rng.below(len(COLORS))
    count = 1 + rng.below(2)
    objects = []
    while len(objects) < count:
        color = rng.below(len(COLORS))
        shape = rng.below(len(SHAPES))
        position = rng.below(len(POSITIONS))
        size = SIZE_MIN + 2 * rng.below(SIZE_STEPS)
        dx = rng.below(7) - 3
        dy = rng.below(7) - 3
        obj = dict(color=color, shape=shape, position=position, size=size, dx=dx, dy=dy)
        if color == background or any(o["color"] == color or o["position"] == position for o in objects):
            continue
        box = object_box(obj, size_px)[2]
        if any(not boxes_apart(box, object_box(o, size_px)[2]) for o in objects):
            continue
        objects.append(obj)
    scene = dict(background=background, objects=objects)
    scene["caption"] = caption(scene, rng)
    return scene


def position_phrase(position, rng):
    name = POSITIONS[position]
    if name == "center":
        return ["in the center", "in the middle"][rng.below(2)]
    if name in ("left", "right"):
        return ["on the " + name, "at the " + name][rng.below(2)]
    return ["at the " + name, "in the " + name][rng.below(2)]


def object_phrase(obj, rng):
    """'a red circle' or 'a small red circle' / 'a big red circle' (size words match the size)."""
    words = []
    if rng.below(4) == 0:
        words.append("small" if obj["size"] <= 16 else ("big" if obj["size"] >= 20 else "medium"))
    words += [COLORS[obj["color"]][0], SHAPES[obj["shape"]]]
    return article(words[0]) + " " + " ".join(words) + " " + position_phrase(obj["position"], rng)


def article(word):
    """'an' before a vowel ('an orange square'), else 'a'."""
    return "an" if word[0] in "aeiou" else "a"


def caption(scene, rng):
    """Caption of a scene in one of several wordings. Grammar (what the evaluator parses):
    a colour word directly before 'background' names the background; every other
    colour word starts an object: colour, shape, then position words up to the next
    object or the background."""
    bg = COLORS[scene["background"]][0]
    objs = " and ".join(object_phrase(o, rng) for o in scene["objects"])
    form = rng.below(4)
    if form == 0:
        return f"{objs} on {article(bg)} {bg} background"
    if form == 1:
        return f"{objs}, {bg} background"
    if form == 2:
        return f"{article(bg)} {bg} background with {objs}"
    return f"{bg} background, {objs}"


def render(scene, size_px=64):
    """Renders a scene as an (H, W, 3) uint8 array: flat colours, hard (aliased) edges."""
    img = np.empty((size_px, size_px, 3), np.uint8)
    img[:] = COLORS[scene["background"]][1]
    ys, xs = np.mgrid[0:size_px, 0:size_px]
    px, py = xs + 0.5, ys + 0.5  # pixel centres
    for obj in scene["objects"]:
        cx, cy, (x0, y0, x1, y1) = object_box(obj, size_px)
        s = obj["size"]
        if obj["shape"] == 0:  # circle inscribed in the box
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            mask = (px - mx) ** 2 + (py - my) ** 2 <= (s / 2) ** 2
        elif obj["shape"] == 1:  # square
            mask = (px >= x0) & (px < x1) & (py >= y0) & (py < y1)
        else:  # isosceles triangle, apex up, base = height = s
            mx = (x0 + x1) / 2
            t = (py - y0) / s  # 0 at the apex, 1 at the base
            mask = (py >= y0) & (py < y1) & (np.abs(px - mx) <= t * s / 2)
        img[mask] = COLORS[obj["color"]][1]
    return img


def scene_record(scene):
    """JSON-friendly description (names, not indices) of a scene."""
    return {
        "caption": scene["caption"],
        "background": COLORS[scene["background"]][0],
        "objects": [{"color": COLORS[o["color"]][0], "shape": SHAPES[o["shape"]],
                     "position": POSITIONS[o["position"]], "size": o["size"]}
                    for o in scene["objects"]],
    }


# Seeds: training scene i uses TRAIN_SEED_BASE + i; held-out evaluation scene i uses
# HELDOUT_SEED_BASE + i (the Swift benchmark uses the same base).
TRAIN_SEED_BASE = 0
HELDOUT_SEED_BASE = 1 << 40

# Every word a caption can contain (the tokenizer gives each its own token).
WORDS = sorted(set(
    [c for c, _ in COLORS] + SHAPES + "top bottom left right center middle".split()
    + "a an at in on the and with background small medium big".split()))
