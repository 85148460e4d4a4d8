import Foundation
import XCTest
import Pipeline
@testable import Evaluation

/// The strict evaluator fails training renders damaged the ways issue 18 saw the model draw
/// (`RenderDamage`), in the field a person would name, and only there; damage below "a few
/// pixels" passes.
final class StrictEvaluatorDamageTests: XCTestCase {
    let evaluator = AdherenceEvaluator()

    /// The first `count` training scenes with an object of `shape` (and, with `alone`, no
    /// other object and 4 px of room to the border, so that a damaged outline can grow
    /// without touching either). With `roomAbove`, the object has that many px of background
    /// above its box, away from any other object.
    func scenes(with shape: ShapeKind, count: Int = 12, alone: Bool = false, roomAbove: Int = 0) -> [(SceneSampler.Scene, Int)] {
        var out: [(SceneSampler.Scene, Int)] = []
        var seed: UInt64 = 0
        while out.count < count {
            let scene = SceneSampler.scene(seed: seed)
            seed += 1
            if alone {
                guard scene.objects.count == 1 else { continue }
                let b = scene.objects[0].box()
                guard b.x0 >= 4, b.y0 >= 4, b.x1 <= 60, b.y1 <= 60 else { continue }
            }
            guard let k = scene.objects.firstIndex(where: { $0.shape == shape }) else { continue }
            if roomAbove > 0 {
                let b = scene.objects[k].box()
                guard b.y0 > roomAbove, !scene.objects.indices.contains(where: { j in
                    j != k && { let o = scene.objects[j].box(); return o.x1 + roomAbove > b.x0 && o.x0 < b.x1 + roomAbove && o.y1 + roomAbove > b.y0 && o.y0 < b.y0 }()
                }) else { continue }
            }
            out.append((scene, k))
        }
        return out
    }

    func score(_ image: RGBImage, _ scene: SceneSampler.Scene) throws -> AdherenceScore {
        try evaluator.score(image, caption: scene.caption)
    }

    /// Object `k` has a clean colour but no shape; background and other fields right.
    func assertShapeFails(_ image: RGBImage, _ scene: SceneSampler.Scene, _ k: Int, _ what: String,
                          file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try score(image, scene)
        let o = s.objects[k]
        XCTAssertFalse(o.shapeCorrect, "\(what): \(scene.caption): \(o.detected?.summary ?? "none")", file: file, line: line)
        XCTAssertNil(o.detected?.shape, "\(what): \(scene.caption)", file: file, line: line)
        XCTAssertTrue(o.colorCorrect, "\(what): \(o.detected?.summary ?? "none")", file: file, line: line)
        XCTAssertTrue(o.positionCorrect, "\(what): \(scene.caption)", file: file, line: line)
        XCTAssertTrue(s.backgroundCorrect, "\(what): \(scene.caption)", file: file, line: line)
    }

    /// Object `k` keeps its shape but its colour is not one clean region of the named colour.
    func assertColorFails(_ image: RGBImage, _ scene: SceneSampler.Scene, _ k: Int, _ what: String,
                          file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try score(image, scene)
        let o = s.objects[k]
        XCTAssertFalse(o.colorCorrect, "\(what): \(scene.caption): \(o.detected?.summary ?? "none")", file: file, line: line)
        XCTAssertEqual(o.detected?.color, scene.objects[k].color, "\(what): named right, judged unclean", file: file, line: line)
        XCTAssertTrue(o.shapeCorrect, "\(what): \(o.detected?.summary ?? "none")", file: file, line: line)
        XCTAssertFalse(s.colorsAndShapesCorrect, file: file, line: line)
    }

    // MARK: Outlines

    func testBowedSquaresFail() throws {
        for (scene, k) in scenes(with: .square, alone: true) {
            let side = Double(scene.objects[k].size)
            // A pillow: sides bowed in by 2 px; a four-pointed star: by a fifth of the side.
            try assertShapeFails(RenderDamage.redraw(scene, object: k, shape: RenderDamage.bowedSquare(bow: 2)), scene, k, "pillow")
            try assertShapeFails(RenderDamage.redraw(scene, object: k, shape: RenderDamage.bowedSquare(bow: side / 5)), scene, k, "star")
        }
    }

    func testLumpyAndNotchedCirclesFail() throws {
        for (scene, k) in scenes(with: .circle, alone: true) {
            try assertShapeFails(RenderDamage.redraw(scene, object: k, shape: RenderDamage.lumpyCircle(amplitude: 0.15)),
                                 scene, k, "lumpy")
            try assertShapeFails(RenderDamage.redraw(scene, object: k, shape: RenderDamage.notchedCircle(width: 4, depth: 3)),
                                 scene, k, "notched")
        }
    }

