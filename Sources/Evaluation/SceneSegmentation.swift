import Pipeline

/// An image split into its background, its objects and the stray pixels between them, as the
/// strict evaluator sees it (`ShapeDetector`):
///
/// 1. Every pixel is labelled with its nearest named colour (`NamedColor.nearest`).
/// 2. The background colour is the most frequent label on the image border.
/// 3. Objects are 4-connected regions of one other label with at least
///    `StrictRules.objectPixels` pixels and a body (their seeds); a region enclosing another
///    is a halo around it.
/// 4. Pixels within `StrictRules.edgeReach` of a seed are judged against the line between the
///    background's median colour and the seed's: on that line they are edge blends (joined to
///    the object from halfway on), off it they are a third colour.
/// 5. Third-colour pixels and small regions away from every object are "stray": 8-connected
///    groups of them are specks, owned by the object they touch (within reach) or else by the
///    background.
struct SceneSegmentation {
    /// A connected group of stray pixels.
    struct Speck {
        var pixels: Int
        /// Nearest named colour of its median.
        var color: NamedColor
        var x: Int, y: Int
        /// The object it sits against (index into `objects`), or nil: on the background.
        var owner: Int?
    }

    /// One object's pixels.
    struct Region {
        /// The seed: a 4-connected region of one label.
        var seed: [Int]
        var label: NamedColor
        /// Seed plus the edge blends at least halfway towards the object's colour.
        var pixels: [Int]
        /// How mixed the pixels within reach (or in the seed) are: the sum of 4·f·(1 − f) over
        /// those a fraction f of 0.1…0.9 of the way from the background to the object's colour
        /// (and near that line). A half-covered pixel counts 1; a hard edge adds nothing; a
        /// straight edge blurred by a Gaussian of σ px adds about 2σ per pixel of its length.
        var blendWeight = 0.0
    }

    let width: Int, height: Int
    let background: NamedColor
    /// Median colour of the background-labelled pixels away from every object.
    let backgroundMedian: RGB
    var objects: [Region] = []
    var specks: [Speck] = []
    /// Pixels farther than the reach from every object and not stray: the background proper.
    var backgroundPixels: [Int] = []
    /// Stray pixels (members of `specks`).
    var stray: [Bool]

