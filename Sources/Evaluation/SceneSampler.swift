/// Swift port of the scene and caption generator of tools/train/shapes_data.py
/// (`sample_scene`, `caption`). It draws from the same SplitMix64 stream with the same
/// integer arithmetic, so a seed gives exactly the caption the training tool gives;
/// the adherence benchmark uses it to make held-out captions (seeds from
/// `heldOutSeedBase`, which training never uses).
public enum SceneSampler {
    /// First seed of the held-out scenes (`HELDOUT_SEED_BASE` in shapes_data.py, 2^40).
    public static let heldOutSeedBase: UInt64 = 1 << 40

    /// One object of a sampled scene.
    public struct Object: Sendable, Equatable {
        public var color: NamedColor
        public var shape: ShapeKind
        public var position: GridPosition
        /// Bounding-box side in pixels at 64x64 (14, 16, …, 22).
        public var size: Int
        /// Jitter of the centre from its grid cell's centre, −3…3 px each.
        public var dx: Int
        public var dy: Int

        /// Integer bounding box, end-exclusive (`object_box` in shapes_data.py): the centre
        /// is the grid cell's centre plus the jitter, clamped 1 px inside the image; a
        /// triangle's centre is its area centroid, two thirds of the height below the apex.
        public func box(imageSize: Int = 64) -> PixelBox {
            SceneSampler.box(shape: shape.rawValue, position: position.index, size: size, dx: dx, dy: dy,
                             sizePx: imageSize)
        }
    }

    /// An end-exclusive pixel rectangle: columns x0..<x1, rows y0..<y1.
    public struct PixelBox: Sendable, Equatable {
        public var x0: Int, y0: Int, x1: Int, y1: Int

        /// At least `gap` px apart horizontally or vertically (`boxes_apart` in shapes_data.py).
        func isApart(from b: PixelBox, gap: Int = 2) -> Bool {
            x1 + gap <= b.x0 || b.x1 + gap <= x0 || y1 + gap <= b.y0 || b.y1 + gap <= y0
        }
    }

    /// A sampled scene and its caption.
    public struct Scene: Sendable, Equatable {
        public var background: NamedColor
        public var objects: [Object]
        public var caption: String
    }

    /// SplitMix64 (Steele, Lea, Flood 2014), as in shapes_data.py.
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    private struct Drawn {
        var color: Int, shape: Int, position: Int, size: Int, dx: Int, dy: Int
    }

    /// Integer bounding box, end-exclusive — `object_box` in shapes_data.py.
    static func box(shape: Int, position: Int, size s: Int, dx: Int, dy: Int, sizePx: Int) -> PixelBox {
        let row = position / 3, col = position % 3
        var cx = (2 * col + 1) * sizePx / 6 + dx
        var cy = (2 * row + 1) * sizePx / 6 + dy
        let half = s / 2
        cx = min(max(cx, half + 1), sizePx - half - 1)
        if shape == 2 {
            let up = (2 * s) / 3
            cy = min(max(cy, up + 1), sizePx - (s - up) - 1)
            return PixelBox(x0: cx - half, y0: cy - up, x1: cx - half + s, y1: cy - up + s)
        }
        cy = min(max(cy, half + 1), sizePx - half - 1)
        return PixelBox(x0: cx - half, y0: cy - half, x1: cx - half + s, y1: cy - half + s)
    }

    private static func box(_ o: Drawn) -> PixelBox {
        box(shape: o.shape, position: o.position, size: o.size, dx: o.dx, dy: o.dy, sizePx: 64)
    }

    /// The scene of `seed` (`sample_scene` in shapes_data.py).
    public static func scene(seed: UInt64) -> Scene {
        var rng = SplitMix64(state: seed)
        let colorCount = NamedColor.allCases.count
        let background = rng.below(colorCount)
        let count = 1 + rng.below(2)
        var drawn: [Drawn] = []
        while drawn.count < count {
            let o = Drawn(color: rng.below(colorCount), shape: rng.below(3), position: rng.below(9),
                          size: 14 + 2 * rng.below(5), dx: rng.below(7) - 3, dy: rng.below(7) - 3)
            if o.color == background || drawn.contains(where: { $0.color == o.color || $0.position == o.position }) {
                continue
            }
            let b = box(o)
            if drawn.contains(where: { !b.isApart(from: box($0)) }) { continue }
            drawn.append(o)
        }
        let objects = drawn.map {
            Object(color: NamedColor(rawValue: $0.color) ?? .red, shape: ShapeKind(rawValue: $0.shape) ?? .circle,
                   position: GridPosition(index: $0.position), size: $0.size, dx: $0.dx, dy: $0.dy)
        }
        let bg = NamedColor(rawValue: background) ?? .red
        return Scene(background: bg, objects: objects, caption: caption(background: bg, objects: objects, rng: &rng))
    }

    private static func article(_ word: String) -> String {
        guard let first = word.first else { return "a" }
        return "aeiou".contains(first) ? "an" : "a"
    }

    private static func positionPhrase(_ p: GridPosition, rng: inout SplitMix64) -> String {
        let name = p.name
        if name == "center" { return ["in the center", "in the middle"][rng.below(2)] }
        if name == "left" || name == "right" { return ["on the " + name, "at the " + name][rng.below(2)] }
        return ["at the " + name, "in the " + name][rng.below(2)]
    }

    private static func objectPhrase(_ o: Object, rng: inout SplitMix64) -> String {
        var words: [String] = []
        if rng.below(4) == 0 {
            words.append(o.size <= 16 ? "small" : (o.size >= 20 ? "big" : "medium"))
        }
        words += [o.color.name, o.shape.name]
        return article(words[0]) + " " + words.joined(separator: " ") + " " + positionPhrase(o.position, rng: &rng)
    }

    private static func caption(background: NamedColor, objects: [Object], rng: inout SplitMix64) -> String {
        let bg = background.name
        let objs = objects.map { objectPhrase($0, rng: &rng) }.joined(separator: " and ")
        switch rng.below(4) {
        case 0: return "\(objs) on \(article(bg)) \(bg) background"
        case 1: return "\(objs), \(bg) background"
        case 2: return "\(article(bg)) \(bg) background with \(objs)"
        default: return "\(bg) background, \(objs)"
        }
    }
}
