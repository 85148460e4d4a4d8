import Foundation
import Pipeline
@testable import Evaluation

/// Training renders damaged the ways issue 18 saw the model draw: bowed squares, lumpy or
/// notched circles, curved or blunt triangles, specks and halos of another colour, wrong
/// colours, blurred edges, backgrounds that are not one colour.
enum RenderDamage {
    /// A pixel to paint, in object-box coordinates of pixel centres: u = x + ½ − x0,
    /// v = y + ½ − y0, both 0…s for the object's size s.
    typealias Shape = (_ u: Double, _ v: Double, _ s: Double) -> Bool

    static func set(_ image: inout RGBImage, _ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < image.width, y < image.height else { return }
        let p = 3 * (y * image.width + x)
        image.pixels[p] = UInt8(max(0, min(255, c.r.rounded())))
        image.pixels[p + 1] = UInt8(max(0, min(255, c.g.rounded())))
        image.pixels[p + 2] = UInt8(max(0, min(255, c.b.rounded())))
    }

    static func get(_ image: RGBImage, _ x: Int, _ y: Int) -> RGB { RGB(image, pixel: y * image.width + x) }

    /// The scene rendered with object `k` drawn as `shape` (within its box, ± 4 px) in
    /// `color(x, y)` (its palette value by default). Other objects are drawn as rendered.
    static func redraw(_ scene: SceneSampler.Scene, object k: Int, shape: Shape,
                       color: ((Int, Int) -> RGB)? = nil) -> RGBImage {
        var others = scene
        others.objects.remove(at: k)
        var image = SceneRenderer.render(others)
        let o = scene.objects[k], box = o.box()
        let s = Double(o.size)
        for y in (box.y0 - 4)..<(box.y1 + 4) {
            for x in (box.x0 - 4)..<(box.x1 + 4) where shape(Double(x - box.x0) + 0.5, Double(y - box.y0) + 0.5, s) {
                set(&image, x, y, color?(x, y) ?? RGB(o.color))
            }
        }
        return image
    }

    // MARK: Outlines

    /// A square whose sides bow inwards by `bow` px at their middles (a pillow; a
    /// four-pointed star when `bow` is about a third of the side).
    static func bowedSquare(bow: Double) -> Shape {
        { u, v, s in
            func dip(_ t: Double) -> Double { bow * (1 - (2 * t / s - 1) * (2 * t / s - 1)) }
            guard u >= 0, u < s, v >= 0, v < s else { return false }
            return u >= dip(v) && s - u >= dip(v) && v >= dip(u) && s - v >= dip(u)
        }
    }

    /// A circle whose radius swings by `amplitude` of itself, `lobes` times around.
    static func lumpyCircle(amplitude: Double, lobes: Double = 5) -> Shape {
        { u, v, s in
            let dx = u - s / 2, dy = v - s / 2
            let r = s / 2 * (1 + amplitude * sin(lobes * atan2(dy, dx)))
            return dx * dx + dy * dy <= r * r
        }
    }

    /// A circle with a bite of `width` × `depth` px out of the top (the "mushroom with a notch").
    static func notchedCircle(width: Double, depth: Double) -> Shape {
        { u, v, s in
            let dx = u - s / 2, dy = v - s / 2
            guard dx * dx + dy * dy <= s * s / 4 else { return false }
            return !(abs(dx) < width / 2 && v < depth)
        }
    }

    /// The rendered triangle with sides bulging outwards by `bulge` px at mid-height.
    static func curvedTriangle(bulge: Double) -> Shape {
        { u, v, s in
            guard v >= 0, v < s else { return false }
            let t = v / s
            return abs(u - s / 2) <= v / 2 + bulge * 4 * t * (1 - t)
        }
    }

    /// The rendered triangle with its apex rounded to a circle of `radius` px touching both sides.
    static func roundedApexTriangle(radius: Double) -> Shape {
        { u, v, s in
            guard v >= 0, v < s, abs(u - s / 2) <= v / 2 else { return false }
            // Half-angle θ at the apex: tan θ = ½. The circle's centre lies r / sin θ below the
            // apex; above its tangent points (r·sin θ higher) the shape is the circle.
            let sinT = 1 / 5.0.squareRoot()
            let cy = radius / sinT, tangentY = cy - radius * sinT
            if v >= tangentY { return true }
            let dx = u - s / 2, dy = v - cy
            return dx * dx + dy * dy <= radius * radius
        }
    }

