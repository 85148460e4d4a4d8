import Pipeline

/// An sRGB colour with components in 0…255 (fractional for medians and mixes).
public struct RGB: Sendable, Equatable, CustomStringConvertible {
    public var r: Double, g: Double, b: Double

    public init(r: Double, g: Double, b: Double) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// The palette value of a named colour.
    public init(_ color: NamedColor) {
        let v = color.rgb
        self.init(r: Double(v.r), g: Double(v.g), b: Double(v.b))
    }

    /// Pixel `index` (row-major) of an image.
    init(_ image: RGBImage, pixel index: Int) {
        self.init(r: Double(image.pixels[3 * index]), g: Double(image.pixels[3 * index + 1]),
                  b: Double(image.pixels[3 * index + 2]))
    }

    public var description: String { "(\(Int(r.rounded())), \(Int(g.rounded())), \(Int(b.rounded())))" }

    /// Euclidean distance in sRGB.
    public func distance(to o: RGB) -> Double {
        let dr = r - o.r, dg = g - o.g, db = b - o.b
        return (dr * dr + dg * dg + db * db).squareRoot()
    }

    /// The named colour nearest to this one (`NamedColor.nearest`).
    public var nearestName: NamedColor {
        NamedColor.nearest(r: UInt8(max(0, min(255, r.rounded()))), g: UInt8(max(0, min(255, g.rounded()))),
                           b: UInt8(max(0, min(255, b.rounded()))))
    }

    /// Where this colour lies between `from` (0) and `to` (1) along the line through them,
    /// clamped to 0…1, and its distance from that line segment: an edge pixel that mixes two
    /// flat colours has a small residual; a third colour has a large one.
    public func blend(from a: RGB, to b: RGB) -> (fraction: Double, residual: Double) {
        let ur = b.r - a.r, ug = b.g - a.g, ub = b.b - a.b
        let length2 = ur * ur + ug * ug + ub * ub
        guard length2 > 0 else { return (1, distance(to: a)) }
        let t = ((r - a.r) * ur + (g - a.g) * ug + (self.b - a.b) * ub) / length2
        let f = min(max(t, 0), 1)
        let onLine = RGB(r: a.r + f * ur, g: a.g + f * ug, b: a.b + f * ub)
        return (f, distance(to: onLine))
    }

    /// Per-channel median of the given pixels of `image` (the upper median for even counts).
    static func median(of pixels: [Int], in image: RGBImage) -> RGB {
        guard !pixels.isEmpty else { return RGB(r: 0, g: 0, b: 0) }
        func channel(_ c: Int) -> Double {
            var values = pixels.map { image.pixels[3 * $0 + c] }
            values.sort()
            return Double(values[values.count / 2])
        }
        return RGB(r: channel(0), g: channel(1), b: channel(2))
    }
}
