import Foundation

/// One LoRA a request applies: the resolved file, its multiplier, and the name the user gave
/// it (recorded in the image metadata as AUTOMATIC1111 records `<lora:name:weight>`).
public struct LoRASelection: Sendable, Equatable, Codable {
    /// Name as written in the job (`lcm-sd15`), without folder or extension.
    public var name: String
    /// The `.safetensors` file.
    public var file: URL
    /// Multiplier of the LoRA's delta, in the UNet and the text encoder alike.
    public var weight: Float

    public init(name: String, file: URL, weight: Float) {
        self.name = name
        self.file = file
        self.weight = weight
    }
}
