import Foundation
import Pipeline
import Sampling

/// The `parameters` text AUTOMATIC1111's web UI stores in its PNGs, so tools that read
/// those (the web UI's "PNG Info", civitai, image browsers) read ours:
/// ```
/// a prompt <lora:name:0.8>
/// Negative prompt: a negative prompt
/// Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: 6ce0161689, Model: sd15, RNG: CPU, Lora hashes: "name: 0123456789ab"
/// ```
/// `Negative prompt:` is left out when empty and `Schedule type:` when the model's default
/// is used; `RNG: CPU` is written for the CPU generator (the web UI's default is the GPU one).
/// The fields keep the web UI's order (`processing.create_infotext`: … Size, Model hash,
/// Model, … RNG, then extra parameters such as `Lora hashes`). `Lora hashes` is the
/// web UI's `extra_networks_lora` entry: `"alias: shorthash, …"`, quoted as its `quote()`
/// quotes values with `:` or `,`.
/// `VAE Decoder: TAESD` for `decoder: tiny` (what the web UI writes when its
/// `sd_vae_decode_method` setting is TAESD, modules/processing.py). The opt-in approximations
/// add `Guidance cutoff: F` and `DeepCache interval: N`. A job's `eta` is the web UI's `Eta`
/// (ancestral samplers) or `Eta DDIM`; its `restart` segment `Restart: [N, K, min, max]` (no web UI key). A model whose entry keeps its weights
/// other than as stored (`weights: f16` or `f32`) adds `Weights: f16` (no web UI key).
public enum A1111Parameters {
    /// - Parameters:
    ///   - prompt: the prompt to record; nil: `request.prompt` (which has no `<lora:…>` tags —
    ///     jobs pass `JobSpec.recordedPrompt`, which keeps them as the web UI does)
    ///   - modelHash: the short model hash (`Model hash:`), left out when nil
    ///   - loraHashes: short hash per LoRA name; LoRAs of the request without one are left out
    ///   - weights: the model entry's `weights:` mode when not `stored`, else nil
    public static func text(for request: GenerationRequest, model: String, prompt: String? = nil,
                            modelHash: String? = nil, loraHashes: [String: String] = [:], maskBlur: Double? = nil,
                            weights: String? = nil) -> String {
        var lines = [prompt ?? request.prompt]
        if !request.negativePrompt.isEmpty { lines.append("Negative prompt: " + request.negativePrompt) }
        var fields = ["Steps: \(request.steps)", "Sampler: \(request.sampler.automatic1111Name)"]
        switch request.schedule {
        case .default: break
        case .karras: fields.append("Schedule type: Karras")
        case .exponential: fields.append("Schedule type: Exponential")
        }
        fields += ["CFG scale: \(format(request.guidance))", "Seed: \(request.seed)", "Size: \(request.width)x\(request.height)"]
        if let modelHash { fields.append("Model hash: \(modelHash)") }
        fields.append("Model: \(model.replacingOccurrences(of: ",", with: " "))")
        if request.rng == .cpu { fields.append("RNG: CPU") }
        // extra_networks_lora.py: alias.replace(":", "").replace(",", "") + ": " + shorthash.
        let hashes = request.loras.compactMap { lora in
            loraHashes[lora.name].map { lora.name.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ",", with: "") + ": " + $0 }
        }
        if !hashes.isEmpty { fields.append("Lora hashes: " + quote(hashes.joined(separator: ", "))) }
        if request.decoder == .tiny { fields.append("VAE Decoder: TAESD") }
        // No web UI key exists for it; named like the job field so it is not mistaken for exact CFG.
        if let cutoff = request.guidanceCutoff { fields.append("Guidance cutoff: \(format(Float(cutoff)))") }
        // The web UI's keys for eta (sd_samplers_kdiffusion.py: `Eta`; sd_samplers_timesteps.py: `Eta DDIM`).
        if let eta = request.samplerOptions.eta {
            fields.append("\(request.sampler == .ddim ? "Eta DDIM" : "Eta"): \(format(Float(eta)))")
        }
        if let restart = request.samplerOptions.restart { fields.append("Restart: " + quote(restart.description)) }
        // img2img: the web UI's key for the strength.
        if request.initImage != nil { fields.append("Denoising strength: \(format(Float(request.strength)))") }
        // Hires fix: the web UI's keys (its Lanczos upscaler; Size stays the first pass's).
        if let hires = request.hires {
            fields += ["Denoising strength: \(format(Float(hires.strength)))", "Hires upscale: \(format(Float(hires.scale)))",
                       "Hires upscaler: Lanczos"]
        }
        // Inpainting: the web UI's key for the mask's blur.
        if let maskBlur { fields.append("Mask blur: \(format(Float(maskBlur)))") }
        // Likewise no web UI key; names the method and its interval (the job's `cache`).
        if let cache = request.cache { fields.append("DeepCache interval: \(cache)") }
        if let weights { fields.append("Weights: \(weights)") }
        lines.append(fields.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// The weights mode `text(for:…)` recorded in `parameters`: the value of its trailing
    /// `Weights:` field, or `stored` when the last field is another one (the field is written
    /// last, and only when the mode is not `stored`). A prompt line or a quoted field that
    /// merely contains the words does not count: only the last field of the last line is read.
    public static func recordedWeights(_ parameters: String) -> String {
        let fields = parameters.split(separator: "\n", omittingEmptySubsequences: false).last ?? ""
        let last = fields.components(separatedBy: ", ").last ?? ""
        let prefix = "Weights: "
        // A quoted last field (`Lora hashes: "…, Weights: 0123"`) ends in its closing quote.
        guard last.hasPrefix(prefix), !last.hasSuffix("\"") else { return "stored" }
        return String(last.dropFirst(prefix.count))
    }

    /// The web UI's `infotext_utils.quote`: text with `,`, `:` or a newline becomes a JSON string.
    static func quote(_ text: String) -> String {
        guard text.contains(",") || text.contains(":") || text.contains("\n") else { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// `7.5` → "7.5", `7` → "7".
    static func format(_ value: Float) -> String {
        value == value.rounded() && abs(value) < 1e6 ? String(Int(value)) : "\(value)"
    }
}