    func testCurvedAndBluntTrianglesFail() throws {
        for (scene, k) in scenes(with: .triangle, alone: true) {
            try assertShapeFails(RenderDamage.redraw(scene, object: k, shape: RenderDamage.curvedTriangle(bulge: 2.5)),
                                 scene, k, "curved sides")
            try assertShapeFails(RenderDamage.redraw(scene, object: k, shape: RenderDamage.roundedApexTriangle(radius: 3.5)),
                                 scene, k, "rounded apex")
        }
    }

    func testBlurredEdgesFail() throws {
        for shape in ShapeKind.allCases {
            for (scene, k) in scenes(with: shape, count: 6) {
                let s = try score(RenderDamage.blurred(SceneRenderer.render(scene), sigma: 1.5), scene)
                XCTAssertFalse(s.objects[k].shapeCorrect, "blurred \(shape): \(s.objects[k].detected?.summary ?? "none")")
                let defects = s.objects[k].detected?.shapeDefects ?? []
                XCTAssertTrue(defects.contains { $0.hasPrefix("soft edges") }, "\(defects)")
            }
        }
    }

    func testEdgeBlendMeasuresTheBlur() throws {
        // One 20 px red square on blue, its edges on pixel boundaries: mixing per outline
        // pixel 0 as rendered, ≈ 2.26 σ·(76 − 4 corners)/76 after a Gaussian blur of σ.
        let square = SceneSampler.Object(color: .red, shape: .square, position: GridPosition(index: 4), size: 20, dx: 0, dy: 0)
        let scene = SceneSampler.Scene(background: .blue, objects: [square], caption: "a red square in the center, blue background")
        func blendRatio(_ image: RGBImage) -> Double {
            let seg = SceneSegmentation(image, rules: StrictRules())
            return seg.objects[0].blendWeight / 76  // outline of a 20 px square
        }
        XCTAssertEqual(blendRatio(SceneRenderer.render(scene)), 0)
        let render = SceneRenderer.render(scene)
        XCTAssertEqual(blendRatio(RenderDamage.blurred(render, sigma: 0.5)), 0.75, accuracy: 0.1)
        XCTAssertEqual(blendRatio(RenderDamage.blurred(render, sigma: 1)), 1.74, accuracy: 0.1)
        XCTAssertGreaterThan(blendRatio(RenderDamage.blurred(render, sigma: 1.5)), 2.2)
    }

    func testSlightSofteningPasses() throws {
        // A Gaussian blur of σ = 0.5 px: anti-aliased, not blurred.
        for seed in UInt64(0)..<40 {
            let scene = SceneSampler.scene(seed: seed)
            let s = try score(RenderDamage.blurred(SceneRenderer.render(scene), sigma: 0.5), scene)
            XCTAssertTrue(s.allCorrect, "seed \(seed): \(s.objects.map { $0.detected?.summary ?? "none" })")
        }
    }

    // MARK: Colour

    func testSpecksAtAnObjectsEdgeFailAndTinyOnesPass() throws {
        for shape in ShapeKind.allCases {
            for (scene, k) in scenes(with: shape, count: 6, roomAbove: 5) {
                try assertColorFails(RenderDamage.speck(scene, object: k, side: 3), scene, k, "3×3 speck")
                let small = try score(RenderDamage.speck(scene, object: k, side: 2), scene)
                XCTAssertTrue(small.allCorrect, "a 2×2 speck is within a few pixels: \(small.objects[k].detected?.summary ?? "")")
            }
        }
    }

    func testColourHalosFail() throws {
        for shape in ShapeKind.allCases {
            for (scene, k) in scenes(with: shape, count: 6) {
                try assertColorFails(RenderDamage.halo(scene, object: k, width: 1), scene, k, "1 px halo")
                try assertColorFails(RenderDamage.halo(scene, object: k, width: 2), scene, k, "2 px halo")
            }
        }
    }