    init(_ image: RGBImage, rules: StrictRules) {
        let w = image.width, h = image.height, n = w * h
        width = w
        height = h
        var labels = [Int](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { px in
            for i in 0..<n { labels[i] = NamedColor.nearest(r: px[3 * i], g: px[3 * i + 1], b: px[3 * i + 2]).rawValue }
        }
        // Background: the most frequent label on the border (ties: the earlier colour).
        var borderCounts = [Int](repeating: 0, count: NamedColor.allCases.count)
        for x in 0..<w {
            borderCounts[labels[x]] += 1
            if h > 1 { borderCounts[labels[(h - 1) * w + x]] += 1 }
        }
        for y in 1..<max(1, h - 1) {
            borderCounts[labels[y * w]] += 1
            if w > 1 { borderCounts[labels[y * w + w - 1]] += 1 }
        }
        var bg = 0
        for c in 1..<borderCounts.count where borderCounts[c] > borderCounts[bg] { bg = c }
        background = NamedColor(rawValue: bg) ?? .black

        // Seeds: 4-connected regions of one non-background label, large enough and with a
        // body (not a thin rim such as the blend ring around a soft edge or a halo).
        let objectLimit = rules.objectLimit(imagePixels: n)
        let bodyLimit = objectLimit / 4
        var seedOf = [Int](repeating: -1, count: n)
        var visited = [Bool](repeating: false, count: n)
        var small: [Int] = []
        for start in 0..<n where !visited[start] && labels[start] != bg {
            let component = Self.component(from: start, width: w, height: h, visited: &visited) { labels[$0] == labels[start] }
            let body = component.count >= objectLimit ? Self.interiorCount(component, labels: labels, width: w, height: h) : 0
            if body >= bodyLimit {
                for p in component { seedOf[p] = objects.count }
                objects.append(Region(seed: component, label: NamedColor(rawValue: labels[start]) ?? .black,
                                      pixels: component))
            } else {
                small += component
            }
        }
        // A seed that encloses another is a ring around it (a halo), not an object.
        let seeds = objects.map(\.seed)
        let rings = Set(seeds.indices.filter { a in
            seeds.indices.contains { b in b != a && Self.encloses(seeds[a], seeds[b], width: w) }
        })
        if !rings.isEmpty {
            var kept: [Region] = []
            for (i, region) in objects.enumerated() {
                if rings.contains(i) {
                    small += region.seed
                    for p in region.seed { seedOf[p] = -1 }
                } else {
                    for p in region.seed { seedOf[p] = kept.count }
                    kept.append(region)
                }
            }
            objects = kept
        }

        // Nearest seed within reach (8-neighbourhood, breadth first from every seed at once).
        var near = seedOf
        var frontier = (0..<n).filter { seedOf[$0] >= 0 }
        for _ in 0..<rules.reach(imageSide: min(w, h)) {
            var next: [Int] = []
            for p in frontier {
                let x = p % w, y = p / w
                for dy in -1...1 {
                    for dx in -1...1 {
                        let qx = x + dx, qy = y + dy
                        guard qx >= 0, qx < w, qy >= 0, qy < h else { continue }
                        let q = qy * w + qx
                        if near[q] < 0 {
                            near[q] = near[p]
                            next.append(q)
                        }
                    }
                }
            }
            frontier = next
        }

        var awayFromObjects: [Int] = []
        for i in 0..<n where near[i] < 0 && labels[i] == bg { awayFromObjects.append(i) }
        backgroundMedian = awayFromObjects.isEmpty ? RGB(background) : RGB.median(of: awayFromObjects, in: image)
        let seedMedians = objects.map { RGB.median(of: $0.seed, in: image) }

        // Edge blends and third colours around each object; strays elsewhere.
        var stray = [Bool](repeating: false, count: n)
        for p in small where near[p] < 0 { stray[p] = true }
        for i in 0..<n where near[i] >= 0 {
            let s = near[i]
            let mix = RGB(image, pixel: i).blend(from: backgroundMedian, to: seedMedians[s])
            if seedOf[i] < 0 && mix.residual > rules.blendResidual {
                stray[i] = true
                continue
            }
            if mix.residual <= rules.blendResidual && mix.fraction >= 0.1 && mix.fraction <= 0.9 {
                objects[s].blendWeight += 4 * mix.fraction * (1 - mix.fraction)
            }
            if seedOf[i] < 0 && mix.fraction >= 0.5 { objects[s].pixels.append(i) }
        }
        self.stray = stray

        // Specks: 8-connected groups of stray pixels.
        var seen = [Bool](repeating: false, count: n)
        for start in 0..<n where stray[start] && !seen[start] {
            let group = Self.component(from: start, width: w, height: h, visited: &seen, diagonal: true) { stray[$0] }
            let owner = group.lazy.map { near[$0] }.first { $0 >= 0 }
            let median = RGB.median(of: group, in: image)
            specks.append(Speck(pixels: group.count, color: median.nearestName, x: start % w, y: start / w,
                                owner: owner))
        }
        for i in 0..<n where near[i] < 0 && !stray[i] { backgroundPixels.append(i) }
    }

    /// Pixels of `component` whose four neighbours all carry its label.
    static func interiorCount(_ component: [Int], labels: [Int], width w: Int, height h: Int) -> Int {
        var count = 0
        for p in component {
            let x = p % w, y = p / w, l = labels[p]
            if x > 0, y > 0, x < w - 1, y < h - 1, labels[p - 1] == l, labels[p + 1] == l, labels[p - w] == l,
               labels[p + w] == l { count += 1 }
        }
        return count
    }

    /// Whether `inner`'s first pixel lies in a hole of `outer` (inside `outer`'s outline
    /// with holes filled, not on it).
    static func encloses(_ outer: [Int], _ inner: [Int], width w: Int) -> Bool {
        guard let probe = inner.first else { return false }
        var x0 = Int.max, y0 = Int.max, x1 = Int.min, y1 = Int.min
        for p in outer { x0 = min(x0, p % w); x1 = max(x1, p % w); y0 = min(y0, p / w); y1 = max(y1, p / w) }
        let px = probe % w, py = probe / w
        guard px > x0, px < x1, py > y0, py < y1 else { return false }
        let bw = x1 - x0 + 1, bh = y1 - y0 + 1
        var cells = [Bool](repeating: false, count: bw * bh)
        for p in outer { cells[(p / w - y0) * bw + (p % w - x0)] = true }
        return ShapeDetector.fillHoles(cells, width: bw, height: bh)[(py - y0) * bw + (px - x0)]
    }

    /// The connected pixels from `start` for which `member` holds (4- or 8-neighbourhood),
    /// marking them in `visited`.
    static func component(from start: Int, width w: Int, height h: Int, visited: inout [Bool],
                          diagonal: Bool = false, member: (Int) -> Bool) -> [Int] {
        var out: [Int] = []
        var stack = [start]
        visited[start] = true
        while let p = stack.popLast() {
            out.append(p)
            let x = p % w, y = p / w
            for dy in -1...1 {
                for dx in -1...1 where (dx != 0 || dy != 0) && (diagonal || dx == 0 || dy == 0) {
                    let qx = x + dx, qy = y + dy
                    guard qx >= 0, qx < w, qy >= 0, qy < h else { continue }
                    let q = qy * w + qx
                    if !visited[q] && member(q) {
                        visited[q] = true
                        stack.append(q)
                    }
                }
            }
        }
        return out
    }
}
