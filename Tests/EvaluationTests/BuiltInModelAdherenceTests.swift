import Foundation
import XCTest
import Pipeline
import Sampling
@testable import Evaluation

/// End to end: diffusiond's own engine on the committed `models/shapes`, held-out
/// captions, scored by the strict evaluator (issue 18), with the model card's settings before
/// 5 Dec 2026 evening (25 Euler steps, guidance 1.5; the card's are now Euler a at eta 1.75,
/// the second test). The bounds are regression guards of what the committed
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
        let summary = try Self.scoreFirstEight(sampler: .euler)
        print("built-in model, 8 held-out captions: background \(summary.background), colour \(summary.objectColor), "
              + "shape \(summary.objectShape), position \(summary.objectPosition) of \(summary.objects) objects; "
              + "colour + shape \(summary.colorsAndShapes), + position \(summary.colorsShapesAndPositions) of 8")
        Self.assertAtLeast(summary, background: 7, colour: 10, shape: 6, position: 11, wholeImages: 2)
    }

    /// The card's settings since 6 Dec 2026: 25 Euler a steps at eta 1.75, guidance 1.5 (the
    /// shipped config's `defaults` for shapes). Measured then on the same 8 captions: background
    /// 6 of 8, object colour 9 of 12, shape 10 of 12, position 12 of 12, every object's colour
    /// and shape 5 of 8 (at eta 1, 5 Dec: 7, 10, 9, 12 and 5; Euler: 3 whole images). Bounds
    /// again the measured counts less one.
    func testShippedSettingsDrawTheHeldOutCaptions() throws {
        let summary = try Self.scoreFirstEight(sampler: .eulerAncestral, options: SamplerOptions(eta: 1.75))
        Self.assertAtLeast(summary, background: 5, colour: 8, shape: 9, position: 11, wholeImages: 4)
    }

    /// Counts of the 8 images (backgrounds, whole images) and their 12 objects (the rest).
    static func assertAtLeast(_ summary: AdherenceSummary, background: Int, colour: Int, shape: Int, position: Int,
                              wholeImages: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(summary.count, 8, file: file, line: line)
        XCTAssertEqual(summary.objects, 12, file: file, line: line)
        let checks = [("backgrounds", summary.background, background), ("object colours", summary.objectColor, colour),
                      ("object shapes", summary.objectShape, shape), ("object positions", summary.objectPosition, position),
                      ("whole images", summary.colorsAndShapes, wholeImages)]
        for (what, measured, bound) in checks {
            XCTAssertGreaterThanOrEqual(measured, bound, "\(what): \(summary.failures)", file: file, line: line)
        }
    }

    /// The strict scores of held-out captions 0…7, seeds 0…7, 25 steps of `sampler` at guidance 1.5.
    static func scoreFirstEight(sampler: SamplerKind, options: SamplerOptions = SamplerOptions()) throws -> AdherenceSummary {
        let pipeline = try TextToImagePipeline(modelDirectory: model,
                                               threads: ProcessInfo.processInfo.activeProcessorCount)
        var items: [(caption: String, image: RGBImage)] = []
        for i in 0..<8 {
            let caption = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase + UInt64(i)).caption
            let request = GenerationRequest(prompt: caption, width: 64, height: 64, steps: 25,
                                            sampler: sampler, guidance: 1.5, seed: UInt64(i), samplerOptions: options)
            let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            XCTAssertEqual(image.width, 64)
            items.append((caption, image))
        }
        return try AdherenceSummary(items: items, evaluator: AdherenceEvaluator())
    }
}
