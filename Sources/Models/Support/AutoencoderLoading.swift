import Foundation
import Kernels

/// Weights of one half (encoder or decoder) of an autoencoder, built from its config.
protocol AutoencoderHalf {
    associatedtype Config
    init(config: Config, source: WeightSource) throws
}

extension VAEEncoderWeights: AutoencoderHalf {}
extension VAEDecoderWeights: AutoencoderHalf {}
extension TinyVAEEncoderWeights: AutoencoderHalf {}
extension TinyVAEDecoderWeights: AutoencoderHalf {}

/// The one way an autoencoder (`AutoencoderKL`, `AutoencoderTiny`) is read: `config.json`,
/// then the encoder's and the decoder's tensors from the folder's safetensors, then the
/// check that nothing is left over; or, for benchmarks, both halves from seeded random
/// weights in the same order.
enum AutoencoderLoading {
    static func folder<Encoder: AutoencoderHalf, Decoder: AutoencoderHalf>(
        _ directory: URL, weights: WeightPrecision, config readConfig: (URL) throws -> Encoder.Config
    ) throws -> (Encoder.Config, Encoder, Decoder) where Decoder.Config == Encoder.Config {
        let config = try readConfig(directory.appendingPathComponent("config.json"))
        let source = try CheckpointWeightSource(component: directory.path, directory: directory, precision: weights)
        let encoder = try Encoder(config: config, source: source)
        let decoder = try Decoder(config: config, source: source)
        try source.finish()
        return (config, encoder, decoder)
    }

    static func random<Encoder: AutoencoderHalf, Decoder: AutoencoderHalf>(
        _ config: Encoder.Config, seed: UInt64, weights: WeightPrecision, pool: ThreadPool
    ) throws -> (Encoder, Decoder) where Decoder.Config == Encoder.Config {
        let source = RandomWeightSource(seed: seed, precision: weights, pool: pool)
        return (try Encoder(config: config, source: source), try Decoder(config: config, source: source))
    }
}
