import CPNG
import Foundation
import Jobs
import Pipeline
import XCTest

final class PNGTests: XCTestCase {
    func gradient(_ w: Int, _ h: Int) -> RGBImage {
        var pixels: [UInt8] = []
        for y in 0..<h { for x in 0..<w { pixels += [UInt8(x * 255 / max(1, w - 1)), UInt8(y * 7 % 256), UInt8((x ^ y) & 0xFF)] } }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    func testRoundTripKeepsPixelsAndParametersChunk() throws {
        let image = gradient(37, 21)
        let png = try PNGCodec.encode(image, text: [("parameters", "a cat\nSteps: 3")])
        XCTAssertEqual(try PNGCodec.decode(png), image)
        let chunks = try PNGChunks.read(png)
        XCTAssertEqual(chunks.first?.type, "IHDR")
        XCTAssertEqual(chunks[1].type, "tEXt", "text chunk sits right after IHDR, before IDAT")
        XCTAssertEqual(chunks[1].textEntry?.keyword, "parameters")
        XCTAssertEqual(chunks[1].textEntry?.text, "a cat\nSteps: 3")
        XCTAssertLessThan(chunks.firstIndex { $0.type == "tEXt" } ?? 99, chunks.firstIndex { $0.type == "IDAT" } ?? -1)
    }

    /// libpng itself (full read API) must see the text chunk, CRC included.
    func testLibpngReadsTheTextChunk() throws {
        let png = try PNGCodec.encode(gradient(8, 8), text: [("parameters", "caf\u{e9} prompt")])
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        XCTAssertNotEqual(png.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }, 0)
        XCTAssertEqual(image.width, 8)
        png_image_free(&image)
        let entry = try PNGChunks.read(png).compactMap(\.textEntry).first
        XCTAssertEqual(entry?.text, "caf\u{e9} prompt")
        XCTAssertEqual(try PNGChunks.read(png)[1].data.last, 0x74, "Latin-1 stays one byte per character in tEXt")
    }

    func testNonLatin1TextUsesITXt() throws {
        let png = try PNGCodec.encode(gradient(4, 4), text: [("parameters", "赤い円")])
        let chunk = try PNGChunks.read(png)[1]
        XCTAssertEqual(chunk.type, "iTXt")
        XCTAssertEqual(chunk.textEntry?.text, "赤い円")
    }

    /// A tiny file whose text chunk claims 687 MB: refused from its chunk list before libpng
    /// allocates what the length field says (a `make fuzz` find, kept in Tests/FuzzCorpus/png).
    func testAChunkLongerThanTheFileIsRefusedBeforeDecoding() throws {
        var png = try PNGCodec.encode(RGBImage(width: 1, height: 1, pixels: [1, 2, 3]), text: [("parameters", "x")])
        let text = try XCTUnwrap((0..<png.count - 4).first { png[$0..<$0 + 4].elementsEqual("tEXt".utf8) }) - 4
        png.replaceSubrange(text..<text + 4, with: [0x29, 0x00, 0x00, 0x2A])
        XCTAssertThrowsError(try PNGCodec.decode(png)) { error in
            XCTAssertEqual((error as? PNGError)?.reason, "truncated chunk at byte \(text)")
        }
    }

    func testCorruptionIsDetected() throws {
        var png = try PNGCodec.encode(gradient(4, 4), text: [("parameters", "x")])
        png[40] ^= 0xFF
        XCTAssertThrowsError(try PNGChunks.read(png))
        XCTAssertThrowsError(try PNGChunks.read(Array(png.prefix(png.count - 5))))
        XCTAssertThrowsError(try PNGCodec.decode([1, 2, 3]))
    }

    func testCRC32KnownAnswer() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum(Array("IEND".utf8)), 0xAE42_6082)
    }

    func testAutomatic1111Parameters() {
        var request = GenerationRequest(prompt: "a red circle", negativePrompt: "blurry", width: 128, height: 64, steps: 20,
                                        sampler: .eulerAncestral, guidance: 7.5, seed: 42)
        XCTAssertEqual(A1111Parameters.text(for: request, model: "shapes"),
                       "a red circle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 128x64, Model: shapes, RNG: CPU")
        request.negativePrompt = ""
        request.schedule = .karras
        request.sampler = .dpmpp2m
        request.guidance = 7
        request.rng = .philox
        XCTAssertEqual(A1111Parameters.text(for: request, model: "shapes"),
                       "a red circle\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 128x64, Model: shapes")
        request.decoder = .tiny
        XCTAssertEqual(A1111Parameters.text(for: request, model: "shapes"),
                       "a red circle\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 128x64, Model: shapes, VAE Decoder: TAESD")
    }

    /// `recordedWeights` reads back what `text(for:…, weights:)` wrote, and only that: a prompt
    /// or a LoRA named like the field does not count.
    func testRecordedWeightsReadsTheTrailingField() {
        var request = GenerationRequest(prompt: "Weights: f16, a cat", width: 64, height: 64, steps: 2,
                                        sampler: .euler, guidance: 5, seed: 1)
        for weights in ["f16", "f32"] {
            XCTAssertEqual(A1111Parameters.recordedWeights(A1111Parameters.text(for: request, model: "m", weights: weights)), weights)
        }
        XCTAssertEqual(A1111Parameters.recordedWeights(A1111Parameters.text(for: request, model: "m")), "stored")
        request.loras = [LoRASelection(name: "a", file: URL(fileURLWithPath: "/l/a.safetensors"), weight: 1),
                         LoRASelection(name: "Weights", file: URL(fileURLWithPath: "/l/w.safetensors"), weight: 1)]
        let text = A1111Parameters.text(for: request, model: "m", loraHashes: ["a": "0123", "Weights": "4567"])
        XCTAssertTrue(text.hasSuffix(#"Lora hashes: "a: 0123, Weights: 4567""#), text)
        XCTAssertEqual(A1111Parameters.recordedWeights(text), "stored")
        XCTAssertEqual(A1111Parameters.recordedWeights(A1111Parameters.text(for: request, model: "m", loraHashes: ["a": "0123", "Weights": "4567"],
                                                                           weights: "f16")), "f16")
    }

    func testAtomicWriteLeavesNoTemporaryFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        try AtomicFile.makeDirectory(dir.appendingPathComponent("a/b"))
        let target = dir.appendingPathComponent("a/b/out.txt")
        try AtomicFile.write("one", to: target)
        try AtomicFile.write("two", to: target)
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target.deletingLastPathComponent().path), ["out.txt"])
        try FileManager.default.removeItem(at: dir)
    }
}
