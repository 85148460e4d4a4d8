import Foundation
import XCTest
import Pipeline
@testable import Evaluation

/// The Swift port of the training renderer against the Python tool's own renders.
final class SceneRendererTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/adherence")

    /// FNV-1a 64 of the RGB bytes, as tools/train/render_checksums.py computes it.
    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    func testRendersEqualTheCommittedPythonRenders() throws {
        // tools/train/adherence_fixtures.py: scene-NN.ppm is scene FIXTURE_SEED_BASE + NN.
        let base = SceneSampler.heldOutSeedBase + 100_000
        for i in 0..<24 {
            let file = Self.fixtures.appendingPathComponent(String(format: "scene-%02d.ppm", i))
            let python = try PPM.read(file)
            let swift = SceneRenderer.render(SceneSampler.scene(seed: base + UInt64(i)))
            XCTAssertEqual(swift.width, 64)
            let differing = zip(swift.pixels, python.pixels).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "scene-\(i): \(differing) bytes differ")
        }
    }

    func testRenderChecksumsMatchThePythonRenderer() throws {
        struct Entry: Decodable { var seed: String; var fnv1a64: String }
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("render-checksums.json"))
        let entries = try JSONDecoder().decode([Entry].self, from: data)
        XCTAssertEqual(entries.count, 400)
        var mismatches: [String] = []
        for e in entries {
            let seed = try XCTUnwrap(UInt64(e.seed))
            let got = String(format: "%016llx", Self.fnv1a64(SceneRenderer.render(SceneSampler.scene(seed: seed)).pixels))
            if got != e.fnv1a64 { mismatches.append(e.seed) }
        }
        XCTAssertEqual(mismatches, [], "seeds whose render differs from the Python renderer's")
    }

    func testShapesAsRendered() {
        // A 14 px triangle: first row empty (pixel-centre sampling), then 2, 2, 4, 4 … 14 wide.
        let tri = SceneSampler.Object(color: .red, shape: .triangle, position: GridPosition(index: 4), size: 14, dx: 0, dy: 0)
        let image = SceneRenderer.render(.init(background: .black, objects: [tri], caption: ""))
        let box = tri.box()
        let widths = (box.y0..<box.y1).map { y in (0..<64).filter { image.pixels[3 * (y * 64 + $0)] == 220 }.count }
        XCTAssertEqual(widths, [0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14])
    }
}
