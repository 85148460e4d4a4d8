import Foundation
import Models
import XCTest
@testable import Pipeline

/// `vae/latent_rgb.json`: a model's own fitted latent → RGB preview map (issue 16), read when
/// the model loads (`LatentRGBMapConfig`); a malformed one is refused, naming the file and the
/// field at fault.
final class LatentRGBMapFileTests: XCTestCase {
    private func folder(holding json: String?) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("latent-rgb-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        if let json { try Data(json.utf8).write(to: url.appendingPathComponent("latent_rgb.json")) }
        return url
    }

    func testReadsFactorsAndBias() throws {
        let url = try folder(holding: """
            {"latent_rgb_factors": [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, -0.25, 2e-1]],
             "latent_rgb_factors_bias": [0.1, -0.2, 0]}
            """)
        let map = try XCTUnwrap(try LatentRGBMap(vaeDirectory: url, latentChannels: 4))
        XCTAssertEqual(map.factors, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, -0.25, 0.2]])
        XCTAssertEqual(map.bias, [0.1, -0.2, 0])
        let unbiased = try XCTUnwrap(try LatentRGBMap(vaeDirectory: try folder(holding: #"{"latent_rgb_factors": [[1, 2, 3]]}"#),
                                                      latentChannels: 1))
        XCTAssertEqual(unbiased.bias, [0, 0, 0])
        XCTAssertNil(try LatentRGBMap(vaeDirectory: try folder(holding: nil), latentChannels: 4))
    }

    func testMalformedMapsAreRefusedWithTheirFault() throws {
        let cases: [(json: String, says: String)] = [
            ("[1, 2]", "invalid JSON: top level is not an object"),
            ("{\"latent_rgb_factors\": [[1, 0, 0]", "invalid JSON"),
            ("{}", "missing required field 'latent_rgb_factors'"),
            ("{\"latent_rgb_factors\": [[1, 0, 0], [0, 1, 0]]}", "field 'latent_rgb_factors': has 2 rows; the VAE has 4 latent channels"),
            ("{\"latent_rgb_factors\": [[1, 0, 0], [0, 1], [0, 0, 1], [1, 1, 1]]}",
             "field 'latent_rgb_factors[1]' must be a list of 3 finite numbers"),
            ("{\"latent_rgb_factors\": [[1, 0, 0], [0, 1, 0], [0, \"x\", 1], [1, 1, 1]]}",
             "field 'latent_rgb_factors[2]' must be a list of 3 finite numbers"),
            ("{\"latent_rgb_factors\": [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1e300]]}",
             "field 'latent_rgb_factors[3]' must be a list of 3 finite numbers"),
            ("{\"latent_rgb_factors\": 7}", "field 'latent_rgb_factors' must be a list of rows of 3 numbers"),
            ("{\"latent_rgb_factors\": [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], \"latent_rgb_factors_bias\": 0}",
             "field 'latent_rgb_factors_bias' must be a list of 3 finite numbers"),
        ]
        for (json, says) in cases {
            let url = try folder(holding: json)
            XCTAssertThrowsError(try LatentRGBMap(vaeDirectory: url, latentChannels: 4), json) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(url.appendingPathComponent("latent_rgb.json").path + ": "), text)
                XCTAssertTrue(text.contains(says), "\(json): \(text)")
            }
        }
    }
}
