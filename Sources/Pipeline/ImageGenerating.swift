/// The one thing the service needs from the engine: turn a request into an image.
/// `TextToImagePipeline` implements it on a loaded diffusers model folder.
public protocol ImageGenerating: AnyObject {
    /// Generates one image for `request` (its `seed` is this image's seed).
    /// - Parameters:
    ///   - snapshotEvery: attach a preview to the step event every N steps (0 = never).
    ///   - onStep: called after every step; returning `.cancel` stops the run with `GenerationCancelled`.
    func generate(_ request: GenerationRequest, snapshotEvery: Int,
                  onStep: (StepEvent) -> StepControl) throws -> RGBImage

    /// AUTOMATIC1111's `Model hash` of the loaded model (first 10 hex digits of a SHA-256),
    /// nil when unknown. May read the whole weights file the first time.
    var modelHash: String? { get }

    /// AUTOMATIC1111's short hash of a LoRA file for `Lora hashes` (first 12 hex digits of
    /// the addnet hash), nil when unknown.
    func loraHash(_ lora: LoRASelection) -> String?

    /// What the engine will cut from or not know of `request`'s prompts (see `PromptReport`),
    /// asked once per job before generating. Throws for a request `generate` would refuse
    /// for its prompts (a chunked prompt over `LongPromptMode.maximumChunks`).
    func promptReport(_ request: GenerationRequest) throws -> PromptReport
}

extension ImageGenerating {
    /// Engines that do not know their files record no hash.
    public var modelHash: String? { nil }
    /// Engines that do not know their files record no hash.
    public func loraHash(_ lora: LoRASelection) -> String? { nil }
    /// Engines without a tokenizer report nothing.
    public func promptReport(_ request: GenerationRequest) throws -> PromptReport { PromptReport() }
}
