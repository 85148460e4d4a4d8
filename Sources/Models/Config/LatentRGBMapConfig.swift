import Foundation

/// `vae/latent_rgb.json`: a model's own fitted linear latent → RGB preview map (the project's
/// own models get one from `tools/train/fit_latent_rgb.py`; diffusers ignores the file).
/// `latent_rgb_factors`: one [R, G, B] row per latent channel; `latent_rgb_factors_bias`:
/// [R, G, B], absent meaning [0, 0, 0] (ComfyUI's names). RGB is in [−1, 1].
public struct LatentRGBMapConfig: Sendable, Equatable {
    /// [latent channel][R, G, B]
    public let factors: [[Float]]
    /// [R, G, B]
    public let bias: [Float]

    /// The file's name in the VAE folder.
    public static let fileName = "latent_rgb.json"

    /// Reads the VAE folder's map; nil when it has none. Throws `ModelConfigError`, naming the
    /// file and field, when it is not such a map for `latentChannels` channels.
    public init?(vaeDirectory: URL, latentChannels: Int) throws {
        let url = vaeDirectory.appendingPathComponent(Self.fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let json = try ConfigJSON(url: url)
        let rows = try json.numberRows("latent_rgb_factors", width: 3)
        guard rows.count == latentChannels else {
            throw ModelConfigError.invalidValue(file: url.path, field: "latent_rgb_factors",
                                                reason: "has \(rows.count) rows; the VAE has \(latentChannels) latent channels")
        }
        factors = rows.map { $0.map(Float.init) }
        bias = json.has("latent_rgb_factors_bias") ? try json.numbers("latent_rgb_factors_bias", count: 3).map(Float.init) : [0, 0, 0]
    }

    /// Checks a diffusers model folder's `vae/latent_rgb.json`, if there is one, against its
    /// VAE's latent channels (`vae/config.json`), as loading the model would: for
    /// `--check-config` and reloads, so a bad file is refused before a job runs.
    public static func check(modelDirectory: URL) throws {
        let vae = modelDirectory.appendingPathComponent("vae")
        guard FileManager.default.fileExists(atPath: vae.appendingPathComponent(fileName).path) else { return }
        let config = try VAEConfig(contentsOf: vae.appendingPathComponent("config.json"))
        _ = try LatentRGBMapConfig(vaeDirectory: vae, latentChannels: config.latentChannels)
    }
}
