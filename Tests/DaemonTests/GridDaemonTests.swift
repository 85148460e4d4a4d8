@testable import Daemon
import Foundation
import Jobs
import Pipeline
import XCTest

/// A grid job through the running daemon (issue 17): a 2×3 grid makes six images, one per
/// cell in row order with its own settings, and a grid.png of the right size with every
/// cell's image at its place.
final class GridDaemonTests: XCTestCase {
    func testTwoByThreeGridHasTheRightSizeAndCellOrder() throws {
        _ = try XCTUnwrap(DaemonHarness.fixtureModel)
        let daemon = try DaemonHarness()
        try daemon.start()
        try daemon.drop("grid.yaml", "prompt: a red circle\nseed: 3\ngrid: {x: {sampler: [euler, dpm++2m]}, y: {guidance: [3, 5, 7]}}\n")
        daemon.waitUntil("the grid job") { daemon.results.count == 1 }
        let (folder, result) = try XCTUnwrap(daemon.results.first)
        XCTAssertEqual(result.status, "done", result.error ?? "")
        XCTAssertEqual(result.images.count, 6)
        XCTAssertEqual(result.parameters.grid, ["x": ["sampler": ["euler", "dpm++2m"]], "y": ["guidance": ["3", "5", "7"]]])
        let dir = daemon.outbox.appendingPathComponent(folder)
        let grid = try PNGCodec.decode([UInt8](try Data(contentsOf: dir.appendingPathComponent("grid.png"))))
        // Cells of 32×32; a header row of 7 + 2·4 pixels and a label column for "guidance: 3".
        XCTAssertEqual(grid.width, 73 + 2 * 32)
        XCTAssertEqual(grid.height, 15 + 3 * 32)
        let expected = [("Euler", "3"), ("DPM++ 2M", "3"), ("Euler", "5"), ("DPM++ 2M", "5"), ("Euler", "7"), ("DPM++ 2M", "7")]
        var images: [[UInt8]] = []
        for k in 0..<6 {
            let png = [UInt8](try Data(contentsOf: dir.appendingPathComponent(String(format: "image-%03d.png", k + 1))))
            let text = String(decoding: png, as: UTF8.self)
            XCTAssertTrue(text.contains("Sampler: \(expected[k].0), CFG scale: \(expected[k].1), Seed: 3,"), "cell \(k + 1)")
            let cell = try PNGCodec.decode(png)
            images.append(cell.pixels)
            let left = 73 + (k % 2) * 32, top = 15 + (k / 2) * 32
            for y in 0..<32 {
                let row = Array(grid.pixels[((top + y) * grid.width + left) * 3..<((top + y) * grid.width + left + 32) * 3])
                XCTAssertEqual(row, Array(cell.pixels[y * 96..<(y + 1) * 96]), "cell \(k + 1) row \(y) in grid.png")
            }
        }
        XCTAssertEqual(Set(images).count, 6, "every cell differs")
        // diffusionctl show names the axes.
        let (status, shown) = try daemonShow(daemon, result.id)
        XCTAssertEqual(status, 0)
        XCTAssertTrue(shown.contains("grid x") && shown.contains("sampler: euler, dpm++2m"), shown)
        XCTAssertTrue(shown.contains("guidance: 3, 5, 7"), shown)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// `diffusionctl show ID` as people read it (not --json).
    func daemonShow(_ daemon: DaemonHarness, _ id: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try DaemonHarness.binary("diffusionctl"))
        p.arguments = ["--socket", daemon.socket.path, "show", id]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
