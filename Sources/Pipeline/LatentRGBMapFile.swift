import Foundation
import Models

extension LatentRGBMap {
    /// The file in a model's `vae/` folder that holds its own fitted map (the project's own
    /// models get one from `tools/train/fit_latent_rgb.py`); diffusers ignores it.
    static let fileName = "latent_rgb.json"

    /// Reads `vae/latent_rgb.json` when the VAE folder has one: `latent_rgb_factors`, one
    /// [R, G, B] row per latent channel, and `latent_rgb_factors_bias`, [R, G, B] (ComfyUI's
    /// names; no bias is [0, 0, 0]). Returns nil when there is no such file; throws, naming
    /// the file and what is wrong, when it is not such a map for `latentChannels` channels.
    init?(vaeDirectory: URL, latentChannels: Int) throws {
        let url = vaeDirectory.appendingPathComponent(Self.fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        func invalid(_ reason: String) -> PipelineError {
            PipelineError.invalidLatentRGBMap(file: url.path, reason: reason)
        }
        let file: LatentRGBMapJSON
        do {
            file = try JSONDecoder().decode(LatentRGBMapJSON.self, from: try Data(contentsOf: url))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            if context.codingPath.isEmpty { throw invalid("not a JSON object") }
            throw invalid("\(Self.path(context.codingPath)) is not a number or list as wanted (\(context.debugDescription))")
        } catch DecodingError.keyNotFound(let key, _) {
            throw invalid("no \(key.stringValue) list")
        } catch {
            throw invalid("not readable JSON (\(error.localizedDescription))")
        }
        guard file.factors.count == latentChannels else {
            throw invalid("latent_rgb_factors has \(file.factors.count) rows; the VAE has \(latentChannels) latent channels")
        }
        func triple(_ numbers: [Double], _ what: String) throws -> [Float] {
            guard numbers.count == 3 else { throw invalid("\(what) is not a list of 3 numbers [R, G, B]") }
            return try numbers.map { number in
                guard number.isFinite, abs(number) <= 1e6 else { throw invalid("\(what) holds \(number), not a finite number within ±1e6") }
                return Float(number)
            }
        }
        let factors = try file.factors.enumerated().map { try triple($0.element, "latent_rgb_factors[\($0.offset)]") }
        let bias = try file.bias.map { try triple($0, "latent_rgb_factors_bias") } ?? [0, 0, 0]
        self.init(factors: factors, bias: bias)
    }

    /// Checks a diffusers model folder's `vae/latent_rgb.json`, if it has one, against its VAE's
    /// latent channels (`vae/config.json`), as loading the model would: for `--check-config` and
    /// reloads, so a bad file is refused before a job runs.
    public static func check(modelDirectory: URL) throws {
        let vae = modelDirectory.appendingPathComponent("vae")
        guard FileManager.default.fileExists(atPath: vae.appendingPathComponent(fileName).path) else { return }
        let config = try VAEConfig(contentsOf: vae.appendingPathComponent("config.json"))
        _ = try LatentRGBMap(vaeDirectory: vae, latentChannels: config.latentChannels)
    }

    /// `latent_rgb_factors[2][1]` for a decoding error's coding path.
    private static func path(_ codingPath: [CodingKey]) -> String {
        codingPath.reduce("") { text, key in
            if let index = key.intValue { return text + "[\(index)]" }
            return text.isEmpty ? key.stringValue : text + "." + key.stringValue
        }
    }
}

/// The file's layout (ComfyUI's key names).
private struct LatentRGBMapJSON: Decodable {
    let factors: [[Double]]
    let bias: [Double]?

    enum CodingKeys: String, CodingKey {
        case factors = "latent_rgb_factors"
        case bias = "latent_rgb_factors_bias"
    }
}
