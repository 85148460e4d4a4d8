import Pipeline

/// A filled shape found in an image.
public struct DetectedObject: Sendable, Equatable {
    public var color: NamedColor
    public var shape: ShapeKind
    public var position: GridPosition
    /// Pixel count of the connected component.
    public var area: Int
    /// Centroid in pixels (x right, y down).
    public var centroidX: Double
    public var centroidY: Double
    /// Component area over its bounding-box area: square ≈ 1, circle ≈ π/4, triangle ≈ 1/2.
    public var fillRatio: Double
}

/// What the detector sees in an image: the background colour and the objects on it.
public struct DetectedScene: Sendable, Equatable {
    public var background: NamedColor
    /// Largest first.
    public var objects: [DetectedObject]
}

/// Deterministic colour-segmentation detector for the built-in model's images.
///
/// 1. Every pixel is classified to the nearest named colour (`NamedColor.nearest`).
/// 2. The background is the most frequent colour on the image border.
/// 3. Non-background pixels form 4-connected components of one colour; components
///    smaller than `minimumAreaFraction` of the image are dropped (stray edge pixels).
/// 4. Shape from the outline of the component with its holes filled (`features`): a
///    top narrower than the bottom (taper < `triangleTaper`) is a triangle; filled
///    bounding-box corners (≥ `squareCorners`) a square; else a circle. These hold up on
///    the blurred, rounded shapes generated images show better than the fill ratio
///    (ideal 1, π/4, 1/2; reported in `DetectedObject.fillRatio`), which overlaps there.
/// 5. Position from the centroid, in a 3x3 grid of equal thirds.
public struct ShapeDetector: Sendable {
    public var minimumAreaFraction: Double = 1.0 / 200
    /// Below this taper (top-quarter width / bottom-quarter width) a shape is a triangle.
    public var triangleTaper: Double = 0.5
    /// At or above this corner coverage a non-triangle is a square, else a circle.
    public var squareCorners: Double = 0.42

    public init() {}

