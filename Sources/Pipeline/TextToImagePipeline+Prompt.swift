import Kernels
import Models

/// The text side of a request: token ids per prompt (truncated or chunked, see
/// `LongPromptMode`), the conditioning tensor, and the report of what was cut or unknown.
extension TextToImagePipeline {
    /// The prompt texts of a request in batch order: [negative, prompt] with guidance, else [prompt].
    static func prompts(_ request: GenerationRequest) -> [String] {
        request.guidance > 1 ? [request.negativePrompt, request.prompt] : [request.prompt]
    }

    /// `maxLength`-id rows for each of `prompts`, all with the same number of rows:
    /// `truncate` gives one `encodeForModel` row each (diffusers); `chunk` gives one row per
    /// chunk, the shorter prompts padded with rows of the empty prompt (AUTOMATIC1111).
    /// Throws when a chunked prompt needs more than `LongPromptMode.maximumChunks` chunks.
    func tokenRows(_ prompts: [String], mode: LongPromptMode) throws -> [[[Int]]] {
        switch mode {
        case .truncate:
            return prompts.map { [tokenizer.encodeForModel($0)] }
        case .chunk:
            var rows = try prompts.enumerated().map { index, text -> [[Int]] in
                let chunks = tokenizer.chunks(tokenizer.encode(text))
                guard chunks.count <= LongPromptMode.maximumChunks else {
                    let field = index == prompts.count - 1 ? "prompt" : "negative_prompt"
                    throw PipelineError.invalidRequest(LongPromptMode.tooManyChunksMessage(
                        field: field, chunks: chunks.count, tokenizer: tokenizer))
                }
                return chunks.map(tokenizer.chunkIDs)
            }
            let count = rows.map(\.count).max() ?? 1
            let empty = tokenizer.chunkIDs([])
            for i in rows.indices { rows[i] += Array(repeating: empty, count: count - rows[i].count) }
            return rows
        }
    }

    /// The text conditioning of `request`: [batch, maxLength × chunks, hidden], batch rows as
    /// `prompts(_:)`; each row of ids is encoded on its own (as diffusers' `encode_prompt`
    /// encodes each prompt, and AUTOMATIC1111 each chunk) into its slice of the tensor.
    func conditioning(_ request: GenerationRequest) throws -> Tensor {
        let rows = try tokenRows(TextToImagePipeline.prompts(request), mode: request.longPrompt)
        let length = tokenizer.maxLength, hidden = textEncoder.config.hiddenSize
        let chunks = rows.first?.count ?? 1
        let context = tensor("context", [rows.count, length * chunks, hidden])
        for (b, chunkRows) in rows.enumerated() {
            for (k, ids) in chunkRows.enumerated() {
                let offset = (b * chunks + k) * length * hidden
                try textEncoder.encode([ids], output: context.view(offset: offset, shape: [1, length, hidden]))
            }
        }
        return context
    }

    /// What the text encoder will see of `request`'s prompts: tokens truncation drops and
    /// words the vocabulary cannot know (`CLIPTokenizer.isUnknown`), for the prompt and, when
    /// guidance applies, the negative prompt. Cheap (tokenizer only); call before `generate`.
    /// Throws what `generate` would for a chunked prompt over `LongPromptMode.maximumChunks`.
    public func promptReport(_ request: GenerationRequest) throws -> PromptReport {
        // What an SDXL model refuses fails the job before its first image (TextToImagePipeline+XL).
        try checkXLRequest(request)
        let rows = try tokenRows(TextToImagePipeline.prompts(request), mode: request.longPrompt)
        let chunked = request.longPrompt == .chunk
        func text(_ prompt: String) -> PromptReport.Text {
            let ids = tokenizer.encode(prompt)
            let dropped = chunked ? [] : Array(ids.dropFirst(tokenizer.chunkLength))
            return PromptReport.Text(tokens: ids.count, droppedTokens: dropped.count,
                                     droppedText: dropped.isEmpty ? "" : tokenizer.decode(dropped),
                                     chunks: chunked ? tokenizer.chunks(ids).count : 1,
                                     unknownWords: tokenizer.unknownWords(in: prompt))
        }
        return PromptReport(prompt: text(request.prompt),
                            negativePrompt: request.guidance > 1 ? text(request.negativePrompt) : PromptReport.Text(),
                            windowTokens: tokenizer.maxLength * (rows.first?.count ?? 1))
    }
}

extension LongPromptMode {
    /// The error text for a chunked `field` (prompt or negative_prompt) that needs `chunks` chunks (more than `maximumChunks`).
    public static func tooManyChunksMessage(field: String, chunks: Int, tokenizer: CLIPTokenizer) -> String {
        "\(field) needs \(chunks) chunks of \(tokenizer.chunkLength) tokens with long_prompt: chunk; "
            + "at most \(maximumChunks) (\(maximumChunks * tokenizer.chunkLength) tokens) are allowed: shorten it"
    }
}
