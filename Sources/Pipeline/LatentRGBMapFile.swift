import Foundation
import Models

extension LatentRGBMap {
    /// The model's own fitted map from its VAE folder (`LatentRGBMapConfig`,
    /// `vae/latent_rgb.json`); nil when it has none. Throws `ModelConfigError`, naming the
    /// file and field, when the file is not a map for `latentChannels` channels.
    init?(vaeDirectory: URL, latentChannels: Int) throws {
        guard let config = try LatentRGBMapConfig(vaeDirectory: vaeDirectory, latentChannels: latentChannels) else { return nil }
        self.init(factors: config.factors, bias: config.bias)
    }
}
