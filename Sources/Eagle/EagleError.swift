// What can go wrong between a checkpoint folder, a prompt and an answer, as typed errors whose message
// starts with one summary line naming the file or field, then at most ten details.

/// Why Eagle could not load, prepare or generate.
public enum EagleError: Error, Equatable, CustomStringConvertible, Sendable {
    /// config.json is missing, not JSON, or a field has the wrong type or value.
    case badConfig(file: String, field: String, expected: String)
    /// The prompt's `<IMG_CONTEXT>` count differs from the number of visual tokens.
    case imageTokenMismatch(placeholders: Int, visualTokens: Int)
    /// Prompt (plus requested new tokens) longer than the model's context.
    case promptTooLong(tokens: Int, maxNewTokens: Int, context: Int)
    /// A token id outside the vocabulary (from --input-ids or a tokenizer that does not match).
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    /// No tokenizer.json where one is needed (text prompts, decoding).
    case noTokenizer(directory: String)
    /// pixel_values of the wrong shape for this model.
    case badPixelValues(shape: [Int], expected: String)
    /// The run needs more memory than the machine (or its cgroup) has left: found before loading or allocating.
    case doesNotFit(source: String, plan: String, neededBytes: Int, availableBytes: Int, advice: String)
    /// Weights holding NaN or ±Inf (found by the scan at load), by name.
    case nonFiniteWeights(source: String, tensors: [String])
    /// No prompt tokens at all.
    case emptyPrompt
    /// A generation parameter out of its range.
    case badParameter(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case let .badConfig(f, field, e):
            return field.hasPrefix("(") ? "\(f): expected \(e)" : "\(f): field '\(field)': expected \(e)"
        case let .doesNotFit(src, plan, _, _, advice):
            return "\(src): this run does not fit in memory — \(plan). \(advice)"
        case let .imageTokenMismatch(p, v):
            return "prompt: \(p) <IMG_CONTEXT> tokens but the images give \(v) visual tokens"
        case let .promptTooLong(t, n, c):
            return
                "prompt: \(t) tokens + \(n) new tokens exceed the context of \(c) tokens (shorten the prompt, use fewer tiles, or lower --max-new-tokens)"
        case let .tokenOutOfRange(id, v): return "input ids: token \(id) is outside the vocabulary 0..<\(v)"
        case let .noTokenizer(d): return "\(d): no tokenizer.json (needed for text prompts and for decoding)"
        case let .badPixelValues(s, e): return "pixel_values: shape \(s), expected \(e)"
        case let .badParameter(n, v, e): return "--\(n) \(v): expected \(e)"
        case let .nonFiniteWeights(s, t):
            var lines = [
                "\(s): \(t.count > 10 ? "more than 10" : "\(t.count)") tensors hold NaN or infinite values (a corrupt or diverged checkpoint)"
            ]
            lines += t.prefix(10).map { "  " + $0 }
            return lines.joined(separator: "\n")
        case .emptyPrompt: return "prompt: no tokens (give a non-empty prompt or input-ids array)"
        }
    }
}
