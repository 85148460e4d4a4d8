import Foundation
import XCTest

/// The two checks the pipeline reference tests make against a diffusers recording in
/// Tests/Fixtures: the final latents within 1e-4 of their largest value, and every pixel
/// within 1/255.
enum ReferenceChecks {
    static let fixtures = PipelineReferenceTests.fixtures

    /// A fixture file's bytes (`path` relative to Tests/Fixtures).
    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(path)))
    }

    /// A fixture file of little-endian Float32 values.
    static func floats(_ path: String) throws -> [Float] {
        try Data(contentsOf: fixtures.appendingPathComponent(path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// `latents` against the recording `path`: same count, largest difference under 1e-4 of
    /// the recording's largest magnitude (at least 1).
    static func assertLatents(_ latents: [Float], match path: String, _ id: String,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let reference = try floats(path)
        XCTAssertEqual(latents.count, reference.count, id, file: file, line: line)
        let scale = max(1, reference.map { abs($0) }.max() ?? 1)
        let difference = zip(latents, reference).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(difference / scale, 1e-4, "\(id): final latents", file: file, line: line)
    }

    /// `pixels` against the recorded image `path`: same size, no value off by more than 1.
    static func assertImage(_ pixels: [UInt8], matches path: String, _ id: String,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try bytes(path)
        XCTAssertEqual(pixels.count, expected.count, id, file: file, line: line)
        let worst = zip(pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 255
        XCTAssertLessThanOrEqual(worst, 1, "\(id): a pixel differs by \(worst)/255", file: file, line: line)
    }
}
