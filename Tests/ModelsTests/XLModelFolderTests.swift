import Foundation
import Kernels
import XCTest
@testable import Models

/// Loading SDXL-family folders (`StableDiffusionXLPipeline`): the family from
/// model_index.json, the second tokenizer and text encoder, and the errors for parts that
/// are missing or do not fit together.
final class XLModelFolderTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("xl-folder-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func copyOfFixture() throws -> URL {
        let dst = dir.appendingPathComponent("tiny-sdxl")
        try FileManager.default.copyItem(at: FixturePaths.url("tiny-sdxl"), to: dst)
        return dst
    }

    /// Rewrites `file` (a JSON object) of `folder` with `change`.
    private func edit(_ folder: URL, _ file: String, _ change: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent(file)
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    private func loadError(_ folder: URL) -> Error? {
        do {
            _ = try StableDiffusionModel(directory: folder, pool: ThreadPool(threadCount: 1))
            return nil
        } catch {
            return error
        }
    }

    func testFixtureLoadsAsSDXL() throws {
        let folder = FixturePaths.url("tiny-sdxl")
        XCTAssertEqual(try ModelFamily(folder: folder), .stableDiffusionXL)
        XCTAssertEqual(try ModelFamily(folder: FixturePaths.url("tiny-sd1")), .stableDiffusion)
        let model = try StableDiffusionModel(directory: folder, pool: ThreadPool(threadCount: 1))
        XCTAssertEqual(model.family, .stableDiffusionXL)
        let xl = try XCTUnwrap(model.xl)
        XCTAssertTrue(xl.forceZerosForEmptyPrompt)
        XCTAssertEqual(xl.encoder.projectionWidth, 20)
        XCTAssertEqual(xl.tokenizer.padTokenID, 0)
        XCTAssertEqual(model.textEncoder.config.hiddenSize + xl.encoder.config.hiddenSize, model.unet.config.crossAttentionDim)
        // An SD folder has no second encoder.
        XCTAssertNil(try StableDiffusionModel(directory: FixturePaths.url("tiny-sd1"), pool: ThreadPool(threadCount: 1)).xl)
    }

    func testForceZerosComesFromModelIndex() throws {
        let folder = try copyOfFixture()
        try edit(folder, "model_index.json") { $0["force_zeros_for_empty_prompt"] = false }
        XCTAssertEqual(try StableDiffusionModel(directory: folder, pool: ThreadPool(threadCount: 1)).xl?.forceZerosForEmptyPrompt, false)
        // Absent: StableDiffusionXLPipeline's default, true.
        try edit(folder, "model_index.json") { $0["force_zeros_for_empty_prompt"] = nil }
        XCTAssertEqual(try StableDiffusionModel(directory: folder, pool: ThreadPool(threadCount: 1)).xl?.forceZerosForEmptyPrompt, true)
    }

    func testMissingOrWrongSecondEncoderIsNamed() throws {
        let folder = try copyOfFixture()
        try edit(folder, "model_index.json") { $0["text_encoder_2"] = nil }
        XCTAssertEqual(loadError(folder) as? ModelFolderError, .missingComponent(folder: folder.path, component: "text_encoder_2"))
        try edit(folder, "model_index.json") { $0["text_encoder_2"] = ["transformers", "CLIPTextModel"] }
        XCTAssertEqual(loadError(folder) as? ModelFolderError,
                       .unsupportedComponent(folder: folder.path, component: "text_encoder_2", className: "CLIPTextModel"))
        try edit(folder, "model_index.json") { $0["text_encoder_2"] = ["transformers", "CLIPTextModelWithProjection"] }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("tokenizer_2"))
        XCTAssertEqual(loadError(folder) as? ModelFolderError, .missingComponent(folder: folder.path, component: "tokenizer_2"))
    }

    /// The refiner's folder (StableDiffusionXLImg2ImgPipeline, text_encoder null) is refused by its class.
    func testRefinerFolderIsRefusedByItsClass() throws {
        let folder = try copyOfFixture()
        try edit(folder, "model_index.json") {
            $0["_class_name"] = "StableDiffusionXLImg2ImgPipeline"
            $0["text_encoder"] = [NSNull(), NSNull()]
        }
        let text = "\(try XCTUnwrap(loadError(folder)))"
        XCTAssertTrue(text.contains("StableDiffusionXLImg2ImgPipeline") && text.contains("only StableDiffusionXLPipeline"), text)
    }

    /// `_get_add_time_ids`' check: 6 × addition_time_embed_dim + projection_dim must be the
    /// UNet's projection_class_embeddings_input_dim.
    func testProjectionDimMustFitTheUNetsAdditionEmbedding() throws {
        let folder = try copyOfFixture()
        try edit(folder, "unet/config.json") { $0["addition_time_embed_dim"] = 9 }
        let error = try XCTUnwrap(loadError(folder) as? ModelFolderError)
        let text = "\(error)"
        XCTAssertTrue(text.contains("projection_class_embeddings_input_dim 68") && text.contains("addition_time_embed_dim 9")
                      && text.contains("text_encoder_2 projection_dim 20"), text)
    }

    /// An SDXL UNet in a folder that says StableDiffusionPipeline has nothing to feed its
    /// text_time embedding: refused, saying so.
    func testSDXLUNetInAnSDFolderIsRefused() throws {
        let folder = try copyOfFixture()
        try edit(folder, "model_index.json") {
            $0["_class_name"] = "StableDiffusionPipeline"
            $0["text_encoder_2"] = nil
            $0["tokenizer_2"] = nil
        }
        XCTAssertEqual(try ModelFamily(folder: folder), .stableDiffusion)
        let text = "\(try XCTUnwrap(loadError(folder)))"
        XCTAssertTrue(text.contains("text_time") && text.contains("StableDiffusionXLPipeline"), text)
    }
}

/// The built-in shapes of SDXL's second encoder and random-weight SDXL models (benchmarks).
final class XLRandomModelTests: XCTestCase {
    func testBigGShapesAndRandomXLModel() throws {
        let bigG = CLIPTextConfig.sdxlBigG
        XCTAssertEqual([bigG.hiddenSize, bigG.intermediateSize, bigG.numHiddenLayers, bigG.numAttentionHeads], [1280, 5120, 32, 20])
        XCTAssertEqual(bigG.projectionDim, 1280)
        XCTAssertEqual(bigG.eosTokenID, 2)
        // A tiny random SDXL model with the fixture's configs: the second encoder has its projection.
        let folder = FixturePaths.url("tiny-sdxl")
        let text2 = try CLIPTextConfig(contentsOf: folder.appendingPathComponent("text_encoder_2/config.json"))
        let model = try StableDiffusionModel.randomWeights(
            text: try CLIPTextConfig(contentsOf: folder.appendingPathComponent("text_encoder/config.json")),
            unet: try UNetConfig(contentsOf: folder.appendingPathComponent("unet/config.json")),
            vae: try VAEConfig(contentsOf: folder.appendingPathComponent("vae/config.json")),
            tokenizer: try CLIPTokenizer(directory: folder.appendingPathComponent("tokenizer")),
            secondText: text2, pool: ThreadPool(threadCount: 1))
        XCTAssertEqual(model.family, .stableDiffusionXL)
        XCTAssertEqual(model.index.pipelineClass, "StableDiffusionXLPipeline")
        XCTAssertEqual(model.xl?.encoder.projectionWidth, text2.projectionDim)
    }
}
