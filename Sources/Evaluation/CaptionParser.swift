/// What a caption asks for: a background colour and objects (colour, shape, position).
public struct ExpectedScene: Sendable, Equatable {
    public struct Object: Sendable, Equatable {
        public var color: NamedColor
        public var shape: ShapeKind
        /// Absent when the caption names no position for this object.
        public var position: GridPosition?

        public init(color: NamedColor, shape: ShapeKind, position: GridPosition?) {
            self.color = color
            self.shape = shape
            self.position = position
        }
    }

    /// Absent when the caption names no background.
    public var background: NamedColor?
    public var objects: [Object]

    public init(background: NamedColor?, objects: [Object]) {
        self.background = background
        self.objects = objects
    }
}

/// A caption the parser cannot read, with the word where it went wrong.
public struct CaptionParseError: Error, CustomStringConvertible, Equatable {
    public var caption: String
    /// 0-based index of the offending word (after splitting off commas).
    public var wordIndex: Int
    public var reason: String

    public var description: String {
        "caption \"\(caption)\", word \(wordIndex + 1): \(reason)"
    }
}

/// Parses captions of the built-in model's grammar (tools/train/shapes_data.py, `caption`):
/// a colour word directly before `background` names the background; any other colour
/// word starts an object — colour, optional size word (`small`, `medium`, `big`), shape —
/// followed by position words (`top`, `bottom`, `left`, `right`, `center`, `middle`) up to
/// the next colour word. Other words (`a`, `at`, `the`, `on`, `with`, commas …) are ignored.
public enum CaptionParser {
    static let sizeWords: Set<String> = ["small", "medium", "big", "large"]

    public static func parse(_ caption: String) throws -> ExpectedScene {
        let words = caption.lowercased()
            .replacingOccurrences(of: ",", with: " , ")
            .replacingOccurrences(of: ".", with: " ")
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            .map(String.init)
        var background: NamedColor?
        var objects: [ExpectedScene.Object] = []
        var i = 0
        while i < words.count {
            guard let color = NamedColor(word: words[i]) else {
                i += 1
                continue
            }
            if i + 1 < words.count && words[i + 1] == "background" {
                if background != nil {
                    throw CaptionParseError(caption: caption, wordIndex: i, reason: "a second background colour")
                }
                background = color
                i += 2
                continue
            }
            var j = i + 1
            while j < words.count && sizeWords.contains(words[j]) { j += 1 }
            guard j < words.count, let shape = ShapeKind(word: words[j]) else {
                throw CaptionParseError(caption: caption, wordIndex: min(j, words.count - 1),
                                        reason: "expected a shape (circle, square, triangle) after the colour \"\(color.name)\"")
            }
            // Position words run up to the next colour word.
            var row: Int?, column: Int?, centered = false
            j += 1
            while j < words.count && NamedColor(word: words[j]) == nil {
                switch words[j] {
                case "top": row = 0
                case "bottom": row = 2
                case "left": column = 0
                case "right": column = 2
                case "center", "centre", "middle": centered = true
                default: break
                }
                j += 1
            }
            let position: GridPosition? = (row != nil || column != nil || centered)
                ? GridPosition(row: row ?? 1, column: column ?? 1) : nil
            objects.append(.init(color: color, shape: shape, position: position))
            i = j
        }
        if objects.isEmpty {
            throw CaptionParseError(caption: caption, wordIndex: max(0, words.count - 1), reason: "no object (colour + shape) found")
        }
        return ExpectedScene(background: background, objects: objects)
    }
}
