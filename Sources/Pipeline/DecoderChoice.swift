/// Which autoencoder turns the final latents into the image (the job field `decoder`).
public enum DecoderChoice: String, CaseIterable, Sendable, Codable {
    /// The model's own `AutoencoderKL` (diffusers' `vae`). Default.
    case full
    /// The model's tiny autoencoder (`AutoencoderTiny`, TAESD; the config's `tiny_vae`):
    /// a fraction of the decode time, slightly softer images.
    case tiny

    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
