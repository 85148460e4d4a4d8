import Foundation
import XCTest
@testable import Pipeline
import Models
import Sampling

/// Single-file checkpoints end to end: each tiny SD 1.x / SD 2.x file (original LDM key
/// names, fp16, written by tools/fixtures/single_file_refs.py) must give the image of
/// diffusers' `StableDiffusionPipeline.from_single_file` within 1/255 at every pixel, with
/// the family's standard scheduler config and, for one case, the prediction type overridden.
final class SingleFilePipelineTests: XCTestCase {
    typealias Case = PipelineReferenceTests.Case
    struct Model: Decodable { var file: String; var tokenizer: String }
    struct Index: Decodable { var models: [String: Model]; var cases: [Case] }

    static var fixtures: URL { PipelineReferenceTests.fixtures }

    func testSingleFilesGenerateDiffusersImagesWithinOneLevel() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("single-file/index.json"))
        let index = try JSONDecoder().decode(Index.self, from: data)
        XCTAssertEqual(index.cases.count, 4)
        XCTAssertEqual(Set(index.cases.map(\.model)), ["tiny-sd1", "tiny-sd2"])
        for item in index.cases {
            let model = try XCTUnwrap(index.models[item.model])
            let prediction = try item.prediction.map { try XCTUnwrap(CheckpointPrediction(configValue: $0)) }
            let pipeline = try TextToImagePipeline(singleFile: Self.fixtures.appendingPathComponent(model.file),
                                                   tokenizerDirectory: Self.fixtures.appendingPathComponent(model.tokenizer),
                                                   prediction: prediction, threads: 2)
            XCTAssertEqual(pipeline.schedulerConfig.predictionType, item.prediction_type, item.id)
            let request = try item.request()
            let image = try pipeline.generate(request, snapshotEvery: 0) { _ in .proceed }
            let reference = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent(item.image)))
            XCTAssertEqual(image.width, item.width, item.id)
            XCTAssertEqual(image.height, item.height, item.id)
            guard image.pixels.count == reference.count else {
                XCTFail("\(item.id): \(image.pixels.count) bytes, reference \(reference.count)")
                continue
            }
            let differences = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }
            let worst = differences.max() ?? 255
            XCTAssertLessThanOrEqual(worst, 1, "\(item.id): \(differences.filter { $0 > 1 }.count) values differ by more than 1")
            print("\(item.id): worst pixel difference \(worst)/255")
        }
    }

    /// The wrong prediction type gives a visibly different image (the override is used).
    func testPredictionOverrideChangesTheImage() throws {
        let file = Self.fixtures.appendingPathComponent("single-file/tiny-sd2.safetensors")
        let tokenizer = Self.fixtures.appendingPathComponent("tiny-sd2/tokenizer")
        let request = GenerationRequest(prompt: "a photo of a cat", width: 24, height: 40, steps: 3, sampler: .euler,
                                        guidance: 7.5, seed: 5)
        let v = try TextToImagePipeline(singleFile: file, tokenizerDirectory: tokenizer, threads: 1)
        let eps = try TextToImagePipeline(singleFile: file, tokenizerDirectory: tokenizer, prediction: .epsilon, threads: 1)
        XCTAssertEqual(v.schedulerConfig.predictionType, "v_prediction")
        XCTAssertEqual(eps.schedulerConfig.predictionType, "epsilon")
        let a = try v.generate(request, snapshotEvery: 0) { _ in .proceed }
        let b = try eps.generate(request, snapshotEvery: 0) { _ in .proceed }
        XCTAssertNotEqual(a.pixels, b.pixels)
    }

    func testInpaintingCheckpointIsRefusedForTextToImage() throws {
        let fm = FileManager.default
        let folder = fm.temporaryDirectory.appendingPathComponent("inpaint-\(UUID().uuidString)")
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: folder) }
        // A header-only edit: conv_in's shape becomes [32, 9, 3, 3] (F16 zeros appended).
        let source = Self.fixtures.appendingPathComponent("single-file/tiny-sd1.safetensors")
        let file = try SafeTensorsFile(path: source.path)
        var header: [String: Any] = [:]
        var body = Data()
        for name in file.tensorNames {
            guard let info = file.tensors[name] else { continue }
            var shape = info.shape
            var bytes = Data(try file.rawBytes(name))
            if name == "model.diffusion_model.input_blocks.0.0.weight" {
                shape = [32, 9, 3, 3]
                bytes = Data(count: 32 * 9 * 9 * 2)
            }
            header[name] = ["dtype": info.dtype.rawValue, "shape": shape, "data_offsets": [body.count, body.count + bytes.count]] as [String: Any]
            body.append(bytes)
        }
        let json = try JSONSerialization.data(withJSONObject: header)
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(body)
        let url = folder.appendingPathComponent("inpaint.safetensors")
        try out.write(to: url)
        XCTAssertThrowsError(try TextToImagePipeline(singleFile: url, tokenizerDirectory: Self.fixtures.appendingPathComponent("tiny-sd1/tokenizer"),
                                                     threads: 1)) { error in
            XCTAssertEqual(error as? SingleFileError, .inpaintingNotSupported(file: url.path))
        }
    }
}
