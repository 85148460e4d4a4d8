#if canImport(Glibc)
import Glibc
#endif
import XCTest
import Foundation
import ControlProtocol

/// Framing over a real socket pair: lines split across reads, the size bound, truncation.
final class LineChannelTests: XCTestCase {
    private func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw WireError.system(call: "socketpair", errno: errno)
        }
        return (fds[0], fds[1])
    }

    func testReadsLinesAndEndOfStream() throws {
        let (a, b) = try socketPair()
        let reader = LineChannel(fd: a, maxLineBytes: 16)
        let writer = LineChannel(fd: b, maxLineBytes: 16)
        try writer.writeAll(Data("one\ntwo\n\nthree\n".utf8))
        writer.close()
        XCTAssertEqual(try reader.readLine(), Data("one".utf8))
        XCTAssertEqual(try reader.readLine(), Data("two".utf8))
        XCTAssertEqual(try reader.readLine(), Data())
        XCTAssertEqual(try reader.readLine(), Data("three".utf8))
        XCTAssertNil(try reader.readLine())
    }

    func testLineAtTheBoundIsAcceptedAndOneByteMoreIsRejected() throws {
        let (a, b) = try socketPair()
        let reader = LineChannel(fd: a, maxLineBytes: 16)
        let writer = LineChannel(fd: b, maxLineBytes: 16)
        try writer.writeAll(Data(repeating: 0x61, count: 16) + Data([0x0A]))
        XCTAssertEqual(try reader.readLine()?.count, 16)
        try writer.writeAll(Data(repeating: 0x62, count: 17) + Data([0x0A]))
        XCTAssertThrowsError(try reader.readLine()) { XCTAssertEqual($0 as? WireError, .lineTooLong(limit: 16)) }
    }

    func testUnterminatedFloodIsRejectedWithoutWaitingForANewline() throws {
        let (a, b) = try socketPair()
        let reader = LineChannel(fd: a, maxLineBytes: ControlWire.maxRequestLineBytes)
        let writer = LineChannel(fd: b, maxLineBytes: 16)
        // More than the bound and no newline, writer still open: the reader must not block forever.
        let flood = Data(repeating: 0x7B, count: ControlWire.maxRequestLineBytes + 1)
        let done = DispatchSemaphore(value: 0)
        Thread { try? writer.writeAll(flood); done.signal() }.start()
        XCTAssertThrowsError(try reader.readLine()) {
            XCTAssertEqual($0 as? WireError, .lineTooLong(limit: ControlWire.maxRequestLineBytes))
        }
        reader.close()
        done.wait()
    }

    func testEndOfStreamInsideALineIsTruncation() throws {
        let (a, b) = try socketPair()
        let reader = LineChannel(fd: a, maxLineBytes: 64)
        let writer = LineChannel(fd: b, maxLineBytes: 64)
        try writer.writeAll(Data("{\"type\":".utf8))
        writer.close()
        XCTAssertThrowsError(try reader.readLine()) { XCTAssertEqual($0 as? WireError, .truncatedLine) }
    }
}
