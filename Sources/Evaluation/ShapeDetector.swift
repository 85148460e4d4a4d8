import Foundation
import Pipeline

/// A filled shape found in an image, with what a strict judge finds wrong with it.
public struct DetectedObject: Sendable, Equatable {
    /// Nearest named colour of the object's median colour.
    public var color: NamedColor
    /// The shape whose rules the outline meets (`StrictRules`), or nil when it meets none.
    public var shape: ShapeKind?
    public var position: GridPosition
    /// Pixel count (seed region plus edge blends at least halfway to the object's colour).
    public var area: Int
    /// Centroid in pixels (x right, y down).
    public var centroidX: Double
    public var centroidY: Double
    /// Area of the outline (holes filled) over its bounding-box area: square 1, circle π/4,
    /// triangle ≈ ½ as rendered.
    public var fillRatio: Double
    /// Median colour of the inner pixels.
    public var medianColor: RGB
    /// Why the object is not one clean region of its colour (specks, halos, holes, median off
    /// the palette, not one colour); empty when it is.
    public var colorDefects: [String]
    /// Why the outline meets no shape's rules (soft edges, sides, roundness, apex); empty when
    /// `shape` is set.
    public var shapeDefects: [String]

    /// One clean region of its named colour.
    public var colorClean: Bool { colorDefects.isEmpty }

    /// "red square", "red ? (…)" with the defects, for failure listings.
    public var summary: String {
        let what = "\(color) \(shape?.name ?? "shape?") \(position)"
        let defects = colorDefects + shapeDefects
        return defects.isEmpty ? what : what + " [" + defects.joined(separator: "; ") + "]"
    }
}

/// What the detector sees in an image: the background colour and the objects on it.
public struct DetectedScene: Sendable, Equatable {
    public var background: NamedColor
    /// Median colour of the background away from the objects.
    public var backgroundMedian: RGB
    /// Why the background is not one clean colour to the border (specks, blobs, gradient,
    /// median off the palette); empty when it is.
    public var backgroundDefects: [String]
    /// Largest first.
    public var objects: [DetectedObject]
}

/// The strict evaluator's detector for the built-in model's images (issue 18): it judges an
/// image as a person would, with the thresholds of `StrictRules`.
///
/// 1. Segmentation (`SceneSegmentation`): background from the border, objects as regions of
///    one named colour, edge blends joined to their object, third-colour pixels as specks.
/// 2. Per object: colour (median of its inner pixels, near its palette value, one colour
///    throughout, no speck, halo or hole larger than a few pixels); sharp edges; outline
///    (holes filled) judged by the shape rules (`ShapeRules.swift`).
/// 3. Background: its median near its palette value, one colour to the border, no specks.
/// 4. Position from the centroid, in a 3×3 grid of equal thirds.
public struct ShapeDetector: Sendable {
    public var rules = StrictRules()

    public init() {}

    public func detect(_ image: RGBImage) -> DetectedScene {
        let seg = SceneSegmentation(image, rules: rules)
        let w = image.width, h = image.height, n = w * h
        let speckLimit = rules.speckLimit(imagePixels: n)
        var objects: [DetectedObject] = []
        for (index, region) in seg.objects.enumerated() {
            objects.append(judge(region, index: index, segmentation: seg, image: image))
        }
        objects.sort { $0.area > $1.area }

        // The background.
        var defects: [String] = []
        let median = seg.backgroundMedian
        let paletteDistance = median.distance(to: RGB(seg.background))
        if paletteDistance > rules.paletteTolerance {
            defects.append(String(format: "median %@ is %.0f from %@'s %@", median.description, paletteDistance,
                                  seg.background.name, RGB(seg.background).description))
        }
        let away = seg.backgroundPixels
        if !away.isEmpty {
            let within = away.filter { RGB(image, pixel: $0).distance(to: median) <= rules.uniformRadius }.count
            let share = Double(within) / Double(away.count)
            if share < rules.backgroundUniformFraction {
                defects.append(String(format: "not one colour: %.1f%% of it within %.0f of its median", 100 * share,
                                      rules.uniformRadius))
            }
            var border = 0
            for p in 0..<n where p % w == 0 || p % w == w - 1 || p / w == 0 || p / w == h - 1 {
                if RGB(image, pixel: p).distance(to: median) > rules.uniformRadius { border += 1 }
            }
            if border > speckLimit { defects.append("\(border) border pixels off the background colour") }
        }
        for s in seg.specks where s.owner == nil && s.pixels > speckLimit {
            defects.append("\(s.color) speck of \(s.pixels) px at (\(s.x), \(s.y))")
        }
        return DetectedScene(background: seg.background, backgroundMedian: median, backgroundDefects: defects,
                             objects: objects)
    }

