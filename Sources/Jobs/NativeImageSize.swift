import Foundation
import Models
import Pipeline

/// The image size a model was trained at, as diffusers' `StableDiffusionPipeline.__call__`
/// picks it when the caller gives no `height`/`width`:
/// `unet.config.sample_size * vae_scale_factor`, with
/// `vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)`.
public struct NativeImageSize: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// The VAE's downscale factor: image sides must be multiples of it.
    public var vaeFactor: Int

    public init(width: Int, height: Int, vaeFactor: Int) {
        self.width = width
        self.height = height
        self.vaeFactor = vaeFactor
    }

    /// The native size of a configured model: a folder's config files, or a single file's
    /// family (its header only: `SingleFileCheckpointInfo.sampleSize` × its VAE's factor).
    public init(model: ModelReference) throws {
        guard model.isSingleFile else {
            try self.init(modelDirectory: model.path)
            return
        }
        let info: SingleFileCheckpointInfo
        do { info = try model.openSingleFile().info } catch {
            throw NativeSizeError(reason: "\(error)")
        }
        let factor = info.vae.downscaleFactor
        self.init(width: info.sampleSize * factor, height: info.sampleSize * factor, vaeFactor: factor)
    }

    /// Reads `unet/config.json` (`sample_size`: a latent side, or `[height, width]`) and
    /// `vae/config.json` (`block_out_channels`) of a diffusers folder; no weights are touched.
    public init(modelDirectory: URL) throws {
        let unetURL = modelDirectory.appendingPathComponent("unet/config.json")
        let vaeURL = modelDirectory.appendingPathComponent("vae/config.json")
        let unet = try NativeImageSize.object(unetURL)
        let vae = try NativeImageSize.object(vaeURL)
        guard let blocks = vae["block_out_channels"] as? [Any], !blocks.isEmpty, blocks.count <= 8 else {
            throw NativeSizeError(file: vaeURL.path, reason: "block_out_channels is missing or not a list of 1 to 8 numbers")
        }
        let factor = 1 << (blocks.count - 1)
        let latent: (height: Int, width: Int)
        switch unet["sample_size"] {
        case let side as Int where side > 0:
            latent = (side, side)
        case let pair as [Int] where pair.count == 2 && pair.allSatisfy({ $0 > 0 }):
            latent = (pair[0], pair[1])
        case nil:
            throw NativeSizeError(file: unetURL.path, reason: "sample_size is missing, so the model has no native size")
        default:
            throw NativeSizeError(file: unetURL.path, reason: "sample_size is not a positive number or a [height, width] pair")
        }
        guard latent.width <= 8192 / factor, latent.height <= 8192 / factor else {
            throw NativeSizeError(file: unetURL.path, reason: "sample_size × VAE factor \(factor) is more than 8192 pixels")
        }
        self.init(width: latent.width * factor, height: latent.height * factor, vaeFactor: factor)
    }

    private static func object(_ url: URL) throws -> [String: Any] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NativeSizeError(file: url.path, reason: "cannot be read (\(error.localizedDescription))")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw NativeSizeError(file: url.path, reason: "is not a JSON object")
        }
        return object
    }
}

/// Why a model folder's native image size cannot be read.
public struct NativeSizeError: Error, CustomStringConvertible, Equatable {
    /// The config file concerned, if any.
    public var file: String?
    public var reason: String
    public init(file: String? = nil, reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String { (file.map { "\($0): " } ?? "") + reason }
}

/// Native size of the model a job runs on; the argument is the job's `model` field (`nil`:
/// the configured default). Called only for jobs that leave out `width` or `height` when
/// the config's `defaults:` does not set them either.
public typealias NativeSizeLookup = @Sendable (_ model: String?) throws -> NativeImageSize
