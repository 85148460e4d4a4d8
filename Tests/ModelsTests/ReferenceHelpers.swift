import Foundation
import Kernels
import XCTest
@testable import Models

/// Reference outputs recorded from diffusers / transformers (Tests/Fixtures/reference).
struct Reference {
    let file: SafeTensorsFile
    let model: String

    init(_ model: String) throws {
        self.model = model
        file = try SafeTensorsFile(path: FixturePaths.url("reference/\(model).safetensors").path)
    }

    func tensor(_ name: String) throws -> Tensor {
        let info = try XCTUnwrap(file.tensors[name], "reference \(model) lacks \(name)")
        return Tensor(shape: info.shape, values: try file.floats(name))
    }

    var folder: URL { FixturePaths.url(model) }
}

/// max |a − b| / max |ref|, the fixtures' tolerance measure.
func relativeError(_ actual: Tensor, _ reference: Tensor) -> Float {
    let a = actual.toArray(), r = reference.toArray()
    var maxDiff: Float = 0, scale: Float = 0
    for i in 0..<min(a.count, r.count) {
        maxDiff = max(maxDiff, abs(a[i] - r[i]))
        scale = max(scale, abs(r[i]))
    }
    if a.count != r.count || a.contains(where: { !$0.isFinite }) { return .infinity }
    return maxDiff / max(scale, 1e-30)
}

func assertClose(_ actual: Tensor, _ reference: Tensor, _ what: String, tolerance: Float = 1e-4,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, reference.shape, "\(what): shape", file: file, line: line)
    let e = relativeError(actual, reference)
    XCTAssertLessThanOrEqual(e, tolerance, "\(what): relative error \(e)", file: file, line: line)
}
