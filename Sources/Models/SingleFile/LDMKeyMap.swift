/// Where a diffusers / transformers tensor lives in an original (LDM) single-file checkpoint.
struct LDMTensorRef: Equatable {
    /// The original key, with its prefix (`model.diffusion_model.` …).
    var key: String
    /// Older spellings of the same tensor, tried in order when `key` is absent.
    var alternatives: [String] = []
    /// For a fused tensor: this tensor is row block `part` of `parts` equal blocks along the
    /// first axis (OpenCLIP's `in_proj_weight` / `in_proj_bias` stack q, k, v).
    var part: Int? = nil
    var parts: Int = 1
}

/// Splits a dotted name into its components.
private func components(_ name: String) -> [String] {
    name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
}

/// A non-negative decimal index (no sign, no leading `+`), nil otherwise.
private func index(_ s: String) -> Int? {
    guard !s.isEmpty, s.count <= 6, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return Int(s)
}

/// diffusers `UNet2DConditionModel` names → `model.diffusion_model.*` names: the inverse of
/// diffusers' `convert_ldm_unet_checkpoint` with `update_unet_resnet_ldm_to_diffusers` and
/// `DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]` (diffusers/loaders/single_file_utils.py).
///
/// LDM numbers the blocks flat: `input_blocks.0` is conv_in, then per level `layers`
/// resnet (+ transformer at `.1`) blocks and one downsampler block `.0.op` (none after the
/// last level); `middle_block.0/1/2` are resnet, transformer, resnet; `output_blocks` holds
/// `layers + 1` blocks per level in reverse order, the last block of each level but the last
/// also holding the upsampler at `.1.conv`, or `.2.conv` after a transformer.
struct LDMUNetKeyMap {
    static let prefix = "model.diffusion_model."
    /// Resnets per down level (`layers_per_block`).
    let layers: [Int]
    /// Whether up block i (diffusers order: levels reversed) has transformers.
    let upAttention: [Bool]

    /// `update_unet_resnet_ldm_to_diffusers`'s renames, diffusers → LDM.
    private static let resnetNames: [String: String] = [
        "norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
        "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection",
    ]

    /// `input_blocks` index of down level `level`'s resnet `layer`.
    private func inputIndex(level: Int, layer: Int) -> Int {
        1 + layers.prefix(level).reduce(0) { $0 + $1 + 1 } + layer
    }

    /// `output_blocks` index of up block `block`'s resnet `layer`.
    private func outputIndex(block: Int, layer: Int) -> Int {
        layers.reversed().prefix(block).reduce(0) { $0 + $1 + 1 } + layer
    }

    private static func resnet(_ rest: ArraySlice<String>) -> String? {
        guard let first = rest.first, let mapped = resnetNames[first], rest.count >= 2 else { return nil }
        return ([mapped] + rest.dropFirst()).joined(separator: ".")
    }

    func original(_ name: String) -> LDMTensorRef? {
        inner(name).map { LDMTensorRef(key: Self.prefix + $0) }
    }

