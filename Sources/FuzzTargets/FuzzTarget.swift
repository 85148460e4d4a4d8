import ControlProtocol
import Foundation
import Jobs
import Models
import Sampling

/// The parsers that read bytes a user or a downloaded file controls, each as one libFuzzer
/// target of `diffusion-fuzz` (`make fuzz`, docs/ARCHITECTURE.md "Fuzzing"). A target feeds
/// one input to the parser exactly as the daemon does; a thrown error is a correct answer,
/// a crash, a sanitizer report, a hang or a broken invariant (``FuzzInvariant``) is a bug.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A job file as the inbox gets it (`JobFileParser`, libyaml underneath).
    case jobFile = "job-file"
    /// `diffusiond.yaml` (`ServiceConfig.parse`).
    case config
    /// A `.safetensors` file as a checkpoint, a LoRA or a model folder's weights: the header,
    /// the tensor table, the single-file architecture inference and the LoRA key reading.
    case safetensors
    /// A model folder's JSON: `model_index.json`, the UNet, text encoder, VAE, tiny VAE and
    /// scheduler `config.json`.
    case modelConfig = "model-config"
    /// Lines on the control socket, both ways: the framing (`LineChannel`), then the hello,
    /// request, reply and event decoders.
    case control
    /// A PNG: the chunk reader (metadata) and the libpng decoder.
    case png

    /// Runs one input.
    public func run(_ bytes: [UInt8]) {
        switch self {
        case .jobFile: FuzzJobFile.run(bytes)
        case .config: FuzzServiceConfig.run(bytes)
        case .safetensors: FuzzSafeTensors.run(bytes)
        case .modelConfig: FuzzModelConfig.run(bytes)
        case .control: FuzzControlLines.run(bytes)
        case .png: FuzzPNG.run(bytes)
        }
    }
}

/// A property every answer of a parser must have; a violation stops the fuzzer like a crash.
enum FuzzInvariant {
    static func check(_ condition: Bool, _ what: @autoclosure () -> String) {
        guard !condition else { return }
        FileHandle.standardError.write(Data("fuzz invariant broken: \(what())\n".utf8))
        abort()
    }
}
