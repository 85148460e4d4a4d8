import Foundation
import XCTest
import Pipeline
@testable import Evaluation

/// `VAEReconstruction` (what `diffusion-bench adherence --reconstruct` scores)
/// against diffusers' `AutoencoderKL(x, sample_posterior=False)` on the committed VAE
/// (Tests/Fixtures/vae-reconstruct, tools/fixtures/vae_reconstruct_refs.py).
final class VAEReconstructionTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testReconstructionEqualsDiffusersWithinOneLevel() throws {
        struct Case: Decodable { var scene: Int; var caption: String; var image: String }
        struct Index: Decodable { var cases: [Case] }
        let dir = Self.root.appendingPathComponent("Tests/Fixtures/vae-reconstruct")
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: dir.appendingPathComponent("index.json")))
        XCTAssertEqual(index.cases.count, 4)
        let pipeline = try TextToImagePipeline(modelDirectory: Self.root.appendingPathComponent("models/shapes"), threads: 2)
        for c in index.cases {
            let scene = SceneSampler.scene(seed: SceneSampler.heldOutSeedBase + UInt64(c.scene))
            XCTAssertEqual(scene.caption, c.caption)
            let render = SceneRenderer.render(scene)
            let got = try pipeline.reconstruct(render)
            let want = [UInt8](try Data(contentsOf: dir.appendingPathComponent(c.image)))
            XCTAssertEqual(got.pixels.count, want.count)
            let worst = zip(got.pixels, want).map { abs(Int($0) - Int($1)) }.max() ?? 99
            XCTAssertLessThanOrEqual(worst, 1, "scene \(c.scene)")
            // Not the identity: the 4x-downsampled latent changes the picture.
            XCTAssertGreaterThan(zip(got.pixels, render.pixels).filter { $0 != $1 }.count, 1000, "scene \(c.scene)")
        }
    }

    func testReconstructRefusesSizesOffTheLatentGrid() throws {
        let pipeline = try TextToImagePipeline(modelDirectory: Self.root.appendingPathComponent("models/shapes"), threads: 1)
        // 31 is off the grid of every VAE that downsamples (factor 2, 4 or 8).
        XCTAssertThrowsError(try pipeline.reconstruct(RGBImage(width: 31, height: 31, pixels: [UInt8](repeating: 0, count: 2883))))
    }
}
