import Foundation

/// Infers the diffusers configs of a single-file checkpoint from its tensor names and shapes
/// (the header only), the way ComfyUI's `model_detection.py` does, and decodes them with the
/// same `ConfigJSON` validation as a folder's `config.json`. Family conventions the shapes
/// cannot tell follow the diffusers configs of SD 1.5 and SD 2.1: 8 attention heads per level
/// (SD 1.x) or 64-wide heads (SD 2.x), 32 norm groups, VAE scaling factor 0.18215, CLIP heads
/// of 64, quick_gelu (CLIP ViT-L) or gelu (OpenCLIP).
///
/// Block walks stop at the first index that is absent, so a hostile key such as
/// `input_blocks.999999.0.in_layers.0.weight` cannot make them long (it is then a leftover).
struct ShapeInspector {
    /// The file's tensor table (its header).
    let tensors: [String: SafeTensorInfo]
    /// The file, for error messages.
    let path: String

    /// Every proper dotted prefix of every key (`a.`, `a.b.` for `a.b.c`), so block
    /// detection does not depend on any one tensor being present.
    private let prefixes: Set<String>

    init(tensors: [String: SafeTensorInfo], path: String) {
        self.tensors = tensors
        self.path = path
        var prefixes = Set<String>()
        for key in tensors.keys {
            var index = key.startIndex
            while let dot = key[index...].firstIndex(of: ".") {
                prefixes.insert(String(key[...dot]))
                index = key.index(after: dot)
            }
        }
        self.prefixes = prefixes
    }

    func has(_ key: String) -> Bool { tensors[key] != nil }

    /// Whether some key starts with `prefix` (which ends with a dot).
    func hasBlock(_ prefix: String) -> Bool { prefixes.contains(prefix) }

    /// The first dimension of the first of `keys` present (all naming one output width).
    func outputWidth(_ keys: [String], _ what: String) throws -> Int {
        guard let key = keys.first(where: has) else {
            throw SingleFileError.missingPart(file: path, part: what, expectedPrefix: keys.first ?? "")
        }
        let found = tensors[key]?.shape ?? []
        guard found.count == 2 || found.count == 4, found.allSatisfy({ $0 > 0 }) else {
            throw SingleFileError.unexpectedShape(file: path, tensor: key, shape: found, expected: "a linear or conv weight (\(what))")
        }
        return found[0]
    }

    /// The shape of `key`, which must have `rank` dimensions.
    func shape(_ key: String, rank: Int, _ what: String) throws -> [Int] {
        guard let info = tensors[key] else {
            throw SingleFileError.missingPart(file: path, part: what, expectedPrefix: key)
        }
        guard info.shape.count == rank, info.shape.allSatisfy({ $0 > 0 }) else {
            throw SingleFileError.unexpectedShape(file: path, tensor: key, shape: info.shape,
                                                  expected: "\(rank) positive dimensions (\(what))")
        }
        return info.shape
    }

    /// Counts `format(i)` keys (or block prefixes, ending with a dot) for i = 0, 1, … up to
    /// the first absent one.
    func count(_ format: (Int) -> String) -> Int {
        var i = 0
        while true {
            let name = format(i)
            guard name.hasSuffix(".") ? hasBlock(name) : has(name) else { return i }
            i += 1
        }
    }

    // MARK: UNet