    func testWrongMedianColoursFail() throws {
        // Issue 18: purple drawn as a pink-violet gradient, black drawn dark green-brown.
        let purple = SceneSampler.Object(color: .purple, shape: .square, position: GridPosition(index: 4), size: 20, dx: 0, dy: 0)
        let black = SceneSampler.Object(color: .black, shape: .square, position: GridPosition(index: 2), size: 18, dx: 1, dy: -2)
        for bg in [NamedColor.white, .yellow, .green] {
            let scene = SceneSampler.Scene(background: bg, objects: [purple, black],
                                           caption: "a purple square in the center and a black square at the top right, \(bg) background")
            XCTAssertTrue(try score(SceneRenderer.render(scene), scene).allCorrect)
            let box = purple.box()
            let pinkViolet = RenderDamage.redraw(scene, object: 0, shape: RenderDamage.bowedSquare(bow: 0)) { x, _ in
                let t = Double(x - box.x0) / 19
                return RGB(r: 140 + 95 * t, g: 50 + 45 * t, b: 170 + 35 * t)
            }
            try assertColorFails(pinkViolet, scene, 0, "pink-violet purple")
            let greenBrown = RenderDamage.redraw(scene, object: 1, shape: RenderDamage.bowedSquare(bow: 0)) { _, _ in
                RGB(r: 62, g: 52, b: 22)
            }
            try assertColorFails(greenBrown, scene, 1, "green-brown black")
            // A gradient centred on the palette value: the median is right, one colour is not.
            let gradient = RenderDamage.redraw(scene, object: 0, shape: RenderDamage.bowedSquare(bow: 0)) { x, _ in
                let t = Double(x - box.x0) / 19 * 2 - 1
                return RGB(r: 140 + 45 * t, g: 50 + 22 * t, b: 170 + 22 * t)
            }
            try assertColorFails(gradient, scene, 0, "gradient")
            let seen = evaluator.detector.detect(gradient).objects.first { $0.color == .purple }
            XCTAssertEqual(seen?.medianColor.distance(to: RGB(.purple)) ?? 99, 0, accuracy: 6)
            // Noise of ±6 levels per channel is still one colour.
            var noisy = SceneRenderer.render(scene)
            var rng = SceneSampler.SplitMix64(state: 7)
            for i in noisy.pixels.indices {
                noisy.pixels[i] = UInt8(max(0, min(255, Int(noisy.pixels[i]) + rng.below(13) - 6)))
            }
            XCTAssertTrue(try score(noisy, scene).allCorrect, "noise ±6")
        }
    }

    // MARK: Background

    func testBackgroundsThatAreNotOneColourToTheBorderFail() throws {
        for seed in UInt64(0)..<12 {
            let scene = SceneSampler.scene(seed: seed)
            // Fading from top to bottom 60% of the way to mid grey.
            let gradient = RenderDamage.background(scene) { _, y, c in
                let f = 0.6 * Double(y) / 63
                return RGB(r: c.r + (128 - c.r) * f, g: c.g + (128 - c.g) * f, b: c.b + (128 - c.b) * f)
            }
            XCTAssertFalse(try score(gradient, scene).backgroundCorrect, "gradient, seed \(seed)")
            // A 3 px frame of another shade along the border (a vignette).
            let frame = RenderDamage.background(scene) { x, y, c in
                min(x, y, 63 - x, 63 - y) < 3 ? RGB(r: abs(c.r - 70), g: abs(c.g - 70), b: abs(c.b - 70)) : c
            }
            XCTAssertFalse(try score(frame, scene).backgroundCorrect, "frame, seed \(seed)")
        }
    }

    func testStrayBlotsAndExtraObjectsOnTheBackgroundFail() throws {
        for (scene, k) in scenes(with: .circle, count: 8, alone: true) {
            let box = scene.objects[k].box()
            // A 3 × 3 blot and a 14 px square in the corner farthest from the object.
            let right = box.x0 + box.x1 < 64, down = box.y0 + box.y1 < 64
            let x = right ? 56 : 5, y = down ? 56 : 5
            var blot = SceneRenderer.render(scene)
            let c = RenderDamage.thirdColor(scene, object: k)
            for dy in 0..<3 { for dx in 0..<3 { RenderDamage.set(&blot, x + dx, y + dy, c) } }
            let s = try score(blot, scene)
            XCTAssertFalse(s.backgroundCorrect, scene.caption)
            XCTAssertTrue(s.objectsCorrect, scene.caption)
            // A second, uncaptioned object.
            var extra = scene
            extra.objects.append(SceneSampler.Object(color: c.nearestName, shape: .square,
                                                     position: GridPosition(row: down ? 2 : 0, column: right ? 2 : 0),
                                                     size: 14, dx: right ? 3 : -3, dy: down ? 3 : -3))
            let e = try score(SceneRenderer.render(extra), scene)
            XCTAssertEqual(e.extraObjects, 1, scene.caption)
            XCTAssertFalse(e.backgroundCorrect, scene.caption)
        }
    }
}
