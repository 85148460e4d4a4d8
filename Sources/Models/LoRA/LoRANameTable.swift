import Kernels

/// Other names a LoRA file may give a module of the model — the extension point for naming
/// schemes besides the model's own diffusers / transformers names. Each provider gets a
/// component and one of its module names (`down_blocks.0.attentions.0.proj_in`,
/// `text_model.encoder.layers.0.mlp.fc1`) and returns alternative dotted names; the kohya
/// names (`. → _`) of every alternative are derived from them too.
///
/// To read kohya LoRAs trained on the original LDM UNet (`lora_unet_input_blocks_1_1_proj_in`),
/// add a provider that returns the LDM module path (`input_blocks.1.1.proj_in`, without
/// `model.diffusion_model.`) from the single-file checkpoint key map.
public struct LoRAModuleAliases: Sendable {
    public typealias Provider = @Sendable (_ component: LoRAComponent, _ module: String) -> [String]
    /// Consulted in order; duplicates are harmless.
    public var providers: [Provider]

    public init(_ providers: [Provider]) { self.providers = providers }

    /// transformers 5 names the CLIP text model's modules without the `text_model.` level
    /// (`encoder.layers.0.self_attn.q_proj`), so PEFT files saved with it do too; older files
    /// and AUTOMATIC1111's `lora_te_text_model_…` keep it.
    public static let textModelLevel: Provider = { component, module in
        component == .textEncoder && module.hasPrefix("text_model.") ? [String(module.dropFirst("text_model.".count))] : []
    }

    /// What `LoRAMerger` uses unless told otherwise.
    public static let standard = LoRAModuleAliases([textModelLevel])
}

/// Names → modules of one component, built from the loaded model's parameter registry, as
/// AUTOMATIC1111 builds `network_layer_mapping` from the model's own module names: a kohya
/// name with `_` for `.` is ambiguous on its own (`down_blocks_0` vs `down.blocks.0`), so it
/// is looked up, never parsed. Modules are the registry's `.weight` tensors of rank 2
/// (linear, 1×1 conv stored squeezed) or 4 (conv), token / position embeddings excluded.
struct LoRANameTable {
    let component: LoRAComponent
    let registry: ParameterRegistry
    private var dotted: [String: Set<String>] = [:]
    private var kohya: [String: Set<String>] = [:]

    init(component: LoRAComponent, registry: ParameterRegistry, aliases: LoRAModuleAliases) {
        self.component = component
        self.registry = registry
        for name in registry.names where name.hasSuffix(".weight") && !name.hasSuffix("_embedding.weight") {
            guard let rank = registry[name]?.rank, rank == 2 || rank == 4 else { continue }
            let module = String(name.dropLast(".weight".count))
            var names = [module]
            for provider in aliases.providers { names += provider(component, module) }
            for n in names {
                dotted[n, default: []].insert(module)
                kohya[n.replacingOccurrences(of: ".", with: "_"), default: []].insert(module)
            }
        }
    }

    /// Modules named `name` in the file's scheme (nil-free: empty when none).
    func modules(for name: LoRAFactorPair.ModuleName) -> [String] {
        switch name {
        case .kohya(let n): return (kohya[n] ?? []).sorted()
        case .dotted(let n): return (dotted[n] ?? []).sorted()
        }
    }

    /// The weight the forward pass computes with (a view for fused layers).
    func weight(_ module: String) -> WeightTensor? { registry[module + ".weight"] }
}
