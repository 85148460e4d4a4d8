import Foundation

/// What the text encoder will and will not see of a request's prompts: tokens cut by
/// truncation and words the model's vocabulary cannot know (`CLIPTokenizer.isUnknown`).
/// Made by `TextToImagePipeline.promptReport(_:)` before generating; the daemon logs its
/// `warnings` and records them in `result.json`.
public struct PromptReport: Sendable, Equatable {
    /// One prompt (positive or negative) as tokenized.
    public struct Text: Sendable, Equatable {
        /// The prompt's own tokens, without start/end tokens, before any truncation.
        public var tokens: Int
        /// Tokens truncation dropped (0 with `long_prompt: chunk`, or when it fits).
        public var droppedTokens: Int
        /// The dropped tokens as text (decoded; lower case as the tokenizer normalizes it).
        public var droppedText: String
        /// Chunks of 75 tokens the prompt is encoded in (1 with `truncate`).
        public var chunks: Int
        /// Distinct words the model's vocabulary cannot know, in order, as normalized.
        public var unknownWords: [String]

        /// A prompt's counts; the defaults describe an empty or unused prompt.
        public init(tokens: Int = 0, droppedTokens: Int = 0, droppedText: String = "", chunks: Int = 1,
                    unknownWords: [String] = []) {
            self.tokens = tokens
            self.droppedTokens = droppedTokens
            self.droppedText = droppedText
            self.chunks = chunks
            self.unknownWords = unknownWords
        }
    }

    /// The prompt.
    public var prompt: Text
    /// The negative prompt; empty (`Text()`) when guidance ≤ 1, where it is not encoded.
    public var negativePrompt: Text
    /// Tokens the text encoder sees per prompt, start and end included (77, or 77 × chunks).
    public var windowTokens: Int

    /// A report; the defaults say nothing was cut or unknown (engines without a tokenizer).
    public init(prompt: Text = Text(), negativePrompt: Text = Text(), windowTokens: Int = 77) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.windowTokens = windowTokens
    }

    /// One line per finding, for logs and `result.json`:
    /// `prompt truncated to 77 tokens: dropped 12 tokens ("…")`,
    /// `prompt: words not in the model's vocabulary: "dragon", "castle"` (likewise for the
    /// negative prompt). Empty when nothing was cut or unknown.
    public var warnings: [String] {
        var lines: [String] = []
        for (label, text) in [("prompt", prompt), ("negative prompt", negativePrompt)] {
            if text.droppedTokens > 0 {
                lines.append("\(label) truncated to \(windowTokens) tokens: dropped \(text.droppedTokens) token"
                    + (text.droppedTokens == 1 ? "" : "s") + " (\(PromptReport.quote(text.droppedText)))")
            }
            if !text.unknownWords.isEmpty {
                lines.append("\(label): words not in the model's vocabulary: "
                    + text.unknownWords.map(PromptReport.quote).joined(separator: ", "))
            }
        }
        return lines
    }

    /// `"text"` with at most 120 characters (longer: cut with `…`), quotes and backslashes escaped.
    static func quote(_ text: String) -> String {
        let short = text.count > 120 ? String(text.prefix(119)) + "…" : text
        return "\"" + short.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