    // swiftlint:disable:next cyclomatic_complexity
    private func inner(_ name: String) -> String? {
        let c = components(name)
        guard c.count >= 2, let last = c.last else { return nil }
        let n = layers.count
        switch c[0] {
        case "conv_in" where c.count == 2: return "input_blocks.0.0.\(last)"
        case "conv_norm_out" where c.count == 2: return "out.0.\(last)"
        case "conv_out" where c.count == 2: return "out.2.\(last)"
        case "time_embedding" where c.count == 3:
            switch c[1] {
            case "linear_1": return "time_embed.0.\(last)"
            case "linear_2": return "time_embed.2.\(last)"
            default: return nil
            }
        case "down_blocks":
            guard c.count >= 5, let i = index(c[1]), i < n else { return nil }
            switch c[2] {
            case "resnets":
                guard let j = index(c[3]), j < layers[i], let r = Self.resnet(c[4...]) else { return nil }
                return "input_blocks.\(inputIndex(level: i, layer: j)).0.\(r)"
            case "attentions":
                guard let j = index(c[3]), j < layers[i] else { return nil }
                return "input_blocks.\(inputIndex(level: i, layer: j)).1." + c[4...].joined(separator: ".")
            case "downsamplers":
                guard i < n - 1, c.count == 6, c[3] == "0", c[4] == "conv" else { return nil }
                return "input_blocks.\(inputIndex(level: i, layer: layers[i])).0.op.\(last)"
            default: return nil
            }
        case "mid_block":
            guard c.count >= 4 else { return nil }
            if c[1] == "resnets", let k = index(c[2]), k < 2, let r = Self.resnet(c[3...]) {
                return "middle_block.\(2 * k).\(r)"
            }
            if c[1] == "attentions", c[2] == "0" { return "middle_block.1." + c[3...].joined(separator: ".") }
            return nil
        case "up_blocks":
            guard c.count >= 5, let i = index(c[1]), i < n else { return nil }
            let resnets = layers[n - 1 - i] + 1
            switch c[2] {
            case "resnets":
                guard let j = index(c[3]), j < resnets, let r = Self.resnet(c[4...]) else { return nil }
                return "output_blocks.\(outputIndex(block: i, layer: j)).0.\(r)"
            case "attentions":
                guard let j = index(c[3]), j < resnets else { return nil }
                return "output_blocks.\(outputIndex(block: i, layer: j)).1." + c[4...].joined(separator: ".")
            case "upsamplers":
                guard i < n - 1, c.count == 6, c[3] == "0", c[4] == "conv" else { return nil }
                let slot = upAttention[i] ? 2 : 1
                return "output_blocks.\(outputIndex(block: i, layer: resnets - 1)).\(slot).conv.\(last)"
            default: return nil
            }
        default: return nil
        }
    }
}

/// diffusers `AutoencoderKL` names → `first_stage_model.*` names: the inverse of diffusers'
/// `convert_ldm_vae_checkpoint` with `update_vae_resnet_ldm_to_diffusers`,
/// `update_vae_attentions_ldm_to_diffusers` and `DIFFUSERS_TO_LDM_MAPPING["vae"]`.
/// The decoder's `up.k` are numbered from the lowest resolution up in LDM, so diffusers'
/// `up_blocks.i` is `up.(n − 1 − i)`; LDM's 1×1-conv attention projections are read as the
/// linear layers they are (shapes differing by trailing 1s are accepted).
struct LDMVAEKeyMap {
    /// `first_stage_model.` (or `vae.` in a few files, as diffusers' `LDM_VAE_KEYS`).
    let prefix: String
    /// Number of resolution levels (`len(block_out_channels)`).
    let levels: Int

    private static let attentionNames: [String: String] = [
        "group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out",
    ]

    private static func resnet(_ rest: ArraySlice<String>) -> String? {
        guard rest.count == 2, let first = rest.first else { return nil }
        let known: Set<String> = ["norm1", "conv1", "norm2", "conv2", "conv_shortcut"]
        guard known.contains(first) else { return nil }
        return (first == "conv_shortcut" ? "nin_shortcut" : first) + "." + rest[rest.startIndex + 1]
    }

    func original(_ name: String) -> LDMTensorRef? {
        inner(name).map { LDMTensorRef(key: prefix + $0) }
    }

    // swiftlint:disable:next cyclomatic_complexity
    private func inner(_ name: String) -> String? {
        let c = components(name)
        guard c.count >= 2, let last = c.last else { return nil }
        if c.count == 2, c[0] == "quant_conv" || c[0] == "post_quant_conv" { return name }
        guard c[0] == "encoder" || c[0] == "decoder", c.count >= 3 else { return nil }
        let half = c[0]
        switch c[1] {
        case "conv_in", "conv_out": return c.count == 3 ? name : nil
        case "conv_norm_out": return c.count == 3 ? "\(half).norm_out.\(last)" : nil
        case "mid_block":
            guard c.count >= 5 else { return nil }
            if c[2] == "resnets", let k = index(c[3]), k < 2, let r = Self.resnet(c[4...]) {
                return "\(half).mid.block_\(k + 1).\(r)"
            }
            if c[2] == "attentions", c[3] == "0", let mapped = Self.attentionNames[c[4]] {
                // to_out.0.weight → proj_out.weight; the others have no `.0`.
                if c[4] == "to_out" { return c.count == 7 && c[5] == "0" ? "\(half).mid.attn_1.proj_out.\(last)" : nil }
                return c.count == 6 ? "\(half).mid.attn_1.\(mapped).\(last)" : nil
            }
            return nil
        case "down_blocks" where half == "encoder":
            guard c.count >= 6, let i = index(c[2]), i < levels else { return nil }
            if c[3] == "resnets", let j = index(c[4]), let r = Self.resnet(c[5...]) { return "encoder.down.\(i).block.\(j).\(r)" }
            if c[3] == "downsamplers", i < levels - 1, c.count == 7, c[4] == "0", c[5] == "conv" {
                return "encoder.down.\(i).downsample.conv.\(last)"
            }
            return nil
        case "up_blocks" where half == "decoder":
            guard c.count >= 6, let i = index(c[2]), i < levels else { return nil }
            let k = levels - 1 - i
            if c[3] == "resnets", let j = index(c[4]), let r = Self.resnet(c[5...]) { return "decoder.up.\(k).block.\(j).\(r)" }
            if c[3] == "upsamplers", i < levels - 1, c.count == 7, c[4] == "0", c[5] == "conv" {
                return "decoder.up.\(k).upsample.conv.\(last)"
            }
            return nil
        default: return nil
        }
    }
}