    private func judge(_ region: SceneSegmentation.Region, index: Int, segmentation seg: SceneSegmentation,
                       image: RGBImage) -> DetectedObject {
        let w = seg.width, n = seg.width * seg.height
        let speckLimit = rules.speckLimit(imagePixels: n)
        var x0 = w, y0 = seg.height, x1 = -1, y1 = -1
        var sumX = 0.0, sumY = 0.0
        for p in region.pixels {
            let x = p % w, y = p / w
            x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
        }
        // The outline: the region's pixels in their box, enclosed holes filled.
        let bw = x1 - x0 + 1, bh = y1 - y0 + 1
        var inRegion = [Bool](repeating: false, count: bw * bh)
        for p in region.pixels { inRegion[(p / w - y0) * bw + (p % w - x0)] = true }
        let filled = Self.fillHoles(inRegion, width: bw, height: bh)
        let mask = OutlineMask(width: bw, height: bh, cells: filled)
        var area = 0
        var holes: [Int] = []
        for y in 0..<bh {
            for x in 0..<bw where filled[y * bw + x] {
                area += 1
                sumX += Double(x0 + x) + 0.5
                sumY += Double(y0 + y) + 0.5
                let p = (y0 + y) * w + x0 + x
                if !inRegion[y * bw + x] && !seg.stray[p] { holes.append(p) }
            }
        }

        // Colour: the region's inner pixels (all four neighbours in the region).
        var inner: [Int] = []
        for p in region.pixels {
            let x = p % w - x0, y = p / w - y0
            if x > 0, y > 0, x < bw - 1, y < bh - 1, inRegion[y * bw + x - 1], inRegion[y * bw + x + 1],
               inRegion[(y - 1) * bw + x], inRegion[(y + 1) * bw + x] { inner.append(p) }
        }
        if inner.isEmpty { inner = region.pixels }
        let median = RGB.median(of: inner, in: image)
        let color = median.nearestName
        var colorDefects: [String] = []
        let off = median.distance(to: RGB(color))
        if off > rules.paletteTolerance {
            colorDefects.append(String(format: "median %@ is %.0f from %@'s %@", median.description, off, color.name,
                                       RGB(color).description))
        }
        let uniform = Double(inner.filter { RGB(image, pixel: $0).distance(to: median) <= rules.uniformRadius }.count)
            / Double(inner.count)
        if uniform < rules.uniformFraction {
            colorDefects.append(String(format: "not one colour: %.0f%% within %.0f of its median", 100 * uniform,
                                       rules.uniformRadius))
        }
        for s in seg.specks where s.owner == index && s.pixels > speckLimit {
            colorDefects.append("\(s.color) speck or halo of \(s.pixels) px at (\(s.x), \(s.y))")
        }
        if holes.count > speckLimit { colorDefects.append("hole of \(holes.count) px") }

        // Shape: sharp edges, then the outline rules.
        var verdict = rules.judge(mask, imagePixels: n)
        let outline = max(1, mask.outlinePixels)
        let blend = region.blendWeight / Double(outline)
        let blendLimit = rules.blendLimit(imageSide: min(seg.width, seg.height))
        if blend > blendLimit {
            verdict.shape = nil
            verdict.defects.insert(String(format: "soft edges (%.1f mixed px per outline px, at most %.1f)", blend,
                                          blendLimit), at: 0)
        }
        let cx = sumX / Double(max(1, area)), cy = sumY / Double(max(1, area))
        let column = min(2, max(0, Int(cx * 3 / Double(seg.width))))
        let row = min(2, max(0, Int(cy * 3 / Double(seg.height))))
        return DetectedObject(color: color, shape: verdict.shape, position: GridPosition(row: row, column: column),
                              area: area, centroidX: cx, centroidY: cy, fillRatio: mask.fill, medianColor: median,
                              colorDefects: colorDefects, shapeDefects: verdict.defects)
    }

    /// `cells` (row-major, `width` × `height`) with every cell that the outside cannot reach
    /// through unset cells (4-neighbourhood) set: the shape with its holes filled.
    static func fillHoles(_ cells: [Bool], width: Int, height: Int) -> [Bool] {
        // Flood the outside from a one-cell margin.
        let mw = width + 2, mh = height + 2
        var outside = [Bool](repeating: false, count: mw * mh)
        func inside(_ x: Int, _ y: Int) -> Bool {
            x >= 1 && y >= 1 && x <= width && y <= height && cells[(y - 1) * width + (x - 1)]
        }
        var stack = [0]
        outside[0] = true
        while let p = stack.popLast() {
            let x = p % mw, y = p / mw
            for (qx, qy) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
            where qx >= 0 && qy >= 0 && qx < mw && qy < mh && !outside[qy * mw + qx] && !inside(qx, qy) {
                outside[qy * mw + qx] = true
                stack.append(qy * mw + qx)
            }
        }
        var out = [Bool](repeating: false, count: width * height)
        for y in 0..<height { for x in 0..<width { out[y * width + x] = !outside[(y + 1) * mw + x + 1] } }
        return out
    }
}