    /// `model.diffusion_model.*` → `UNetConfig`.
    func unetConfig(family: CheckpointFamily) throws -> UNetConfig {
        let u = LDMUNetKeyMap.prefix
        let convIn = try shape(u + "input_blocks.0.0.weight", rank: 4, "UNet conv_in")
        let inChannels = convIn[1]
        guard inChannels == 4 || inChannels == 9 else {
            throw SingleFileError.unsupportedInputChannels(file: path, channels: inChannels)
        }
        // input_blocks.1…: per level, resnets (`.0.in_layers`, transformer at `.1`), then a
        // downsampler `.0.op` between levels.
        var layers = [0], channels: [Int] = [], attention = [false], depth = [1]
        var k = 1
        while true {
            let block = u + "input_blocks.\(k)."
            if hasBlock(block + "0.op.") {
                guard layers[layers.count - 1] > 0 else {
                    throw SingleFileError.unexpectedShape(file: path, tensor: block + "0.op.weight", shape: tensors[block + "0.op.weight"]?.shape ?? [],
                                                          expected: "a downsampler after at least one resnet")
                }
                layers.append(0); attention.append(false); depth.append(1)
            } else if hasBlock(block + "0.") {
                let level = layers.count - 1
                let out = try outputWidth(["out_layers.3.weight", "in_layers.2.weight", "emb_layers.1.weight"].map { block + "0." + $0 },
                                          "UNet resnet conv")
                if layers[level] == 0 {
                    channels.append(out)
                } else if channels[level] != out {
                    throw SingleFileError.unexpectedShape(file: path, tensor: block + "0.out_layers.3.weight", shape: tensors[block + "0.out_layers.3.weight"]?.shape ?? [],
                                                          expected: "\(channels[level]) output channels like the level's first resnet")
                }
                if layers[level] == 0, hasBlock(block + "1.") {
                    attention[level] = true
                    depth[level] = count { block + "1.transformer_blocks.\($0)." }
                }
                layers[level] += 1
            } else {
                break
            }
            k += 1
        }
        guard channels.count == layers.count, let top = channels.last else {
            throw SingleFileError.missingPart(file: path, part: "UNet down-block resnet", expectedPrefix: u + "input_blocks.\(k).0.")
        }
        // Mid block: resnet, transformer, resnet; its transformer gives the cross-attention
        // width, the projection kind and (for a last level without attention) the depth.
        let mid = u + "middle_block.1."
        let toK = try shape(mid + "transformer_blocks.0.attn2.to_k.weight", rank: 2, "UNet mid-block cross-attention")
        guard toK[0] == top else {
            throw SingleFileError.unexpectedShape(file: path, tensor: mid + "transformer_blocks.0.attn2.to_k.weight", shape: toK,
                                                  expected: "[\(top), cross_attention_dim]")
        }
        let projIn = tensors[mid + "proj_in.weight"]?.shape ?? []
        guard projIn.count == 2 || projIn.count == 4 else {
            throw SingleFileError.unexpectedShape(file: path, tensor: mid + "proj_in.weight", shape: projIn,
                                                  expected: "a linear [c, c] or 1×1 conv [c, c, 1, 1] projection")
        }
        if !attention[channels.count - 1] {
            depth[channels.count - 1] = count { mid + "transformer_blocks.\($0)." }
        }
        let timeEmbed = try shape(u + "time_embed.0.weight", rank: 2, "UNet time embedding")
        let convOut = try shape(u + "out.2.weight", rank: 4, "UNet conv_out")

        let heads: Any
        switch family {
        case .sd1:
            heads = 8  // SD 1.5's `attention_head_dim: 8` (read by diffusers as 8 heads)
        case .sd2:
            // SD 2.1's `attention_head_dim: [5, 10, 20, 20]`: 64-wide heads.
            for (level, ch) in channels.enumerated() where ch % 64 != 0 {
                throw SingleFileError.unexpectedShape(file: path, tensor: u + "input_blocks.* (level \(level) resnets)", shape: [ch],
                                                      expected: "a multiple of 64 channels (SD 2.x attention heads are 64 wide)")
            }
            heads = channels.map { $0 / 64 }
        }
        let uniform = layers.allSatisfy { $0 == layers[0] }
        let json: [String: Any] = [
            "in_channels": inChannels, "out_channels": convOut[0],
            "block_out_channels": channels,
            "down_block_types": attention.map { $0 ? "CrossAttnDownBlock2D" : "DownBlock2D" },
            "up_block_types": attention.reversed().map { $0 ? "CrossAttnUpBlock2D" : "UpBlock2D" },
            "layers_per_block": uniform ? layers[0] as Any : layers as Any,
            "attention_head_dim": heads,
            "transformer_layers_per_block": depth.allSatisfy({ $0 == 1 }) ? 1 as Any : depth as Any,
            "cross_attention_dim": toK[1],
            "use_linear_projection": projIn.count == 2,
            "norm_num_groups": 32,
            "time_embedding_dim": timeEmbed[0],
        ]
        return try UNetConfig(json: ConfigJSON(file: "\(path) (inferred UNet config)", object: json))
    }

    // MARK: VAE

