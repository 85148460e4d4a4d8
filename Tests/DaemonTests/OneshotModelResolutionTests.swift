import Foundation
import Jobs
import XCTest

/// Issue 21: `--oneshot` finds its model as the daemon would. Without `--config` it reads the
/// daemon's config (`$DIFFUSIOND_CONFIG`, else /etc/diffusiond/diffusiond.yaml) when that
/// exists; without any model it says so in one line; `--model` takes a folder, a file or a
/// configured name; and the built-in defaults are the shipped config's.
final class OneshotModelResolutionTests: XCTestCase {
    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("oneshot-model-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    private func run(_ arguments: [String], configEnvironment: String) throws -> (status: Int32, stderr: String) {
        try DaemonHarness.runDiffusiond(arguments, environment: ["DIFFUSIOND_CONFIG": configEnvironment])
    }

    func testNoModelAnywhereIsOneLine() throws {
        let dir = try temporaryDirectory()
        let job = dir.appendingPathComponent("job.yaml")
        try "prompt: x\n".write(to: job, atomically: true, encoding: .utf8)
        let missing = dir.appendingPathComponent("no-such.yaml").path
        let (status, stderr) = try run(["--oneshot", job.path, "--outbox", dir.appendingPathComponent("out").path], configEnvironment: missing)
        XCTAssertEqual(status, 64)
        XCTAssertEqual(stderr, "<3>no model: give --model DIR|FILE.safetensors, or --config FILE with models (there is no \(missing)) (diffusiond --help lists the options)\n")
    }

    /// The daemon's config is read without --config: its default model and its defaults apply;
    /// `--model NAME` picks another of its models.
    func testTheDaemonsConfigIsUsedAndModelNamesResolve() throws {
        let dir = try temporaryDirectory()
        let tiny = try XCTUnwrap(DaemonHarness.fixtureModel).path
        let fixtures = DaemonHarness.repository.appendingPathComponent("Tests/Fixtures")
        let config = dir.appendingPathComponent("diffusiond.yaml")
        try """
        models:
          default: tiny
          tiny: \(tiny)
          file:
            path: \(fixtures.appendingPathComponent("single-file/tiny-sd1.safetensors").path)
            tokenizer: \(fixtures.appendingPathComponent("tiny-sd1/tokenizer").path)
        defaults:
          width: 24
          height: 16
          steps: 2

        """.write(to: config, atomically: true, encoding: .utf8)
        let job = dir.appendingPathComponent("cat.yaml")
        try "prompt: a cat\nseed: 3\n".write(to: job, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let (status, stderr) = try run(["--oneshot", job.path, "--outbox", out.path], configEnvironment: config.path)
        XCTAssertEqual(status, 0, stderr)
        let image = try PNGCodec.decode([UInt8](try Data(contentsOf: out.appendingPathComponent("cat/image-001.png"))))
        XCTAssertEqual([image.width, image.height], [24, 16], "the config's defaults apply")

        let named = dir.appendingPathComponent("named")
        let (namedStatus, namedErr) = try run(["--oneshot", job.path, "--outbox", named.path, "--model", "file"], configEnvironment: config.path)
        XCTAssertEqual(namedStatus, 0, namedErr)
        let result = try String(contentsOf: named.appendingPathComponent("cat/result.json"), encoding: .utf8)
        XCTAssertTrue(result.contains("\"model\" : \"file\"") || result.contains("\"model\":\"file\""), result)
    }

    /// Without a config the built-in defaults are the shipped config's (euler, 25 steps,
    /// guidance 5), so one job file gives one picture in both modes.
    func testBuiltInDefaultsAreTheShippedConfigs() throws {
        let shipped = try ServiceConfig.load(path: DaemonHarness.repository.appendingPathComponent("etc/diffusiond.yaml").path)
        let builtIn = JobDefaults()
        XCTAssertEqual(shipped.defaults.sampler, builtIn.sampler)
        XCTAssertEqual(shipped.defaults.steps, builtIn.steps)
        XCTAssertEqual(shipped.defaults.guidance, builtIn.guidance)
        XCTAssertEqual(shipped.defaults.schedule, builtIn.schedule)
        XCTAssertEqual(shipped.defaults.rng, builtIn.rng)
        XCTAssertEqual([builtIn.sampler.rawValue, "\(builtIn.steps)", "\(builtIn.guidance)"], ["euler", "25", "5.0"])
    }
}
