import Pipeline

/// Swift port of the training renderer, `render` in tools/train/shapes_data.py: flat
/// palette colours, hard (aliased) edges, each object drawn over the background in order.
///
/// The Python renderer tests pixel centres (x + ½, y + ½) in floating point; every test is
/// rewritten here in integers, doubled or quadrupled so that no fraction is left, which
/// decides exactly the same pixels (the float forms are exact or never tie, see each shape).
/// Tests check it against committed renders of the Python tool
/// (Tests/Fixtures/adherence/scene-*.ppm, render-checksums.json).
public enum SceneRenderer {
    /// The scene as the training tool renders it, `imageSize` × `imageSize`.
    public static func render(_ scene: SceneSampler.Scene, imageSize: Int = 64) -> RGBImage {
        let bg = scene.background.rgb
        var pixels = [UInt8](repeating: 0, count: imageSize * imageSize * 3)
        for p in 0..<(imageSize * imageSize) {
            pixels[3 * p] = UInt8(bg.r)
            pixels[3 * p + 1] = UInt8(bg.g)
            pixels[3 * p + 2] = UInt8(bg.b)
        }
        for object in scene.objects {
            let c = object.color.rgb
            let box = object.box(imageSize: imageSize)
            for y in max(0, box.y0)..<min(imageSize, box.y1) {
                for x in max(0, box.x0)..<min(imageSize, box.x1) where covers(object, box: box, x: x, y: y) {
                    let p = 3 * (y * imageSize + x)
                    pixels[p] = UInt8(c.r)
                    pixels[p + 1] = UInt8(c.g)
                    pixels[p + 2] = UInt8(c.b)
                }
            }
        }
        return RGBImage(width: imageSize, height: imageSize, pixels: pixels)
    }

    /// Whether the renderer paints pixel (x, y) for `object` with bounding box `box`. Every
    /// painted pixel lies inside the box.
    static func covers(_ object: SceneSampler.Object, box: SceneSampler.PixelBox, x: Int, y: Int) -> Bool {
        let s = object.size
        switch object.shape {
        case .circle:
            // (px − mx)² + (py − my)² ≤ (s/2)², mx = (x0 + x1)/2, times 4. Python's float
            // form is exact here too (quarters and halves of small integers).
            let dx = 2 * x + 1 - (box.x0 + box.x1), dy = 2 * y + 1 - (box.y0 + box.y1)
            return dx * dx + dy * dy <= s * s
        case .square:
            // px ≥ x0 and px < x1 with px = x + ½.
            return x >= box.x0 && x < box.x1 && y >= box.y0 && y < box.y1
        case .triangle:
            // Apex up, base = height = s: |px − mx| ≤ t·s/2 with t = (py − y0)/s, that is
            // |px − mx| ≤ (py − y0)/2, times 4: |4x + 2 − 2(x0 + x1)| ≤ 2(y − y0) + 1. The
            // left side is even and the right odd, so no pixel sits on the edge and the
            // float rounding of t·s/2 can never flip one.
            guard y >= box.y0 && y < box.y1 else { return false }
            return abs(4 * x + 2 - 2 * (box.x0 + box.x1)) <= 2 * (y - box.y0) + 1
        }
    }
}
