import Foundation

/// An object's outline as a binary mask over its bounding box (holes filled), and the
/// strict evaluator's shape rules on it (issue 18): a square has straight sides and fills at
/// least about 88% of its box; a circle is round, about π/4 of its box, as wide as high; a
/// triangle fills well under two thirds of its box and is pointed at the top. Every shape is
/// convex. Thresholds: `StrictRules`.
struct OutlineMask {
    let width: Int, height: Int
    /// Row-major, `width` × `height`.
    let cells: [Bool]

    subscript(x: Int, y: Int) -> Bool { cells[y * width + x] }

    var area: Int { cells.reduce(0) { $0 + ($1 ? 1 : 0) } }
    var fill: Double { Double(area) / Double(width * height) }

    /// Pixels with a 4-neighbour outside the mask (or on the box's edge).
    var outlinePixels: Int {
        var count = 0
        for y in 0..<height {
            for x in 0..<width where self[x, y] {
                if x == 0 || y == 0 || x == width - 1 || y == height - 1 || !self[x - 1, y] || !self[x + 1, y]
                    || !self[x, y - 1] || !self[x, y + 1] { count += 1 }
            }
        }
        return count
    }

    /// First and last filled column of row `y` (nil for an empty row).
    func rowSpan(_ y: Int) -> (first: Int, last: Int)? {
        guard let f = (0..<width).first(where: { self[$0, y] }), let l = (0..<width).last(where: { self[$0, y] }) else { return nil }
        return (f, l)
    }

    /// First and last filled row of column `x`.
    func columnSpan(_ x: Int) -> (first: Int, last: Int)? {
        guard let f = (0..<height).first(where: { self[x, $0] }), let l = (0..<height).last(where: { self[x, $0] }) else { return nil }
        return (f, l)
    }

    /// Pixels inside the span of their row or of their column but not in the mask: the area
    /// of notches, bites and inward bows (0 for any orthogonally convex shape).
    var concavePixels: Int {
        var count = 0
        for y in 0..<height {
            for x in 0..<width where !self[x, y] {
                let inRow = rowSpan(y).map { x > $0.first && x < $0.last } ?? false
                let inColumn = columnSpan(x).map { y > $0.first && y < $0.last } ?? false
                if inRow || inColumn { count += 1 }
            }
        }
        return count
    }
}

/// What the shape rules made of an outline.
struct ShapeVerdict {
    /// The shape whose rules all hold (at most one can: their fill ranges are disjoint).
    var shape: ShapeKind?
    /// Why the outline is not a clean shape, for the shape it is closest to by fill.
    var defects: [String]
}

extension StrictRules {
    /// Judges `mask` (an object's outline with holes filled) by the rules of each shape.
    func judge(_ mask: OutlineMask, imagePixels: Int) -> ShapeVerdict {
        var common: [String] = []
        let concave = mask.concavePixels
        if concave > concaveLimit(imagePixels: imagePixels) {
            common.append("outline not convex (\(concave) px of notches or inward bows)")
        }
        let fill = mask.fill
        let kinds: [(ShapeKind, [String])] = [(.square, squareDefects(mask)), (.circle, circleDefects(mask)),
                                              (.triangle, triangleDefects(mask))]
        if common.isEmpty, let pass = kinds.first(where: { $0.1.isEmpty }) {
            return ShapeVerdict(shape: pass.0, defects: [])
        }
        // Report against the shape nearest by fill (ideal 1, π/4, ½).
        let ideal: [ShapeKind: Double] = [.square: 1, .circle: Double.pi / 4, .triangle: 0.5]
        let nearest = kinds.min { abs((ideal[$0.0] ?? 0) - fill) < abs((ideal[$1.0] ?? 0) - fill) }
        let named = nearest.map { [String]($0.1.map { "\($0)" }) } ?? []
        return ShapeVerdict(shape: nil, defects: common + named.map { "\(nearest?.0.name ?? "shape"): \($0)" })
    }

    private func aspectDefect(_ mask: OutlineMask) -> String? {
        let big = max(mask.width, mask.height)
        let allowed = max(1, Int(aspectTolerance * Double(big)))
        return abs(mask.width - mask.height) > allowed ? "\(mask.width)×\(mask.height) px, not as wide as high" : nil
    }

    /// Largest spread of the edge position over the middle 60% of each side.
    private func sideSpreads(_ mask: OutlineMask) -> [(String, Int)] {
        func middle(_ n: Int) -> Range<Int> {
            let a = Int((0.2 * Double(n)).rounded()), b = n - a
            return a..<max(a + 1, b)
        }
        func spread(_ values: [Int]) -> Int { (values.max() ?? 0) - (values.min() ?? 0) }
        let columns = middle(mask.width).compactMap { mask.columnSpan($0) }
        let rows = middle(mask.height).compactMap { mask.rowSpan($0) }
        return [("top", spread(columns.map(\.first))), ("bottom", spread(columns.map(\.last))),
                ("left", spread(rows.map(\.first))), ("right", spread(rows.map(\.last)))]
    }

    func squareDefects(_ mask: OutlineMask) -> [String] {
        var d: [String] = []
        if mask.fill < squareFill { d.append(String(format: "fills %.2f of its box (at least %.2f)", mask.fill, squareFill)) }
        if let a = aspectDefect(mask) { d.append(a) }
        let tolerance = max(1, Int(sideStraightness * Double(max(mask.width, mask.height))))
        for (side, s) in sideSpreads(mask) where s > tolerance {
            d.append("\(side) side not straight (varies by \(s) px)")
        }
        return d
    }