    public func detect(_ image: RGBImage) -> DetectedScene {
        let w = image.width, h = image.height
        let n = w * h
        var labels = [Int](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { px in
            for i in 0..<n {
                labels[i] = NamedColor.nearest(r: px[3 * i], g: px[3 * i + 1], b: px[3 * i + 2]).rawValue
            }
        }
        // Background: the most frequent colour on the border (ties: lower raw value).
        var borderCounts = [Int](repeating: 0, count: NamedColor.allCases.count)
        for x in 0..<w {
            borderCounts[labels[x]] += 1
            borderCounts[labels[(h - 1) * w + x]] += 1
        }
        for y in 0..<h {
            borderCounts[labels[y * w]] += 1
            borderCounts[labels[y * w + w - 1]] += 1
        }
        var bgRaw = 0
        for c in 1..<borderCounts.count where borderCounts[c] > borderCounts[bgRaw] { bgRaw = c }
        let background = NamedColor(rawValue: bgRaw) ?? .black

        // Connected components (4-neighbourhood) of equal non-background colour.
        var visited = [Bool](repeating: false, count: n)
        var stack: [Int] = []
        var objects: [DetectedObject] = []
        let minArea = max(1, Int((Double(n) * minimumAreaFraction).rounded()))
        for start in 0..<n where !visited[start] && labels[start] != bgRaw {
            let label = labels[start]
            var area = 0, sumX = 0, sumY = 0
            var x0 = w, y0 = h, x1 = -1, y1 = -1
            visited[start] = true
            stack.append(start)
            while let p = stack.popLast() {
                let x = p % w, y = p / w
                area += 1
                sumX += x
                sumY += y
                x0 = min(x0, x); x1 = max(x1, x)
                y0 = min(y0, y); y1 = max(y1, y)
                if x > 0 && !visited[p - 1] && labels[p - 1] == label { visited[p - 1] = true; stack.append(p - 1) }
                if x < w - 1 && !visited[p + 1] && labels[p + 1] == label { visited[p + 1] = true; stack.append(p + 1) }
                if y > 0 && !visited[p - w] && labels[p - w] == label { visited[p - w] = true; stack.append(p - w) }
                if y < h - 1 && !visited[p + w] && labels[p + w] == label { visited[p + w] = true; stack.append(p + w) }
            }
            guard area >= minArea else { continue }
            let boxArea = Double((x1 - x0 + 1) * (y1 - y0 + 1))
            // Fill ratio of the component with its holes filled: generated images often
            // carry small off-colour specks inside a shape, which are not part of its outline.
            let mask = filledMask(labels: labels, width: w, label: label, x0: x0, y0: y0, x1: x1, y1: y1,
                                  seed: start, visited: visited)
            let fill = Double(mask.reduce(0) { $0 + ($1 ? 1 : 0) }) / boxArea
            let features = Self.features(mask: mask, width: x1 - x0 + 1, height: y1 - y0 + 1)
            let shape: ShapeKind = features.taper < triangleTaper ? .triangle
                : (features.corners >= squareCorners ? .square : .circle)
            // Pixel centres are at +0.5.
            let cx = Double(sumX) / Double(area) + 0.5
            let cy = Double(sumY) / Double(area) + 0.5
            let column = min(2, max(0, Int(cx * 3 / Double(w))))
            let row = min(2, max(0, Int(cy * 3 / Double(h))))
            objects.append(DetectedObject(color: NamedColor(rawValue: label) ?? .black, shape: shape,
                                          position: GridPosition(row: row, column: column), area: area,
                                          centroidX: cx, centroidY: cy, fillRatio: fill))
        }
        objects.sort { $0.area > $1.area }
        return DetectedScene(background: background, objects: objects)
    }

    /// Outline features of a filled component mask (row-major, `width` x `height`, its bounding box).
    /// - taper: mean row width of the top quarter over that of the bottom quarter
    ///   (apex-up triangle ≈ 1/7, circle and square ≈ 1);
    /// - corners: fraction of the four corner boxes (side = a quarter of the shorter
    ///   side) covered (square ≈ 1, circle ≈ 0.25, rounded squares of generated images ≥ 0.45).
    static func features(mask: [Bool], width: Int, height: Int) -> (taper: Double, corners: Double) {
        let band = max(1, height / 4)
        func meanWidth(_ rows: Range<Int>) -> Double {
            var n = 0
            for y in rows { for x in 0..<width where mask[y * width + x] { n += 1 } }
            return Double(n) / Double(rows.count)
        }
        let top = meanWidth(0..<band), bottom = meanWidth((height - band)..<height)
        let taper = bottom > 0 ? top / bottom : 1
        let q = max(1, min(width, height) / 4)
        var covered = 0
        for (cx, cy) in [(0, 0), (width - q, 0), (0, height - q), (width - q, height - q)] {
            for y in cy..<(cy + q) { for x in cx..<(cx + q) where mask[y * width + x] { covered += 1 } }
        }
        return (taper, Double(covered) / Double(4 * q * q))
    }

    /// The bounding box (x0...x1, y0...y1), row-major, with `true` for pixels of the
    /// component or enclosed by it: everything a flood fill from outside the box does
    /// not reach through non-component pixels. The component is the set of `label`
    /// pixels connected to `seed`, all already `visited`. (Generated images often carry
    /// small off-colour specks inside a shape; they are not part of its outline.)
    func filledMask(labels: [Int], width: Int, label: Int, x0: Int, y0: Int, x1: Int, y1: Int,
                    seed: Int, visited: [Bool]) -> [Bool] {
        // Local grid with a 1-pixel margin; 1 = component, 0 = other.
        let bw = x1 - x0 + 3, bh = y1 - y0 + 3
        var inside = [Bool](repeating: false, count: bw * bh)
        // Mark component pixels: connected from `seed` (re-walked within the box).
        var stack = [seed]
        var mark = [Bool](repeating: false, count: bw * bh)
        func local(_ p: Int) -> Int { (p / width - y0 + 1) * bw + (p % width - x0 + 1) }
        mark[local(seed)] = true
        while let p = stack.popLast() {
            inside[local(p)] = true
            let x = p % width, y = p / width
            for (q, ok) in [(p - 1, x > x0), (p + 1, x < x1), (p - width, y > y0), (p + width, y < y1)]
            where ok && visited[q] && labels[q] == label && !mark[local(q)] {
                mark[local(q)] = true
                stack.append(q)
            }
        }
        // Flood the outside from the margin corner.
        var outside = [Bool](repeating: false, count: bw * bh)
        var queue = [0]
        outside[0] = true
        while let p = queue.popLast() {
            let x = p % bw, y = p / bw
            for (q, ok) in [(p - 1, x > 0), (p + 1, x < bw - 1), (p - bw, y > 0), (p + bw, y < bh - 1)]
            where ok && !outside[q] && !inside[q] {
                outside[q] = true
                queue.append(q)
            }
        }
        var mask = [Bool](repeating: false, count: (x1 - x0 + 1) * (y1 - y0 + 1))
        for y in 0..<(y1 - y0 + 1) {
            for x in 0..<(x1 - x0 + 1) { mask[y * (x1 - x0 + 1) + x] = !outside[(y + 1) * bw + x + 1] }
        }
        return mask
    }
}
