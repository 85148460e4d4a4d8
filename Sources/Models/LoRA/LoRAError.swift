/// What can be wrong with a LoRA file or its fit to the loaded model. Every case names the
/// file and, where one is involved, the key; `description` is one line.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    /// Not a readable safetensors file (the `SafeTensorsError` text, which names the file).
    case unreadable(file: String, reason: String)
    /// Only `.safetensors` LoRAs are read: `.ckpt` / `.pt` files are pickles, which can run code.
    case notSafeTensors(file: String)
    /// A key that is neither kohya (`lora_unet_…`, `lora_te_…`) nor diffusers / PEFT
    /// (`unet.….lora_A.weight`, `text_encoder.…`).
    case unknownKey(file: String, key: String)
    /// A key of a LoRA variant diffusiond does not apply (LoHa, LoKr, DoRA, Tucker `lora_mid`, biases …).
    case unsupported(file: String, key: String, what: String)
    /// A key whose module the model does not have.
    case unknownModule(file: String, key: String, module: String)
    /// A down / A factor without its up / B factor, or the reverse.
    case missingPartner(file: String, key: String, partner: String)
    /// Factor shapes that do not fit the module (or each other).
    case shapeMismatch(file: String, key: String, found: [Int], expected: String)
    /// An `alpha` that is not a finite scalar, or `lora_adapter_metadata` that does not read.
    case badValue(file: String, key: String, reason: String)
    /// Two modules of the model have the same kohya name, and the file uses it.
    case ambiguous(file: String, key: String, modules: [String])

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "LoRA \(file): cannot read it: \(reason)"
        case let .notSafeTensors(file):
            return "LoRA \(file): only .safetensors LoRAs are read (.ckpt/.pt files are Python pickles, which can run code when loaded); convert it to safetensors"
        case let .unknownKey(file, key):
            return "LoRA \(file): key '\(key)' is neither kohya (lora_unet_…/lora_te_…) nor diffusers/PEFT (unet.…/text_encoder.… .lora_A/.lora_B.weight)"
        case let .unsupported(file, key, what):
            return "LoRA \(file): key '\(key)': \(what) is not supported (only plain LoRA / LoCon: down·up factors with alpha)"
        case let .unknownModule(file, key, module):
            return "LoRA \(file): key '\(key)' names module '\(module)', which this model does not have (a LoRA for another architecture?)"
        case let .missingPartner(file, key, partner):
            return "LoRA \(file): key '\(key)' has no partner '\(partner)'"
        case let .shapeMismatch(file, key, found, expected):
            return "LoRA \(file): key '\(key)' has shape \(found), the model needs \(expected) (a LoRA for another model size?)"
        case let .badValue(file, key, reason):
            return "LoRA \(file): '\(key)': \(reason)"
        case let .ambiguous(file, key, modules):
            return "LoRA \(file): key '\(key)' could name several modules: \(modules.joined(separator: ", "))"
        }
    }
}
