import Foundation
import XCTest
import Pipeline
import Sampling
@testable import Evaluation

/// End to end: diffusiond's own engine on the committed `models/shapes`, held-out
/// captions, scored by the strict evaluator (issue 18). The bounds are regression guards of
/// what the committed checkpoint achieves on these 8 under the strict rules, measured
/// 2026-12-03: background 3 of 8, object colour 3 of 12, object shape 0 of 12, object
/// position 12 of 12, every object's colour and shape 0 of 8 (its squares bow into pillows
/// and stars, its circles are lumpy, its edges soft, many objects carry specks: see
/// models/shapes/README.md, Metrics; the old, loosened evaluator passed 8 of 8). Each
/// bound is the measured count less one where that leaves a bound, so that a thread count
/// changing the last bits of a pixel cannot flip it; a broken engine, model or evaluator
/// still fails here (positions above all). Issue 18's targets (95% / 90%) are for the
/// retrained model.
final class BuiltInModelAdherenceTests: XCTestCase {
    static let model = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("models/shapes")

    func testEngineDrawsBackgroundsColoursShapesAndPositionsOfHeldOutCaptions() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.model,
                                               threads: ProcessInfo.processInfo.activeProcessorCount)
        var items: [(caption: String, image: RGBImage)] = []
        for i in 0..<8 {
            let caption = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase + UInt64(i)).caption
            let request = GenerationRequest(prompt: caption, width: 64, height: 64, steps: 25,
                                            sampler: .euler, guidance: 5, seed: UInt64(i))
            let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            XCTAssertEqual(image.width, 64)
            items.append((caption, image))
        }
        let summary = try AdherenceSummary(items: items, evaluator: AdherenceEvaluator())
        XCTAssertEqual(summary.count, 8)
        XCTAssertEqual(summary.objects, 12)
        XCTAssertGreaterThanOrEqual(summary.background, 2, "backgrounds: \(summary.failures)")
        XCTAssertGreaterThanOrEqual(summary.objectColor, 2, "object colours: \(summary.failures)")
        XCTAssertGreaterThanOrEqual(summary.objectPosition, 11, "object positions: \(summary.failures)")
    }
}
