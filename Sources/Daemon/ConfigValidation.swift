import Foundation
import Jobs
import Models
import Pipeline

/// What `--check-config` checks beyond parsing, and what a SIGHUP reload must pass before
/// it replaces the running config: one list, so a reload never accepts what the check
/// refuses. Every model must be a diffusers folder (a readable `model_index.json`) or a single file
/// whose header reads; every `tiny_vae` config must describe an `AutoencoderTiny`; a
/// folder's `vae/latent_rgb.json` must be a preview map for its VAE;
/// `lora_dir` must be a folder. Models without a native size and a world-writable inbox are
/// warnings.
struct ConfigValidation {
    /// One line each, naming the config file and the model or key.
    private(set) var errors: [String] = []
    private(set) var warnings: [String] = []
    /// The size a job without width/height gets, per model (diffusers' native size), for the summary.
    private(set) var sizes: [String] = []

    init(_ config: ServiceConfig, path: String) {
        for (name, model) in config.models.sorted(by: { $0.key < $1.key }) {
            if model.isSingleFile {
                // Reads the header only: family, configs, and every refusal (pickle, SDXL, LoRA …).
                do { _ = try model.openSingleFile() } catch {
                    errors.append("\(path): model \(name): \(error)")
                }
            } else if !FileManager.default.fileExists(atPath: model.path.appendingPathComponent("model_index.json").path) {
                errors.append("\(path): model \(name): \(model.path.path) has no model_index.json (not a diffusers folder)")
            } else {
                // The family (SD or SDXL) decides what the intake refuses: model_index.json must read.
                do { _ = try model.family() } catch {
                    errors.append("\(path): model \(name): \(error)")
                }
                // vae/latent_rgb.json, the model's own preview map, is read when the model loads.
                do { try LatentRGBMapConfig.check(modelDirectory: model.path) } catch {
                    errors.append("\(path): model \(name): \(error)")
                }
            }
            // tiny_vae: its config.json must describe an AutoencoderTiny (weights are read at load).
            if let tiny = model.tinyVAE {
                do { _ = try TinyVAEConfig(contentsOf: tiny.appendingPathComponent("config.json")) } catch {
                    errors.append("\(path): model \(name): tiny_vae: \(error)")
                }
            }
        }
        let ownSizes = config.modelDefaults.values.contains { $0.width != nil || $0.height != nil }
        for (name, model) in config.models.sorted(by: { $0.key < $1.key }) {
            if !ownSizes, let width = config.defaults.width, let height = config.defaults.height {
                sizes = ["\(width)x\(height) (defaults)"]
                break
            }
            // A model entry's own defaults come first (`models.NAME.defaults`), then the config's.
            let defaults = config.modelDefaults[name] ?? config.defaults
            if let width = defaults.width, let height = defaults.height {
                sizes.append("\(name) \(width)x\(height)")
                continue
            }
            do {
                let native = try NativeImageSize(model: model)
                sizes.append("\(name) \(defaults.width ?? native.width)x\(defaults.height ?? native.height)")
            } catch {
                warnings.append("\(path): model \(name): no native size, so jobs on it must give width and height: \(error)")
            }
        }
        if let problem = InboxPermissions.check(inbox: config.inbox) { warnings.append(problem) }
        var loraIsFolder: ObjCBool = false
        if let loras = config.loraDirectory,
           !FileManager.default.fileExists(atPath: loras.path, isDirectory: &loraIsFolder) || !loraIsFolder.boolValue {
            errors.append("\(path): lora_dir \(loras.path) is not a folder")
        }
    }
}
