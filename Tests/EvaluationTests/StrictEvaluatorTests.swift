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
}
