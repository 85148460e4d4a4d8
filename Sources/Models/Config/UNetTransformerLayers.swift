import Foundation

/// How many `BasicTransformerBlock`s each attention of a UNet stacks, per block and per
/// layer, as diffusers' `UNet2DConditionModel.__init__` derives them from `config.json`.
///
/// - `transformer_layers_per_block`: an int (every attention), a list with one entry per down
///   block, each entry an int (every layer of that block) or a list with one int per layer.
/// - mid block (`UNetMidBlock2DCrossAttn`, one layer): `transformer_layers_per_block[-1]`, its
///   first element when that entry is a list.
/// - up blocks: `reverse_transformer_layers_per_block` when set (per up block, an int or one
///   int per layer: layers_per_block + 1), else the down entries reversed; diffusers refuses a
///   per-layer down list without it ("Must provide 'reverse_transformer_layers_per_block' if
///   using asymmetrical UNet"). SSD-1B and Segmind Vega configs use this to drop layers.
struct UNetTransformerLayers: Equatable {
    /// [down block][layer]
    var down: [[Int]]
    /// transformer layers of the mid block's attention
    var mid: Int
    /// [up block][layer]
    var up: [[Int]]

    /// - Parameters:
    ///   - layersPerBlock: resnets per down block (`layers_per_block`); up blocks have one more
    init(_ c: ConfigJSON, layersPerBlock: [Int]) throws {
        let n = layersPerBlock.count
        let key = "transformer_layers_per_block", reverseKey = "reverse_transformer_layers_per_block"
        let raw: [Any] = try Self.entries(c, key, blocks: n, default: 1)
        down = try raw.enumerated().map { i, e in try Self.perLayer(c, key, e, block: i, layers: layersPerBlock[i]) }
        let last = down[n - 1]
        mid = last.isEmpty ? 1 : last[0]
        let upLayers = layersPerBlock.reversed().map { $0 + 1 }
        if c.has(reverseKey) {
            let rev = try Self.entries(c, reverseKey, blocks: n, default: 1)
            up = try rev.enumerated().map { i, e in try Self.perLayer(c, reverseKey, e, block: i, layers: upLayers[i]) }
        } else {
            if raw.contains(where: { $0 is [Any] }) {
                throw ModelConfigError.missingField(file: c.file, field: reverseKey)
            }
            up = down.reversed().enumerated().map { i, d in Array(repeating: d.first ?? 1, count: upLayers[i]) }
        }
    }

    /// The field's per-block entries: `blocks` copies of an int, or the list (one per block).
    private static func entries(_ c: ConfigJSON, _ key: String, blocks: Int, default d: Int) throws -> [Any] {
        guard c.has(key), let v = c.object[key] else { return Array(repeating: d, count: blocks) }
        guard let list = v as? [Any] else { return Array(repeating: try c.int(key), count: blocks) }
        guard list.count == blocks else {
            throw ModelConfigError.invalidValue(file: c.file, field: key, reason: "has \(list.count) entries, expected \(blocks) (one per block)")
        }
        return list
    }

    /// One block's entry as one count per layer.
    private static func perLayer(_ c: ConfigJSON, _ key: String, _ entry: Any, block i: Int, layers: Int) throws -> [Int] {
        func count(_ v: Any) throws -> Int {
            guard !(v is String), let n = v as? NSNumber, n.doubleValue.rounded() == n.doubleValue,
                  n.doubleValue >= 0, n.doubleValue <= 1000 else {
                throw ModelConfigError.wrongType(file: c.file, field: key,
                                                 expected: "integers in 0…1000 or lists of them (block \(i): \(v))")
            }
            return n.intValue
        }
        if let list = entry as? [Any] {
            guard list.count == layers else {
                throw ModelConfigError.invalidValue(file: c.file, field: key,
                                                    reason: "block \(i) lists \(list.count) layer counts, the block has \(layers) layers")
            }
            return try list.map(count)
        }
        return Array(repeating: try count(entry), count: layers)
    }
}
