import XCTest

/// `got` and `want` hold the same floats bit for bit, as many of them; a failure names `what`
/// and the first element that differs. Shared by the test targets that compare kernels and
/// models bit for bit (KernelsTests, ModelsTests).
public func assertBitIdentical(_ got: [Float], _ want: [Float], _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, "\(what): element count", file: file, line: line)
    let first = zip(got, want).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
    XCTAssertNil(first, "\(what): element \(first?.offset ?? 0) is \(first?.element.0 ?? 0), want \(first?.element.1 ?? 0)",
                 file: file, line: line)
}