    func circleDefects(_ mask: OutlineMask) -> [String] {
        var d: [String] = []
        if !circleFill.contains(mask.fill) {
            d.append(String(format: "fills %.2f of its box (π/4 = 0.79 wanted, %.3f…%.3f)", mask.fill,
                            circleFill.lowerBound, circleFill.upperBound))
        }
        if let a = aspectDefect(mask) { d.append(a) }
        let round = roundness(mask)
        if round < circleRoundness { d.append(String(format: "not round (%.2f overlap with a disc, at least %.2f)", round, circleRoundness)) }
        return d
    }

    /// Intersection over union of the mask with the disc of its area centred on its centroid
    /// (pixel centres at +½).
    func roundness(_ mask: OutlineMask) -> Double {
        var sx = 0.0, sy = 0.0
        let area = mask.area
        guard area > 0 else { return 0 }
        for y in 0..<mask.height { for x in 0..<mask.width where mask[x, y] { sx += Double(x) + 0.5; sy += Double(y) + 0.5 } }
        let cx = sx / Double(area), cy = sy / Double(area)
        let r2 = Double(area) / Double.pi
        var inter = 0, union = 0
        let margin = 2
        for y in -margin..<(mask.height + margin) {
            for x in -margin..<(mask.width + margin) {
                let dx = Double(x) + 0.5 - cx, dy = Double(y) + 0.5 - cy
                let inDisc = dx * dx + dy * dy <= r2
                let inMask = x >= 0 && y >= 0 && x < mask.width && y < mask.height && mask[x, y]
                if inDisc && inMask { inter += 1 }
                if inDisc || inMask { union += 1 }
            }
        }
        return Double(inter) / Double(union)
    }

    func triangleDefects(_ mask: OutlineMask) -> [String] {
        var d: [String] = []
        let w = mask.width, h = mask.height
        if !triangleFill.contains(mask.fill) {
            d.append(String(format: "fills %.2f of its box (%.2f…%.2f)", mask.fill, triangleFill.lowerBound, triangleFill.upperBound))
        }
        let aspect = Double(h) / Double(w)
        if !triangleAspect.contains(aspect) { d.append("\(w)×\(h) px, too flat or too tall") }
        // Left and right edges (pixel boundaries) of every row, top to bottom.
        let spans = (0..<h).compactMap { y in mask.rowSpan(y).map { RowEdges(y: Double(y) + 0.5, left: Double($0.first), right: Double($0.last + 1)) } }
        guard spans.count >= 4, let top = spans.first, let base = spans.last else {
            return d + ["too small to judge"]
        }
        // Sides straight: distance of each row's edge from the chord joining its top and base ends.
        let allowed = max(triangleSideDeviation, 0.07 * Double(h))
        let sides: [(String, (RowEdges) -> Double)] = [("left", { $0.left }), ("right", { $0.right })]
        for (side, edge) in sides {
            let a = edge(top), b = edge(base)
            let height = base.y - top.y
            var worst = 0.0
            for e in spans {
                let chord = a + (b - a) * (e.y - top.y) / height
                worst = max(worst, abs(edge(e) - chord))
            }
            if worst > allowed { d.append(String(format: "%@ side curved (%.1f px off straight)", side, worst)) }
        }
        // Pointed at the top: lines fitted to the lower three quarters of each side meet
        // just above the top row, over the middle of the base, and the shape widens downwards.
        let lower = spans.filter { $0.y >= Double(h) * 0.25 }
        guard lower.count >= 2, let l = fitLine(lower.map { ($0.y, $0.left) }), let r = fitLine(lower.map { ($0.y, $0.right) }),
              l.slope < 0, r.slope > 0 else {
            return d + ["not pointed at the top (does not widen downwards)"]
        }
        // left(y) = l.a + l.slope·y meets right(y) where the width is zero.
        let apexY = (l.intercept - r.intercept) / (r.slope - l.slope)
        let apexX = l.intercept + l.slope * apexY
        let gap = 0 - apexY  // the top row's upper edge is y = 0
        if gap > max(apexGap, 0.1 * Double(h)) {
            d.append(String(format: "apex rounded or cut (the sides meet %.1f px above the top)", gap))
        }
        if abs(apexX - Double(w) / 2) > apexOffset * Double(w) {
            d.append(String(format: "apex not over the middle of the base (%.1f px off)", apexX - Double(w) / 2))
        }
        return d
    }

    private struct RowEdges { var y: Double, left: Double, right: Double }

    /// Least-squares line v = intercept + slope · u.
    private func fitLine(_ points: [(Double, Double)]) -> (intercept: Double, slope: Double)? {
        let n = Double(points.count)
        let mu = points.reduce(0) { $0 + $1.0 } / n, mv = points.reduce(0) { $0 + $1.1 } / n
        var suu = 0.0, suv = 0.0
        for (u, v) in points { suu += (u - mu) * (u - mu); suv += (u - mu) * (v - mv) }
        guard suu > 0 else { return nil }
        let slope = suv / suu
        return (mv - slope * mu, slope)
    }
}