    // MARK: Colour and edges

    /// A palette colour used by nothing in the scene, the farthest from the line between the
    /// background and object `k`'s colour (so it reads as a third colour, not a blend).
    static func thirdColor(_ scene: SceneSampler.Scene, object k: Int) -> RGB {
        let used = Set([scene.background] + scene.objects.map(\.color))
        let a = RGB(scene.background), b = RGB(scene.objects[k].color)
        let free = NamedColor.allCases.filter { !used.contains($0) }
        let best = free.max { RGB($0).blend(from: a, to: b).residual < RGB($1).blend(from: a, to: b).residual }
        return RGB(best ?? .white)
    }

    /// The first pixel of object `k` in raster order (its top-left edge).
    static func firstPixel(_ image: RGBImage, _ scene: SceneSampler.Scene, object k: Int) -> (x: Int, y: Int) {
        let box = scene.objects[k].box(), c = RGB(scene.objects[k].color)
        for y in box.y0..<box.y1 {
            for x in box.x0..<box.x1 where get(image, x, y) == c { return (x, y) }
        }
        return (box.x0, box.y0)
    }

    /// The render with a `side` × `side` speck of a third colour touching object `k` from
    /// above at its top-left edge (its first pixel).
    static func speck(_ scene: SceneSampler.Scene, object k: Int, side: Int) -> RGBImage {
        var image = SceneRenderer.render(scene)
        let (x, y) = firstPixel(image, scene, object: k)
        let c = thirdColor(scene, object: k)
        for a in 1...side { for b in 0..<side { set(&image, x - side / 2 + b, y - a, c) } }
        return image
    }

    /// The render with a ring `width` px wide of a third colour around object `k`.
    static func halo(_ scene: SceneSampler.Scene, object k: Int, width: Int) -> RGBImage {
        let clean = SceneRenderer.render(scene)
        var image = clean
        let o = scene.objects[k], box = o.box(), c = RGB(o.color), ring = thirdColor(scene, object: k)
        for y in (box.y0 - width)..<(box.y1 + width) {
            for x in (box.x0 - width)..<(box.x1 + width) where x >= 0 && y >= 0 && x < 64 && y < 64 && get(clean, x, y) != c {
                var near = false
                for dy in -width...width {
                    for dx in -width...width {
                        let qx = x + dx, qy = y + dy
                        if qx >= 0, qy >= 0, qx < 64, qy < 64, get(clean, qx, qy) == c { near = true }
                    }
                }
                if near { set(&image, x, y, ring) }
            }
        }
        return image
    }

    /// Gaussian blur of standard deviation `sigma` px (separable, edges clamped).
    static func blurred(_ image: RGBImage, sigma: Double) -> RGBImage {
        let radius = Int((3 * sigma).rounded(.up))
        let weights = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = weights.reduce(0, +)
        let w = image.width, h = image.height
        func pass(_ src: [Double], horizontal: Bool) -> [Double] {
            var out = [Double](repeating: 0, count: src.count)
            for y in 0..<h {
                for x in 0..<w {
                    for c in 0..<3 {
                        var acc = 0.0
                        for (i, wt) in weights.enumerated() {
                            let d = i - radius
                            let qx = horizontal ? min(max(x + d, 0), w - 1) : x
                            let qy = horizontal ? y : min(max(y + d, 0), h - 1)
                            acc += wt * src[3 * (qy * w + qx) + c]
                        }
                        out[3 * (y * w + x) + c] = acc / total
                    }
                }
            }
            return out
        }
        let result = pass(pass(image.pixels.map(Double.init), horizontal: true), horizontal: false)
        return RGBImage(width: w, height: h, pixels: result.map { UInt8(max(0, min(255, $0.rounded()))) })
    }

    // MARK: Background

    /// The render with every background pixel recoloured by `color(x, y, palette value)`.
    static func background(_ scene: SceneSampler.Scene, _ color: (Int, Int, RGB) -> RGB) -> RGBImage {
        var image = SceneRenderer.render(scene)
        let bg = RGB(scene.background)
        for y in 0..<64 { for x in 0..<64 where get(image, x, y) == bg { set(&image, x, y, color(x, y, bg)) } }
        return image
    }
}
