import Foundation
import XCTest
import Pipeline
@testable import Evaluation

/// The seed-variety measure (`SeedVariety`, `diffusion-bench variety`, issue 18).
final class SeedVarietyTests: XCTestCase {
    /// The first held-out scene whose caption satisfies `wanted`.
    func heldOutScene(where wanted: (SceneSampler.Scene) -> Bool) throws -> SceneSampler.Scene {
        for i in 0..<500 {
            let scene = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase + UInt64(i))
            if wanted(scene) { return scene }
        }
        throw XCTSkip("no held-out scene of that kind in the first 500")
    }

    func testRenderVariantsAreRendersOfTheSameCaption() throws {
        let evaluator = AdherenceEvaluator()
        for i in 0..<10 {
            let scene = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase + UInt64(i))
            let variants = SeedVariety.renderVariants(of: scene, count: 8, seed: UInt64(i))
            XCTAssertEqual(variants.count, 8)
            for (k, image) in variants.enumerated() {
                let score = try evaluator.score(image, caption: scene.caption)
                XCTAssertTrue(score.allCorrect, "scene \(i) variant \(k): \(scene.caption)")
            }
            // Not all the same picture.
            XCTAssertGreaterThan(Set(variants.map(\.pixels)).count, 1, "scene \(i)")
        }
    }

    func testIdenticalPicturesHaveNoSpread() throws {
        let scene = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase)
        let image = SceneRenderer.render(scene)
        let spreads = try SeedVariety.spread(of: Array(repeating: image, count: 8), caption: scene.caption)
        XCTAssertEqual(spreads.count, scene.objects.count)
        for s in spreads {
            let s = try XCTUnwrap(s)
            // Zero up to the rounding of the mean of eight equal doubles.
            XCTAssertEqual(s.size, 0, accuracy: 1e-9)
            XCTAssertEqual(s.centre, 0, accuracy: 1e-9)
            XCTAssertEqual(s.found, 8)
        }
    }

    func testJitterAndSizeAreMeasuredAsDrawn() throws {
        // One object with no size word: size drawn from 14…22 px, jitter uniform in −3…3 px
        // each way (standard deviation 2 per axis, so √8 ≈ 2.83 for the centre).
        let scene = try heldOutScene { s in
            s.objects.count == 1 && !["small ", "medium ", "big "].contains { s.caption.contains($0) }
                && s.objects[0].position.name == "center"
        }
        let spreads = try SeedVariety.spread(of: SeedVariety.renderVariants(of: scene, count: 64, seed: 7),
                                             caption: scene.caption)
        let s = try XCTUnwrap(spreads.first ?? nil)
        XCTAssertEqual(s.found, 64)
        XCTAssertEqual(s.centre, 2.83, accuracy: 0.5, "\(scene.caption)")
        // Sizes 14…22 in steps of 2 have a standard deviation of 2.83 px of side; √area of a
        // circle or triangle is a fixed fraction of the side (0.89, 0.73).
        XCTAssertGreaterThan(s.size, 1.5, "\(scene.caption)")
        XCTAssertLessThan(s.size, 3.5, "\(scene.caption)")
    }

    func testBiasCorrectionFactor() {
        // c4 from its definition's known values (e.g. ASTM tables: c4(2) = 0.7979, c4(8) = 0.9650).
        XCTAssertEqual(SeedVariety.c4(2), 0.7979, accuracy: 1e-4)
        XCTAssertEqual(SeedVariety.c4(8), 0.9650, accuracy: 1e-4)
        XCTAssertEqual(SeedVariety.c4(25), 0.9896, accuracy: 1e-4)
    }

    func testAMediumObjectKeepsItsSize() throws {
        let scene = try heldOutScene { s in s.objects.count == 1 && s.caption.contains("medium ") }
        XCTAssertEqual(SeedVariety.sizes(for: scene.objects[0], caption: scene.caption), [18])
        let spreads = try SeedVariety.spread(of: SeedVariety.renderVariants(of: scene, count: 16, seed: 3),
                                             caption: scene.caption)
        let s = try XCTUnwrap(spreads.first ?? nil)
        XCTAssertEqual(s.size, 0, accuracy: 1e-12, "\(scene.caption): only the jitter varies")
        XCTAssertGreaterThan(s.centre, 1, "\(scene.caption)")
    }

    func testAnObjectMissingFromThePicturesHasNoSpread() throws {
        let scene = try heldOutScene { $0.objects.count == 1 }
        var empty = scene
        empty.objects = []
        let background = SceneRenderer.render(empty)
        let spreads = try SeedVariety.spread(of: Array(repeating: background, count: 8), caption: scene.caption)
        XCTAssertEqual(spreads.count, 1)
        XCTAssertNil(spreads[0] ?? nil)
    }
}
