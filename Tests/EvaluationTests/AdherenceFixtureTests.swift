import Foundation
import XCTest
@testable import Evaluation

/// Images rendered by the training tool's renderer (tools/train/adherence_fixtures.py): clean
/// ones must score 100%, hand-corrupted ones must fail exactly the corrupted field.
final class AdherenceFixtureTests: XCTestCase {
    struct Case: Decodable {
        struct Expect: Decodable {
            struct Object: Decodable { var color: Bool; var shape: Bool; var position: Bool }
            var background: Bool
            var objects: [Object]
        }
        var file: String
        var caption: String
        var expect: Expect
    }

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/adherence")

    func loadCases() throws -> [Case] {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("cases.json"))
        return try JSONDecoder().decode([Case].self, from: data)
    }

    func testRenderedScenesScoreFullyAndCorruptionsFailTheirField() throws {
        let cases = try loadCases()
        XCTAssertEqual(cases.filter { $0.file.hasPrefix("scene-") }.count, 24)
        XCTAssertGreaterThanOrEqual(cases.filter { $0.file.hasPrefix("bad-") }.count, 12)
        let evaluator = AdherenceEvaluator()
        for c in cases {
            let image = try PPM.read(Self.fixtures.appendingPathComponent(c.file))
            let score = try evaluator.score(image, caption: c.caption)
            XCTAssertEqual(score.backgroundCorrect, c.expect.background, "\(c.file): background")
            XCTAssertEqual(score.objects.count, c.expect.objects.count, "\(c.file): object count")
            for (got, want) in zip(score.objects, c.expect.objects) {
                XCTAssertEqual(got.colorCorrect, want.color, "\(c.file): colour of \(got.expected)")
                XCTAssertEqual(got.shapeCorrect, want.shape, "\(c.file): shape of \(got.expected)")
                XCTAssertEqual(got.positionCorrect, want.position, "\(c.file): position of \(got.expected)")
            }
            XCTAssertEqual(score.extraObjects, 0, "\(c.file): extra objects")
            if c.file.hasPrefix("scene-") {
                XCTAssertTrue(score.allCorrect, "\(c.file): \(c.caption)")
            } else {
                XCTAssertFalse(score.allCorrect, "\(c.file): corruption not detected")
            }
        }
    }

    func testDetectorMeasuresRenderedShapes() throws {
        // scene-00 is checked field by field: the fill ratios sit near their ideals.
        let cases = try loadCases()
        for c in cases where c.file.hasPrefix("scene-") {
            let seen = ShapeDetector().detect(try PPM.read(Self.fixtures.appendingPathComponent(c.file)))
            for o in seen.objects {
                switch o.shape {
                case .square?: XCTAssertEqual(o.fillRatio, 1.0, accuracy: 0.02, c.file)
                case .circle?: XCTAssertEqual(o.fillRatio, Double.pi / 4, accuracy: 0.06, c.file)
                case .triangle?: XCTAssertEqual(o.fillRatio, 0.5, accuracy: 0.08, c.file)
                case nil: XCTFail("\(c.file): no shape for \(o.summary)")
                }
            }
        }
    }

    func testSceneSamplerMatchesTheTrainingGenerator() throws {
        struct Entry: Decodable { var seed: String; var caption: String }
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("captions-by-seed.json"))
        let entries = try JSONDecoder().decode([Entry].self, from: data)
        XCTAssertEqual(entries.count, 42)
        for e in entries {
            let seed = try XCTUnwrap(UInt64(e.seed))
            XCTAssertEqual(SceneSampler.scene(seed: seed).caption, e.caption, "seed \(seed)")
        }
    }

    func testSampledScenesParseBackToThemselves() throws {
        for i in 0..<300 {
            let scene = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase + UInt64(i))
            let parsed = try CaptionParser.parse(scene.caption)
            XCTAssertEqual(parsed.background, scene.background, scene.caption)
            XCTAssertEqual(parsed.objects.map(\.color), scene.objects.map(\.color), scene.caption)
            XCTAssertEqual(parsed.objects.map(\.shape), scene.objects.map(\.shape), scene.caption)
            XCTAssertEqual(parsed.objects.map(\.position), scene.objects.map(\.position), scene.caption)
        }
    }
}
