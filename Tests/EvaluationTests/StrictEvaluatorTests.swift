import Foundation
import XCTest
import Pipeline
@testable import Evaluation

/// The strict evaluator (issue 18) on the training renders themselves: every field right,
/// and nothing found wrong with any object or background.
final class StrictEvaluatorTests: XCTestCase {
    func testFiveHundredTrainingRendersScoreFully() throws {
        let evaluator = AdherenceEvaluator()
        var items: [(caption: String, image: RGBImage)] = []
        for seed in 0..<UInt64(500) {
            let scene = SceneSampler.scene(seed: seed)
            let image = SceneRenderer.render(scene)
            items.append((scene.caption, image))
            let seen = evaluator.detector.detect(image)
            XCTAssertEqual(seen.backgroundDefects, [], "seed \(seed)")
            XCTAssertEqual(seen.objects.count, scene.objects.count, "seed \(seed)")
            for o in seen.objects {
                XCTAssertEqual(o.colorDefects + o.shapeDefects, [], "seed \(seed): \(o.summary)")
                XCTAssertEqual(o.medianColor, RGB(o.color), "seed \(seed)")
            }
        }
        let summary = try AdherenceSummary(items: items, evaluator: evaluator)
        XCTAssertEqual(summary.count, 500)
        XCTAssertEqual(summary.all, 500, "\(summary.failures)")
    }

    func testRendersTwiceAsLargeScoreFullyAndTheirBlurStillFails() throws {
        // 128 × 128 pictures (each render pixel as 2 × 2): limits scale with the image.
        let evaluator = AdherenceEvaluator()
        for seed in 0..<UInt64(60) {
            let scene = SceneSampler.scene(seed: seed)
            let small = SceneRenderer.render(scene)
            var pixels = [UInt8](repeating: 0, count: 128 * 128 * 3)
            for y in 0..<128 {
                for x in 0..<128 {
                    for c in 0..<3 { pixels[3 * (y * 128 + x) + c] = small.pixels[3 * ((y / 2) * 64 + x / 2) + c] }
                }
            }
            let big = RGBImage(width: 128, height: 128, pixels: pixels)
            let score = try evaluator.score(big, caption: scene.caption)
            XCTAssertTrue(score.allCorrect, "seed \(seed): \(score.objects.map { $0.detected?.summary ?? "none" })")
            // σ = 3 px at 128 is σ = 1.5 px at 64.
            let blurred = try evaluator.score(RenderDamage.blurred(big, sigma: 3), caption: scene.caption)
            XCTAssertFalse(blurred.colorsAndShapesCorrect, "seed \(seed)")
        }
    }
}
