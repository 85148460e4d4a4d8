import XCTest
import Jobs

/// `JobSpec.resolvingSeed`: the one place a job without a seed gets one.
final class SeedResolutionTests: XCTestCase {
    /// Returns the values it was given, in turn.
    struct Scripted: RandomNumberGenerator {
        var values: [UInt64]
        mutating func next() -> UInt64 { values.isEmpty ? 0 : values.removeFirst() }
    }

    private func spec(_ text: String) throws -> JobSpec {
        try XCTUnwrap(try JobFileParser().parse(bytes: Array((text + "width: 32\nheight: 32\n").utf8), file: "j.yaml").first)
    }

    func testTheJobsOwnSeedIsKept() throws {
        let parsed = try spec("prompt: x\nseed: 12345\n")
        var generator = Scripted(values: [7])
        let resolved = parsed.resolvingSeed(using: &generator)
        XCTAssertEqual(resolved.seed, 12345)
        XCTAssertEqual(resolved, parsed)
        XCTAssertEqual(generator.values, [7], "nothing drawn")
    }

    func testAMissingSeedIsDrawnBelow2To32AndTheParsedSpecIsLeftAlone() throws {
        let parsed = try spec("prompt: x\ncount: 3\n")
        XCTAssertNil(parsed.seed)
        for _ in 0..<100 {
            let resolved = parsed.resolvingSeed()
            let seed = try XCTUnwrap(resolved.seed)
            XCTAssertTrue(JobSpec.drawnSeeds.contains(seed), "\(seed)")
            var expected = parsed
            expected.seed = seed
            XCTAssertEqual(resolved, expected, "only the seed is filled in")
        }
        XCTAssertNil(parsed.seed)
        XCTAssertEqual(JobSpec.drawnSeeds, 0..<(1 << 32))
    }

    func testTheDrawComesFromTheGeneratorGiven() throws {
        let parsed = try spec("prompt: x\n")
        var a = Scripted(values: [42, 42, 42, 42])
        var b = Scripted(values: [42, 42, 42, 42])
        XCTAssertEqual(parsed.resolvingSeed(using: &a).seed, parsed.resolvingSeed(using: &b).seed)
        var low = Scripted(values: [0, 0, 0, 0])
        var high = Scripted(values: [.max, .max, .max, .max])
        let (l, h) = (try XCTUnwrap(parsed.resolvingSeed(using: &low).seed), try XCTUnwrap(parsed.resolvingSeed(using: &high).seed))
        XCTAssertLessThan(l, h)
        XCTAssertTrue(JobSpec.drawnSeeds.contains(h))
    }

    /// `--oneshot`'s seeds: the same key gives the same seed in every process (what lets the
    /// tasks of a sharded batch agree), values computed with Python's hashlib:
    /// `int.from_bytes(sha256(key).digest()[4:8], "big")`.
    func testADerivedSeedIsFourBytesOfTheKeysSHA256() throws {
        let parsed = try spec("prompt: x\n")
        XCTAssertEqual(parsed.resolvingSeed(derivedFrom: "a\nprompt: x\n").seed, 2_126_613_869)
        XCTAssertEqual(parsed.resolvingSeed(derivedFrom: "a-2\nprompt: x\n").seed, 627_596_337)
        XCTAssertEqual(try spec("prompt: x\nseed: 5\n").resolvingSeed(derivedFrom: "a").seed, 5, "the job's own seed wins")
    }
}
