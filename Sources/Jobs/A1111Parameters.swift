import Pipeline
import Sampling

/// The `parameters` text AUTOMATIC1111's web UI stores in its PNGs, so tools that read
/// those (the web UI's "PNG Info", civitai, image browsers) read ours:
/// ```
/// a prompt
/// Negative prompt: a negative prompt
/// Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: shapes, RNG: CPU
/// ```
/// `Negative prompt:` is left out when empty and `Schedule type:` when the model's default
/// is used; `RNG: CPU` is written for the CPU generator (the web UI's default is the GPU one);
/// `VAE Decoder: TAESD` for `decoder: tiny` (what the web UI writes when its
/// `sd_vae_decode_method` setting is TAESD, modules/processing.py).
public enum A1111Parameters {
    public static func text(for request: GenerationRequest, model: String) -> String {
        var lines = [request.prompt]
        if !request.negativePrompt.isEmpty { lines.append("Negative prompt: " + request.negativePrompt) }
        var fields = ["Steps: \(request.steps)", "Sampler: \(request.sampler.automatic1111Name)"]
        switch request.schedule {
        case .default: break
        case .karras: fields.append("Schedule type: Karras")
        case .exponential: fields.append("Schedule type: Exponential")
        }
        fields += ["CFG scale: \(format(request.guidance))", "Seed: \(request.seed)",
                   "Size: \(request.width)x\(request.height)", "Model: \(model.replacingOccurrences(of: ",", with: " "))"]
        if request.rng == .cpu { fields.append("RNG: CPU") }
        if request.decoder == .tiny { fields.append("VAE Decoder: TAESD") }
        lines.append(fields.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// `7.5` → "7.5", `7` → "7".
    static func format(_ value: Float) -> String {
        value == value.rounded() && abs(value) < 1e6 ? String(Int(value)) : "\(value)"
    }
}
