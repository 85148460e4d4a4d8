/// What happens to a prompt longer than the text encoder's window (77 tokens with start and
/// end: 75 of the prompt's own). Job field `long_prompt`.
public enum LongPromptMode: String, Codable, Sendable, CaseIterable {
    /// Keep the first 75 tokens and drop the rest, as diffusers' `StableDiffusionPipeline`
    /// does (`truncation=True`); the default, so images stay diffusers'.
    case truncate
    /// AUTOMATIC1111's chunking: 75-token chunks (breaking after a comma near a chunk's end),
    /// each encoded on its own as `<start> … <end> <pad>…`, hidden states concatenated to
    /// 77 × chunks rows; the shorter of prompt and negative prompt is padded with encodings of
    /// the empty prompt (the web UI's "pad prompt/negative prompt to be same length"). The
    /// UNet's cross-attention reads the longer context. See `CLIPTokenizer.chunks`.
    case chunk

    /// The most chunks a prompt may need with `chunk` (8 × 77 = 616 context rows).
    public static let maximumChunks = 8

    /// The job-file spellings, for error messages.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
