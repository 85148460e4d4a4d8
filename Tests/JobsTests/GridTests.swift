import Foundation
import Jobs
import Pipeline
import Sampling
import XCTest

/// `grid:` (issue 17): every cell is a checked job, row by row; the grid picture's layout.
final class GridTests: XCTestCase {
    func parser() -> JobFileParser {
        var defaults = JobDefaults()
        defaults.width = 32
        defaults.height = 32
        return JobFileParser(defaults: defaults)
    }

    func error(_ text: String) -> String {
        do { _ = try parser().parse(bytes: Array(text.utf8), file: "j.yaml"); return "accepted" } catch { return "\(error)" }
    }

    func testCellsAreCheckedJobsRowByRow() throws {
        let jobs = try parser().parse(bytes: Array("prompt: a cat\ngrid: {x: {sampler: [euler, dpm++2m]}, y: {guidance: [3, 5, 7]}}\n".utf8), file: "j.yaml")
        XCTAssertEqual(jobs.count, 1, "a grid is one job")
        let grid = try XCTUnwrap(jobs[0].grid)
        XCTAssertEqual(grid.columns, 2)
        XCTAssertEqual(grid.cells.map(\.sampler.rawValue), ["euler", "dpm++2m", "euler", "dpm++2m", "euler", "dpm++2m"])
        XCTAssertEqual(grid.cells.map(\.guidance), [3, 3, 5, 5, 7, 7])
        XCTAssertEqual(grid.columnLabels, ["euler", "dpm++2m"])
        XCTAssertEqual(grid.rowLabels, ["guidance: 3", "guidance: 5", "guidance: 7"])
        XCTAssertEqual(jobs[0].imagePlan.count, 6)
        // Seeds: the job's drawn seed for every cell, unless seed is an axis.
        let seeded = jobs[0].resolvingSeed()
        XCTAssertEqual(Set(try XCTUnwrap(seeded.grid).cells.map(\.seed)), [seeded.seed])
        let bySeed = try XCTUnwrap(parser().parse(bytes: Array("prompt: a\ngrid:\n  x:\n    seed: [1, 2, 3]\n".utf8), file: "j.yaml").first)
        XCTAssertEqual(try XCTUnwrap(bySeed.resolvingSeed().grid).cells.map(\.seed), [1, 2, 3])
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(jobs[0])), jobs[0])
    }

    func testBadGrids() {
        XCTAssertEqual(error("prompt: a\ngrid: {x: {sampler: [euler, nope]}}\n"),
                       "j.yaml:2:29: field 'sampler': unknown value \"nope\"; valid: \(SamplerKind.validNames)")
        XCTAssertEqual(error("prompt: a\ngrid: {x: {model: [a, b]}}\n").hasPrefix("j.yaml:2:12: field 'grid.x': \"model\" cannot be a grid axis; valid: prompt, "), true)
        XCTAssertEqual(error("prompt: a\nsteps: 3\ngrid: {x: {steps: [2, 4]}}\n"),
                       "j.yaml:3:12: field 'grid.x': steps is both a field of the job and a grid axis")
        XCTAssertEqual(error("prompt: a\ngrid: {z: {steps: [2]}}\n"), "j.yaml:2:8: field 'grid': unknown axis; valid: x, y")
        XCTAssertEqual(error("prompt: a\ncount: 2\ngrid: {x: {steps: [2]}}\n"),
                       "j.yaml:3:1: field 'grid': a grid job cannot have count (each cell is one image)")
        XCTAssertEqual(error("prompt: a\ngrid: {x: {steps: [1, 2, 3, 4, 5]}, y: {guidance: [1, 2, 3, 4]}}\n"),
                       "j.yaml:2:1: field 'grid': 20 cells, more than max_count (16)")
    }

    /// Cells in row order at their places; labels in the margins; white elsewhere.
    func testGridImageLayout() {
        let cells = (0..<6).map { k in RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: UInt8(20 + k * 30), count: 32 * 32 * 3)) }
        let grid = GridImage.compose(cells, columns: 2, columnLabels: ["euler", "dpm++2m"],
                                     rowLabels: ["guidance: 3", "guidance: 5", "guidance: 7"])
        // Header 7 + 2·4 pixels; label column 11 characters · 6 − 1 + 2·4.
        XCTAssertEqual(grid.width, 73 + 64)
        XCTAssertEqual(grid.height, 15 + 96)
        for k in 0..<6 {
            let x = 73 + (k % 2) * 32 + 16, y = 15 + (k / 2) * 32 + 16
            XCTAssertEqual(grid.pixels[(y * grid.width + x) * 3], UInt8(20 + k * 30), "cell \(k)")
        }
        let leftInk = (15..<grid.height).contains { y in (0..<73).contains { x in grid.pixels[(y * grid.width + x) * 3] == 0 } }
        let topInk = (0..<15).contains { y in (73..<grid.width).contains { x in grid.pixels[(y * grid.width + x) * 3] == 0 } }
        XCTAssertTrue(leftInk && topInk, "labels are drawn")
        XCTAssertEqual(Array(grid.pixels[0..<3]), [255, 255, 255])
    }
}