    /// `first_stage_model.*` → `VAEConfig`.
    func vaeConfig(prefix v: String) throws -> VAEConfig {
        let convIn = try shape(v + "encoder.conv_in.weight", rank: 4, "VAE encoder conv_in")
        let levels = count { v + "encoder.down.\($0).block.0." }
        guard levels > 0 else {
            throw SingleFileError.missingPart(file: path, part: "VAE encoder block", expectedPrefix: v + "encoder.down.0.block.0.")
        }
        let channels = try (0..<levels).map { level in
            try outputWidth(["conv1.weight", "conv2.weight"].map { v + "encoder.down.\(level).block.0." + $0 }, "VAE resnet conv")
        }
        let layers = count { v + "encoder.down.0.block.\($0)." }
        let convOut = try shape(v + "encoder.conv_out.weight", rank: 4, "VAE encoder conv_out")
        guard convOut[0] % 2 == 0 else {
            throw SingleFileError.unexpectedShape(file: path, tensor: v + "encoder.conv_out.weight", shape: convOut,
                                                  expected: "2 × latent channels (mean and log-variance) outputs")
        }
        let decoderOut = try shape(v + "decoder.conv_out.weight", rank: 4, "VAE decoder conv_out")
        let json: [String: Any] = [
            "in_channels": convIn[1], "out_channels": decoderOut[0], "latent_channels": convOut[0] / 2,
            "block_out_channels": channels, "layers_per_block": layers,
            "down_block_types": Array(repeating: "DownEncoderBlock2D", count: levels),
            "up_block_types": Array(repeating: "UpDecoderBlock2D", count: levels),
            "norm_num_groups": 32, "scaling_factor": 0.18215,
            "use_quant_conv": hasBlock(v + "quant_conv."),
            "use_post_quant_conv": hasBlock(v + "post_quant_conv."),
            "mid_block_add_attention": hasBlock(v + "encoder.mid.attn_1."),
        ]
        return try VAEConfig(json: ConfigJSON(file: "\(path) (inferred VAE config)", object: json))
    }

    // MARK: Text encoders

    private func textConfig(vocab: [Int], positions: [Int], layers: Int, intermediate: Int, act: String) throws -> CLIPTextConfig {
        let hidden = vocab[1]
        guard hidden % 64 == 0 else {
            throw SingleFileError.unexpectedShape(file: path, tensor: "token embedding", shape: vocab,
                                                  expected: "a width that is a multiple of 64 (CLIP heads are 64 wide)")
        }
        let json: [String: Any] = [
            "vocab_size": vocab[0], "hidden_size": hidden, "max_position_embeddings": positions[0],
            "num_hidden_layers": layers, "intermediate_size": intermediate, "num_attention_heads": hidden / 64,
            "hidden_act": act, "layer_norm_eps": 1e-5,
        ]
        return try CLIPTextConfig(json: ConfigJSON(file: "\(path) (inferred text encoder config)", object: json))
    }

    /// SD 1.x `cond_stage_model.transformer[.text_model].*` → `CLIPTextConfig` (quick_gelu).
    func clipConfig() throws -> CLIPTextConfig {
        let base = LDMCLIPKeyMap.prefix
        let p = has(base + "text_model.embeddings.token_embedding.weight") ? base + "text_model." : base
        let vocab = try shape(p + "embeddings.token_embedding.weight", rank: 2, "CLIP token embedding")
        let positions = try shape(p + "embeddings.position_embedding.weight", rank: 2, "CLIP position embedding")
        let layers = count { p + "encoder.layers.\($0)." }
        guard layers > 0 else {
            throw SingleFileError.missingPart(file: path, part: "CLIP encoder layer", expectedPrefix: p + "encoder.layers.0.")
        }
        let fc1 = try shape(p + "encoder.layers.0.mlp.fc1.weight", rank: 2, "CLIP MLP fc1")
        return try textConfig(vocab: vocab, positions: positions, layers: layers, intermediate: fc1[0], act: "quick_gelu")
    }

    /// SD 2.x OpenCLIP `cond_stage_model.model.*` → `CLIPTextConfig` (gelu) with one layer
    /// fewer than the file's resblocks, as SD 2.x's `text_encoder/config.json` (23 of 24):
    /// SD 2.x conditions on the penultimate layer. Returns the resblock count too.
    func openCLIPConfig() throws -> (CLIPTextConfig, Int) {
        let p = LDMOpenCLIPKeyMap.prefix
        let vocab = try shape(p + "token_embedding.weight", rank: 2, "OpenCLIP token embedding")
        let positions = try shape(p + "positional_embedding", rank: 2, "OpenCLIP positional embedding")
        let resblocks = count { p + "transformer.resblocks.\($0)." }
        guard resblocks >= 2 else {
            throw SingleFileError.missingPart(file: path, part: "OpenCLIP resblock (at least 2; the last is dropped)",
                                              expectedPrefix: p + "transformer.resblocks.\(resblocks).")
        }
        let fc = try shape(p + "transformer.resblocks.0.mlp.c_fc.weight", rank: 2, "OpenCLIP MLP c_fc")
        let config = try textConfig(vocab: vocab, positions: positions, layers: resblocks - 1, intermediate: fc[0], act: "gelu")
        return (config, resblocks)
    }
}