/// transformers `CLIPTextModel` names → SD 1.x's `cond_stage_model.transformer.*`: diffusers'
/// `convert_ldm_clip_checkpoint` only strips the prefix. Checkpoints saved with older
/// transformers lack the `text_model.` level (`cond_stage_model.transformer.embeddings.*`).
struct LDMCLIPKeyMap {
    static let prefix = "cond_stage_model.transformer."

    func original(_ name: String) -> LDMTensorRef? {
        guard name.hasPrefix("text_model.") else { return nil }
        return LDMTensorRef(key: Self.prefix + name,
                            alternatives: [Self.prefix + String(name.dropFirst("text_model.".count))])
    }
}

/// transformers `CLIPTextModel` names → SD 2.x's OpenCLIP `cond_stage_model.model.*`: the
/// inverse of diffusers' `convert_open_clip_checkpoint` with
/// `DIFFUSERS_TO_LDM_MAPPING["openclip"]`. q/k/v are the row thirds of the fused
/// `attn.in_proj_weight` / `in_proj_bias`.
struct LDMOpenCLIPKeyMap {
    static let prefix = "cond_stage_model.model."

    private static let layerNames: [String: String] = [
        "layer_norm1": "ln_1", "layer_norm2": "ln_2",
    ]

    // swiftlint:disable:next cyclomatic_complexity
    func original(_ name: String) -> LDMTensorRef? {
        let p = Self.prefix
        switch name {
        case "text_model.embeddings.token_embedding.weight": return LDMTensorRef(key: p + "token_embedding.weight")
        case "text_model.embeddings.position_embedding.weight": return LDMTensorRef(key: p + "positional_embedding")
        case "text_model.final_layer_norm.weight": return LDMTensorRef(key: p + "ln_final.weight")
        case "text_model.final_layer_norm.bias": return LDMTensorRef(key: p + "ln_final.bias")
        default: break
        }
        let c = components(name)
        guard c.count >= 6, c[0] == "text_model", c[1] == "encoder", c[2] == "layers", let l = index(c[3]),
              let last = c.last, last == "weight" || last == "bias" else { return nil }
        let block = p + "transformer.resblocks.\(l)."
        if c.count == 6, let mapped = Self.layerNames[c[4]] { return LDMTensorRef(key: block + "\(mapped).\(last)") }
        guard c.count == 7 else { return nil }
        switch (c[4], c[5]) {
        case ("self_attn", "q_proj"): return LDMTensorRef(key: block + "attn.in_proj_\(last)", part: 0, parts: 3)
        case ("self_attn", "k_proj"): return LDMTensorRef(key: block + "attn.in_proj_\(last)", part: 1, parts: 3)
        case ("self_attn", "v_proj"): return LDMTensorRef(key: block + "attn.in_proj_\(last)", part: 2, parts: 3)
        case ("self_attn", "out_proj"): return LDMTensorRef(key: block + "attn.out_proj.\(last)")
        case ("mlp", "fc1"): return LDMTensorRef(key: block + "mlp.c_fc.\(last)")
        case ("mlp", "fc2"): return LDMTensorRef(key: block + "mlp.c_proj.\(last)")
        default: return nil
        }
    }
}
