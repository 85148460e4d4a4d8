import Foundation

/// Why a single-file Stable Diffusion checkpoint (`.safetensors` with the original LDM key
/// names, as shared on model sites) cannot be loaded. Every case names the file; problems
/// with one tensor name that tensor. Damaged files (truncated, bad header, offsets past the
/// end) surface as `SafeTensorsError`, which names the file and tensor too.
public enum SingleFileError: Error, CustomStringConvertible, Equatable {
    /// A pickle-based checkpoint (`.ckpt`, `.pt`, `.pth`, `.bin`, or a file that starts like
    /// one). Unpickling runs code from the file, so it is never done; `command` converts it.
    case pickleRefused(file: String, command: String)
    /// An SDXL checkpoint (`conditioner.embedders.*`): SDXL runs from diffusers folders only.
    case sdxlUnsupported(file: String)
    /// No `model.diffusion_model.*` tensors: a LoRA, VAE-only, text-encoder-only … file.
    /// `prefixes` summarises the key prefixes it does hold, `hint` says what it looks like.
    case notAFullCheckpoint(file: String, prefixes: [String], hint: String?)
    /// A UNet but no text encoder this engine knows (`cond_stage_model.transformer.*` for
    /// SD 1.x, `cond_stage_model.model.*` for SD 2.x).
    case unknownTextEncoder(file: String, prefixes: [String])
    /// A required part of the architecture has no tensors (for example no VAE).
    case missingPart(file: String, part: String, expectedPrefix: String)
    /// A tensor used to infer the architecture has a shape that makes no sense for it.
    case unexpectedShape(file: String, tensor: String, shape: [Int], expected: String)
    /// The UNet's input channels are not 4 (text-to-image) or 9 (inpainting).
    case unsupportedInputChannels(file: String, channels: Int)
    /// Tensors that nothing in the inferred architecture uses (and that are not known to be
    /// ignorable, like EMA copies or the DDPM schedule buffers).
    case unexpectedTensors(file: String, tensors: [String])
    /// The checkpoint is an inpainting model; the operation needs a text-to-image one.
    case inpaintingNotSupported(file: String)

    public var description: String {
        switch self {
        case let .pickleRefused(file, command):
            return "\(file): is a pickle checkpoint; loading a pickle runs code stored in the file, so diffusiond never does. " +
                "Convert it to safetensors once (on a machine you trust, with PyTorch and safetensors installed):\n  \(command)"
        case let .sdxlUnsupported(file):
            return "\(file): is an SDXL checkpoint (conditioner.embedders.* tensors); SDXL runs from diffusers folders only, not single files: "
                + "convert it once (with diffusers: StableDiffusionXLPipeline.from_single_file(FILE).save_pretrained(DIR)) and configure DIR"
        case let .notAFullCheckpoint(file, prefixes, hint):
            return "\(file): not a full Stable Diffusion checkpoint (no model.diffusion_model.* UNet tensors)" +
                (hint.map { "; it looks like \($0)" } ?? "") + "; its tensors have the key prefixes: " +
                prefixes.joined(separator: ", ")
        case let .unknownTextEncoder(file, prefixes):
            return "\(file): has a UNet but no SD 1.x (cond_stage_model.transformer.*) or SD 2.x (cond_stage_model.model.*) text encoder; key prefixes: " +
                prefixes.joined(separator: ", ")
        case let .missingPart(file, part, prefix):
            return "\(file): has no \(part) tensors (\(prefix)*); not a full Stable Diffusion checkpoint"
        case let .unexpectedShape(file, tensor, shape, expected):
            return "\(file): tensor '\(tensor)' has shape \(shape), expected \(expected)"
        case let .unsupportedInputChannels(file, channels):
            return "\(file): the UNet takes \(channels) input channels (model.diffusion_model.input_blocks.0.0.weight); " +
                "only 4 (text-to-image) and 9 (inpainting) are supported (8 is instruct-pix2pix, 7 the x4 upscaler)"
        case let .unexpectedTensors(file, tensors):
            return "\(file): \(tensors.count) tensor(s) that the inferred SD architecture does not use (unsupported variant?): " +
                "\(tensors.prefix(8).joined(separator: ", "))\(tensors.count > 8 ? ", …" : "")"
        case let .inpaintingNotSupported(file):
            return "\(file): is an inpainting checkpoint (9 UNet input channels); it needs an image and a mask, and only text-to-image is supported"
        }
    }

    /// The one-line command that converts pickle checkpoint `path` to `<stem>.safetensors`
    /// next to it, loading tensors only (`weights_only=True` refuses arbitrary objects):
    /// `python3 -c "import torch, safetensors.torch as s; sd = torch.load('X.ckpt', …)…"`.
    public static func conversionCommand(for path: String) -> String {
        let target = URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("safetensors").path
        func pythonLiteral(_ s: String) -> String {
            "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        let code = "import torch, safetensors.torch as s; " +
            "sd = torch.load(\(pythonLiteral(path)), map_location='cpu', weights_only=True); " +
            "sd = sd.get('state_dict', sd); " +
            "s.save_file({k: v.contiguous() for k, v in sd.items() if hasattr(v, 'contiguous')}, \(pythonLiteral(target)))"
        // Inside a double-quoted shell word only \ " $ ` are special.
        var shell = ""
        for ch in code {
            if "\\\"$`".contains(ch) { shell.append("\\") }
            shell.append(ch)
        }
        return "python3 -c \"" + shell + "\""
    }
}
