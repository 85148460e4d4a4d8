import Foundation
import XCTest
import Pipeline
import Sampling
@testable import Evaluation

/// End to end: diffusiond's own engine on the committed `models/shapes`, held-out
/// captions, scored by the strict evaluator (issue 18), with the model card's settings
/// (25 Euler steps, guidance 1.5). The bounds are regression guards of what the committed
/// checkpoint (the second edition's 16,000-step UNet, its decoder tuned on that UNet's own
/// latents by tools/train/sample_decoder.py) achieves on these 8 under the strict rules,
/// measured 2026-12-05: background 8 of 8, object colour 11 of 12, object shape 7 of 12,
/// object position 12 of 12, every object's colour and shape 3 of 8 (outlines are still
/// notched or bowed, triangle sides curve: see models/shapes/README.md, Metrics). Each
/// bound is the measured count less one, so that a thread count changing the last bits of
/// a pixel cannot flip it; a broken engine, model or evaluator still fails here. Issue 18's
/// targets (95% / 90% of 200 captions) are not met by this checkpoint.
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
                                            sampler: .euler, guidance: 1.5, seed: UInt64(i))
            let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            XCTAssertEqual(image.width, 64)
            items.append((caption, image))
        }
        let summary = try AdherenceSummary(items: items, evaluator: AdherenceEvaluator())
        print("built-in model, 8 held-out captions: background \(summary.background), colour \(summary.objectColor), "
              + "shape \(summary.objectShape), position \(summary.objectPosition) of \(summary.objects) objects; "
              + "colour + shape \(summary.colorsAndShapes), + position \(summary.colorsShapesAndPositions) of 8")
        XCTAssertEqual(summary.count, 8)
        XCTAssertEqual(summary.objects, 12)
        XCTAssertGreaterThanOrEqual(summary.background, 7, "backgrounds: \(summary.failures)")
        XCTAssertGreaterThanOrEqual(summary.objectColor, 10, "object colours: \(summary.failures)")
        XCTAssertGreaterThanOrEqual(summary.objectShape, 6, "object shapes: \(summary.failures)")
        XCTAssertGreaterThanOrEqual(summary.objectPosition, 11, "object positions: \(summary.failures)")
        XCTAssertGreaterThanOrEqual(summary.colorsAndShapes, 2, "whole images: \(summary.failures)")
    }
}
