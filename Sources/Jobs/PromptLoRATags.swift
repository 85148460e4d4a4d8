/// AUTOMATIC1111's extra-network tags in a prompt: `<lora:name>` and `<lora:name:weight>`
/// (`modules/extra_networks.py`: `re_extra_net = <(\w+):([^>]+)>`, arguments split at `:`;
/// the weight, default 1, multiplies the LoRA in the UNet and the text encoder). `parse_prompt`
/// removes every tag from the text the model sees and leaves the rest as it was, spaces and
/// commas included; only the positive prompt is read that way — tags in the negative prompt
/// are ordinary text there, and here too.
public enum PromptLoRATags {
    /// One `<lora:…>` tag as written.
    public struct Tag: Equatable, Sendable {
        public var name: String
        /// nil when the tag gives none (weight 1).
        public var weight: Float?
        public init(name: String, weight: Float?) {
            self.name = name
            self.weight = weight
        }
    }

    /// Where a tag starts and ends in the prompt, and its type and argument text.
    struct Match {
        var range: Range<String.Index>
        var type: String
        var arguments: String
    }

    /// Every `<word:args>` match, left to right, as Python's `re.finditer` finds them.
    static func matches(in prompt: String) -> [Match] {
        var out: [Match] = []
        var i = prompt.startIndex
        while let open = prompt[i...].firstIndex(of: "<") {
            var j = prompt.index(after: open)
            while j < prompt.endIndex, isWordCharacter(prompt[j]) { j = prompt.index(after: j) }
            if j > prompt.index(after: open), j < prompt.endIndex, prompt[j] == ":" {
                let argumentStart = prompt.index(after: j)
                if let close = prompt[argumentStart...].firstIndex(of: ">"), close > argumentStart {
                    out.append(Match(range: open..<prompt.index(after: close), type: String(prompt[prompt.index(after: open)..<j]),
                                     arguments: String(prompt[argumentStart..<close])))
                    i = prompt.index(after: close)
                    continue
                }
            }
            i = prompt.index(after: open)
        }
        return out
    }

    /// Python's `\w` on str: letters, digits and `_`.
    private static func isWordCharacter(_ c: Character) -> Bool {
        c == "_" || c.isLetter || c.isNumber
    }

    /// The prompt the model sees: every tag removed, nothing else touched.
    public static func stripped(_ prompt: String) -> String {
        var out = "", i = prompt.startIndex
        for m in matches(in: prompt) {
            out += prompt[i..<m.range.lowerBound]
            i = m.range.upperBound
        }
        out += prompt[i...]
        return out
    }

    /// The `<lora:…>` tags in order. Throws a message for tags of other extra-network types
    /// (hypernetworks, textual-inversion syntax …), for named arguments (`te=`, `unet=`,
    /// `dyn=`) and for a separate UNet weight, which diffusiond does not apply.
    public static func tags(in prompt: String) throws -> [Tag] {
        var tags: [Tag] = []
        for m in matches(in: prompt) {
            let written = "<\(m.type):\(m.arguments)>"
            guard m.type == "lora" else {
                throw PromptTagError("\(SourceError.quote(written)): only <lora:name> and <lora:name:weight> tags are supported")
            }
            let parts = m.arguments.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2, !parts.contains(where: { $0.contains("=") }) else {
                throw PromptTagError("\(SourceError.quote(written)): write <lora:name> or <lora:name:weight> (separate text-encoder and UNet weights and named arguments are not supported)")
            }
            var weight: Float?
            if parts.count == 2 {
                let text = parts[1].trimmingSpaces
                guard let value = Double(text), value.isFinite, abs(value) <= Double(LoRAWeightLimit.maximum) else {
                    throw PromptTagError("\(SourceError.quote(written)): the weight must be a number from \(-LoRAWeightLimit.maximum) to \(LoRAWeightLimit.maximum)")
                }
                weight = Float(value)
            }
            tags.append(Tag(name: parts[0].trimmingSpaces, weight: weight))
        }
        return tags
    }
}

/// The largest LoRA weight (in magnitude) a job may give.
public enum LoRAWeightLimit {
    public static let maximum = 10
}

/// A malformed prompt tag; the job parser adds file, line and column.
struct PromptTagError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
