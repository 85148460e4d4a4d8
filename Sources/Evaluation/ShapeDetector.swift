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
/// 4. Shape from the fill ratio of the component's bounding box: ≥ `squareFill` square,
///    ≥ `circleFill` circle, else triangle (ideal values 1, π/4 ≈ 0.785, 1/2).
/// 5. Position from the centroid, in a 3x3 grid of equal thirds.
public struct ShapeDetector: Sendable {
    public var minimumAreaFraction: Double = 1.0 / 200
    public var squareFill: Double = 0.89
    public var circleFill: Double = 0.64

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
            let fill = Double(area) / boxArea
            let shape: ShapeKind = fill >= squareFill ? .square : (fill >= circleFill ? .circle : .triangle)
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
}
