import Foundation

/// The model component a LoRA module patches (LoRAs for the VAE are not a thing).
public enum LoRAComponent: String, Sendable, Hashable {
    case unet
    case textEncoder = "text_encoder"
}

/// One module's low-rank update as a file stores it, not yet matched to the model.
struct LoRAFactorPair {
    /// How the module is named. kohya: the underscore name after `lora_unet_` / `lora_te_`;
    /// PEFT: the dotted module path.
    enum ModuleName: Equatable {
        case kohya(String)
        case dotted(String)
    }
    /// nil: a PEFT file saved without component prefix (`base_model.model.<module>`); the
    /// module is looked up in the UNet, then the text encoder.
    var component: LoRAComponent?
    var module: ModuleName
    /// `lora_down.weight` / `lora_A.weight`: [rank, in] or [rank, in, kh, kw]
    var downKey: String
    /// `lora_up.weight` / `lora_B.weight`: [out, rank] or [out, rank, 1, 1]
    var upKey: String
    /// alpha / rank, from the kohya `alpha` key or PEFT's adapter config; 1 without either.
    var scale: Float
}

/// A LoRA `.safetensors` file read and sorted into factor pairs, in one of two layouts:
///
/// - kohya-ss / AUTOMATIC1111: `lora_unet_<module with . → _>.lora_down.weight`,
///   `.lora_up.weight` and a scalar `.alpha`; `lora_te_<text-encoder module>…` likewise.
///   Scale = alpha / rank (rank = lora_down's first dimension), 1 without alpha, as
///   AUTOMATIC1111's `NetworkModule.calc_scale` and diffusers'
///   `_convert_non_diffusers_lora_to_diffusers` + peft (`lora_alpha / r`) both do.
/// - diffusers / PEFT (`save_lora_weights`): `unet.<module>.lora_A.weight` / `.lora_B.weight`,
///   `text_encoder.<module>…`, also with peft's `base_model.model.` after the component or
///   alone. Scale = `lora_alpha / r` (or `/ √r` with `use_rslora`) from the
///   `lora_adapter_metadata` JSON diffusers writes into the safetensors `__metadata__`
///   (keys `unet.r`, `unet.lora_alpha`, `unet.rank_pattern`, `unet.alpha_pattern` …; patterns
///   matched like peft's `get_pattern_key`); without metadata alpha = r, scale 1, as
///   diffusers' `get_peft_kwargs` does without network alphas.
///
/// Everything else is refused with the key: LoHa / LoKr / DoRA / Tucker (`lora_mid`), LoRA
/// biases, the old diffusers attention-processor layout, unknown keys.
package struct LoRAFile {
    let url: URL
    let file: SafeTensorsFile
    let pairs: [LoRAFactorPair]

    package init(url: URL) throws {
        self.url = url
        let path = url.path
        if ["ckpt", "pt", "pth", "bin"].contains(url.pathExtension.lowercased()) {
            throw LoRAError.notSafeTensors(file: path)
        }
        do {
            file = try SafeTensorsFile(path: path)
        } catch let error as SafeTensorsError {
            throw LoRAError.unreadable(file: path, reason: "\(error)")
        }
        let metadata = try LoRAFile.peftConfigs(file, path: path)
        var kohya: [String: (down: String?, up: String?, alpha: String?)] = [:]
        var peft: [String: (component: LoRAComponent?, module: String, down: String?, up: String?)] = [:]
        for key in file.tensorNames {
            if key.hasPrefix("lora_") {
                guard let dot = key.firstIndex(of: ".") else { throw LoRAError.unknownKey(file: path, key: key) }
                let base = String(key[..<dot]), suffix = String(key[key.index(after: dot)...])
                var entry = kohya[base] ?? (nil, nil, nil)
                switch suffix {
                case "lora_down.weight": entry.down = key
                case "lora_up.weight": entry.up = key
                case "alpha": entry.alpha = key
                default: throw LoRAError.unsupported(file: path, key: key, what: LoRAFile.variant(suffix))
                }
                kohya[base] = entry
            } else {
                guard let (component, rest) = LoRAFile.peftComponent(key) else {
                    throw LoRAError.unknownKey(file: path, key: key)
                }
                if rest.contains("_lora.down.") || rest.contains("_lora.up.") || rest.contains(".lora.down.")
                    || rest.contains(".lora.up.") || rest.contains(".lora_linear_layer.") {
                    throw LoRAError.unsupported(file: path, key: key,
                                                what: "the old diffusers attention-processor layout (re-save it with a current diffusers)")
                }
                let isDown = rest.hasSuffix(".lora_A.weight"), isUp = rest.hasSuffix(".lora_B.weight")
                guard isDown || isUp else {
                    let what = rest.contains("lora_magnitude_vector") ? "DoRA (lora_magnitude_vector)"
                        : rest.hasSuffix(".lora_B.bias") ? "a LoRA bias (lora_B.bias)"
                        : rest.contains("lora_embedding") ? "an embedding LoRA" : "a key of this kind"
                    throw LoRAError.unsupported(file: path, key: key, what: what)
                }
                let module = String(rest.dropLast(".lora_A.weight".count))
                let id = (component?.rawValue ?? "") + ":" + module
                var entry = peft[id] ?? (component, module, nil, nil)
                if isDown { entry.down = key } else { entry.up = key }
                peft[id] = entry
            }
        }
        var pairs: [LoRAFactorPair] = []
        for (base, entry) in kohya.sorted(by: { $0.key < $1.key }) {
            guard let down = entry.down else {
                let present = entry.up ?? entry.alpha ?? base
                throw LoRAError.missingPartner(file: path, key: present, partner: base + ".lora_down.weight")
            }
            guard let up = entry.up else { throw LoRAError.missingPartner(file: path, key: down, partner: base + ".lora_up.weight") }
            let component: LoRAComponent
            let name: String
            if base.hasPrefix("lora_unet_") {
                component = .unet
                name = String(base.dropFirst("lora_unet_".count))
            } else if base.hasPrefix("lora_te_") {
                component = .textEncoder
                name = String(base.dropFirst("lora_te_".count))
            } else {
                // lora_te1_ / lora_te2_ are SDXL's two text encoders.
                throw LoRAError.unknownModule(file: path, key: down, module: base)
            }
            let rank = try LoRAFile.rank(file, down, path: path)
            var scale: Float = 1
            if let alphaKey = entry.alpha {
                let values = try LoRAFile.floats(file, alphaKey, path: path)
                guard values.count == 1, let alpha = values.first, alpha.isFinite else {
                    throw LoRAError.badValue(file: path, key: alphaKey, reason: "alpha must be one finite number")
                }
                scale = alpha / Float(rank)
            }
            pairs.append(LoRAFactorPair(component: component, module: .kohya(name), downKey: down, upKey: up, scale: scale))
        }
        for (_, entry) in peft.sorted(by: { $0.key < $1.key }) {
            guard let down = entry.down else {
                throw LoRAError.missingPartner(file: path, key: entry.up ?? entry.module, partner: entry.module + ".lora_A.weight")
            }
            guard let up = entry.up else { throw LoRAError.missingPartner(file: path, key: down, partner: entry.module + ".lora_B.weight") }
            let rank = try LoRAFile.rank(file, down, path: path)
            var scale: Float = 1
            if let component = entry.component, let config = metadata[component] {
                scale = try config.scale(module: entry.module, rank: rank, file: path, key: down)
            }
            pairs.append(LoRAFactorPair(component: entry.component, module: .dotted(entry.module), downKey: down, upKey: up, scale: scale))
        }
        self.pairs = pairs
    }

    /// Factor `key` as floats.
    func floats(_ key: String) throws -> [Float] { try LoRAFile.floats(file, key, path: url.path) }

    /// Shape of `key` as stored.
    func shape(_ key: String) -> [Int] { file.tensors[key]?.shape ?? [] }

    private static func floats(_ file: SafeTensorsFile, _ key: String, path: String) throws -> [Float] {
        do {
            return try file.floats(key)
        } catch {
            throw LoRAError.unreadable(file: path, reason: "\(error)")
        }
    }

    private static func rank(_ file: SafeTensorsFile, _ key: String, path: String) throws -> Int {
        guard let shape = file.tensors[key]?.shape, shape.count == 2 || shape.count == 4, let rank = shape.first, rank > 0 else {
            throw LoRAError.shapeMismatch(file: path, key: key, found: file.tensors[key]?.shape ?? [],
                                          expected: "[rank, in] or [rank, in, k, k] with rank ≥ 1")
        }
        return rank
    }

    /// `unet.` / `text_encoder.` (then optionally peft's `base_model.model.`), or
    /// `base_model.model.` alone; the rest of the key.
    private static func peftComponent(_ key: String) -> (LoRAComponent?, String)? {
        let wrapper = "base_model.model."
        for component in [LoRAComponent.unet, .textEncoder] {
            let prefix = component.rawValue + "."
            if key.hasPrefix(prefix) {
                var rest = String(key.dropFirst(prefix.count))
                if rest.hasPrefix(wrapper) { rest = String(rest.dropFirst(wrapper.count)) }
                return (component, rest)
            }
        }
        if key.hasPrefix(wrapper) { return (nil, String(key.dropFirst(wrapper.count))) }
        return nil
    }

    /// What a kohya-style suffix other than lora_down / lora_up / alpha belongs to.
    private static func variant(_ suffix: String) -> String {
        if suffix.hasPrefix("hada_") { return "LoHa (hada_*)" }
        if suffix.hasPrefix("lokr_") { return "LoKr (lokr_*)" }
        if suffix.hasPrefix("lora_mid") { return "a Tucker-decomposed LoCon (lora_mid)" }
        if suffix == "dora_scale" { return "DoRA (dora_scale)" }
        if suffix.hasPrefix("diff") { return "a full weight difference (diff)" }
        return "the key suffix '\(suffix)'"
    }

    /// peft's `LoraConfig` fields that decide a module's scale, per component, from
    /// diffusers' `lora_adapter_metadata` (`_load_sft_state_dict_metadata`; the keys carry
    /// the component as prefix, `_pack_dict_with_prefix`).
    struct PeftConfig {
        var r: Int
        var alpha: Double
        /// (pattern, value) in sorted key order (peft takes the first match).
        var rankPattern: [(String, Int)]
        var alphaPattern: [(String, Double)]
        var useRSLoRA: Bool

        /// peft `LoraLayer.update_layer`: `scaling = lora_alpha / r` (`/ sqrt(r)` with rslora),
        /// r and alpha from the first matching pattern (`get_pattern_key`), else the defaults.
        func scale(module: String, rank: Int, file: String, key: String) throws -> Float {
            let r = try PeftConfig.match(rankPattern, module, file: file) ?? self.r
            let alpha = try PeftConfig.match(alphaPattern, module, file: file) ?? self.alpha
            guard r == rank else {
                throw LoRAError.shapeMismatch(file: file, key: key, found: [rank],
                                              expected: "rank \(r) (lora_adapter_metadata r / rank_pattern)")
            }
            return Float(useRSLoRA ? alpha / Double(r).squareRoot() : alpha / Double(r))
        }

        /// `re.match(rf"(.*\.)?({pattern})$", module)` for each pattern in order.
        static func match<T>(_ patterns: [(String, T)], _ module: String, file: String) throws -> T? {
            for (pattern, value) in patterns {
                let regex: NSRegularExpression
                do {
                    regex = try NSRegularExpression(pattern: "^(.*\\.)?(\(pattern))$")
                } catch {
                    throw LoRAError.badValue(file: file, key: "lora_adapter_metadata",
                                             reason: "pattern '\(pattern)' is not a regular expression")
                }
                let range = NSRange(module.startIndex..., in: module)
                if regex.firstMatch(in: module, options: [], range: range) != nil { return value }
            }
            return nil
        }
    }

    private static func peftConfigs(_ file: SafeTensorsFile, path: String) throws -> [LoRAComponent: PeftConfig] {
        guard let text = file.metadata["lora_adapter_metadata"] else { return [:] }
        func bad(_ why: String) -> LoRAError { .badValue(file: path, key: "lora_adapter_metadata", reason: why) }
        guard let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("is not a JSON object")
        }
        func number(_ any: Any?) -> Double? { (any as? NSNumber).map(\.doubleValue) }
        func patterns(_ any: Any?) -> [(String, Double)]? {
            guard let any else { return [] }
            guard let dict = any as? [String: Any] else { return nil }
            var out: [(String, Double)] = []
            // peft takes the first match in dict order; diffusers writes the JSON with
            // sort_keys=True (`write_lora_layers`), so that order is the sorted one.
            for key in dict.keys.sorted(by: { Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }) {
                guard let v = number(dict[key]) else { return nil }
                out.append((key, v))
            }
            return out
        }
        var configs: [LoRAComponent: PeftConfig] = [:]
        for component in [LoRAComponent.unet, .textEncoder] {
            let p = component.rawValue + "."
            guard let r = number(object[p + "r"]) else { continue }
            let alpha = number(object[p + "lora_alpha"]) ?? r
            guard r >= 1, r == r.rounded(), alpha.isFinite else { throw bad("\(p)r must be a positive integer and \(p)lora_alpha a number") }
            guard let ranks = patterns(object[p + "rank_pattern"]), let alphas = patterns(object[p + "alpha_pattern"]) else {
                throw bad("\(p)rank_pattern and \(p)alpha_pattern must map patterns to numbers")
            }
            if (object[p + "use_dora"] as? Bool) == true { throw bad("DoRA (\(p)use_dora) is not supported") }
            configs[component] = PeftConfig(r: Int(r), alpha: alpha, rankPattern: ranks.map { ($0.0, Int($0.1)) },
                                            alphaPattern: alphas, useRSLoRA: (object[p + "use_rslora"] as? Bool) ?? false)
        }
        return configs
    }
}
