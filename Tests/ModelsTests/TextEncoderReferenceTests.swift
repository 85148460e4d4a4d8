import Foundation
import Kernels
import TestSupport
import XCTest
@testable import Models

/// CLIPTextModel against transformers: every hidden state, last_hidden_state and clip skip.
final class TextEncoderReferenceTests: XCTestCase {
    private func check(_ model: String) throws {
        let ref = try Reference(model)
        let encoder = try CLIPTextEncoder(directory: ref.folder.appendingPathComponent("text_encoder"), pool: .shared)
        let tokenizer = try CLIPTokenizer(directory: ref.folder.appendingPathComponent("tokenizer"))
        let idsTensor = try ref.tensor("text.input_ids")
        let n = idsTensor.shape[0], l = idsTensor.shape[1]
        let flat = idsTensor.toArray().map { Int($0) }
        let ids = (0..<n).map { Array(flat[($0 * l)..<(($0 + 1) * l)]) }
        // The recorded ids are what our tokenizer produces for the recorded prompts.
        let index = try FixturePaths.json("reference/index.json")
        let prompts = ((((index["models"] as? [String: Any])?[model] as? [String: Any])?["tensors"] as? [String: Any])?["text.input_ids"] as? [String: Any])?["prompts"] as? [String]
        XCTAssertEqual(try XCTUnwrap(prompts).map { tokenizer.encodeForModel($0) }, ids)

        let expected = try ref.tensor("text.last_hidden_state")
        let out = Tensor(zeros: expected.shape)
        var states: [Int: Tensor] = [:]
        try encoder.run(ids, layersToRun: encoder.config.numHiddenLayers, clipSkip: 0, output: out) { i, h in
            let copy = Tensor(zeros: h.shape)
            copy.copy(from: h)
            states[i] = copy
        }
        assertClose(out, expected, "\(model) last_hidden_state")
        for i in 0...encoder.config.numHiddenLayers {
            assertClose(try XCTUnwrap(states[i]), try ref.tensor("text.hidden_states.\(i)"), "\(model) hidden_states.\(i)")
        }
        let skipped = Tensor(zeros: expected.shape)
        try encoder.encode(ids, clipSkip: 1, output: skipped)
        assertClose(skipped, try ref.tensor("text.clip_skip_1"), "\(model) clip_skip 1")

        XCTAssertThrowsError(try encoder.encode([[5, 100_000]], output: Tensor(zeros: [1, 2, encoder.config.hiddenSize]))) {
            XCTAssertEqual($0 as? TextEncoderError, .tokenOutOfRange(id: 100_000, vocabularySize: encoder.config.vocabSize))
        }
    }

    func testEachCoreTakesItsSequencesThroughTheWholeEncoder() throws {
        // With whole sequences for every thread (2 or 4 of them on two threads) each core runs
        // its share through every layer on its own: the result must be, bit for bit, that of
        // encoding each share alone on one thread, with and without clip skip. (Not that of one
        // batch with every operator split over the cores: this tiny encoder's 32-wide layers
        // run on sgemm, whose bits depend on how the rows are blocked.)
        let ref = try Reference("tiny-sd1")
        let folder = ref.folder.appendingPathComponent("text_encoder")
        let tokenizer = try CLIPTokenizer(directory: ref.folder.appendingPathComponent("tokenizer"))
        let ids = ["a red circle", "", "a blue square on the left", "two green triangles"].map { tokenizer.encodeForModel($0) }
        let two = try CLIPTextEncoder(directory: folder, pool: ThreadPool(threadCount: 2))
        let one = try CLIPTextEncoder(directory: folder, pool: ThreadPool(threadCount: 1))
        let d = one.config.hiddenSize, l = ids[0].count
        for clipSkip in [0, 1] {
            for n in [2, 4] {
                let out = Tensor(zeros: [n, l, d])
                try two.encode(Array(ids.prefix(n)), clipSkip: clipSkip, output: out)
                var want = [Float]()
                for share in [Array(ids.prefix(n / 2)), Array(ids.prefix(n).dropFirst(n / 2))] {
                    let part = Tensor(zeros: [n / 2, l, d])
                    try one.encode(share, clipSkip: clipSkip, output: part)
                    want += part.toArray()
                }
                assertBitIdentical(out.toArray(), want,
                                   "clip skip \(clipSkip), \(n) sequences on two threads against each core's share alone")
            }
        }
    }

    func testSequencesPerCoreOnCLIPWidthLayers() throws {
        // The same on CLIP ViT-L's widths (768, packed for the AVX-512 tile where the CPU has
        // it; fused attention at head dim 64), two layers of random weights: two sequences on
        // two threads take the per-core path and give each sequence's bits alone. With packed
        // layers those are also the split operators' bits (three threads: split operators).
        var config = CLIPTextConfig.sd15
        config.numHiddenLayers = 2
        let ids = [[49406, 320, 736, 49407] + Array(repeating: 49407, count: 73),
                   [49406, 49407] + Array(repeating: 49407, count: 75)]
        let two = try CLIPTextEncoder.randomWeights(config: config, seed: 3, pool: ThreadPool(threadCount: 2))
        let one = try CLIPTextEncoder.randomWeights(config: config, seed: 3, pool: ThreadPool(threadCount: 1))
        let three = try CLIPTextEncoder.randomWeights(config: config, seed: 3, pool: ThreadPool(threadCount: 3))
        XCTAssertEqual(two.sequencesPerCore(batch: 2, length: 77), 1)
        XCTAssertNil(three.sequencesPerCore(batch: 2, length: 77))
        XCTAssertNil(one.sequencesPerCore(batch: 2, length: 77))
        let d = config.hiddenSize
        let got = Tensor(zeros: [2, 77, d]), split = Tensor(zeros: [2, 77, d])
        try two.encode(ids, output: got)
        try three.encode(ids, output: split)
        var want = [Float]()
        for seq in ids {
            let part = Tensor(zeros: [1, 77, d])
            try one.encode([seq], output: part)
            want += part.toArray()
        }
        assertBitIdentical(got.toArray(), want, "two sequences on two threads against each alone")
        if CPUFeatures.useAVX512Kernels {
            assertBitIdentical(got.toArray(), split.toArray(), "packed layers, against the split operators")
        }
    }

    func testTinySD1() throws { try check("tiny-sd1") }
    func testTinySD2() throws { try check("tiny-sd2") }
}
