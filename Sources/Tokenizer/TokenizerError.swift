// The ways a tokenizer file (or a prompt request) can be wrong. Every message names the file or field
// and says what was expected. This file holds no logic.

/// Why a tokenizer could not be loaded or used.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read.
    case unreadable(path: String)
    /// The file is not the JSON we expect (`reason` says where).
    case malformedJSON(path: String, reason: String)
    /// `model.type` is not "BPE" (WordPiece, Unigram, … are not implemented).
    case unknownModelType(path: String, found: String)
    /// A normaliser, pre-tokenizer or decoder other than the ones Qwen2 uses.
    case unsupported(path: String, field: String, found: String)
    /// A merge names a token missing from the vocabulary (or its result is missing).
    case mergeUnknownToken(path: String, line: Int, token: String)
    /// A merge line that is not two tokens.
    case malformedMerge(path: String, line: Int, text: String)
    /// An id outside the vocabulary was given to `decode`.
    case unknownID(Int)
    /// No tokenizer.json (or vocab.json + merges.txt) at the path.
    case notFound(path: String)
    /// A token id (model vocabulary or added token) outside 0..<limit (`Tokenizer.maxTokenID`).
    case idOutOfRange(path: String, field: String, id: Int, limit: Int)
    /// The file is larger than `Tokenizer.maxFileBytes`.
    case fileTooLarge(path: String, bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case let .unreadable(p): return "\(p): cannot read the file"
        case let .malformedJSON(p, r): return "\(p): malformed tokenizer JSON: \(r)"
        case let .unknownModelType(p, f):
            return "\(p): model.type is \"\(f)\", expected \"BPE\" (the only model Eaglet implements)"
        case let .unsupported(p, field, f):
            return
                "\(p): \(field) is \(f), which Eaglet does not implement (expected Qwen2's: NFC, the Qwen2 split regex + ByteLevel, ByteLevel decoder)"
        case let .mergeUnknownToken(p, l, t): return "\(p): merge \(l) names \"\(t)\", which is not in the vocabulary"
        case let .malformedMerge(p, l, t):
            return "\(p): merge \(l) is \"\(t)\", expected two tokens separated by one space"
        case let .unknownID(id): return "token id \(id) is not in the vocabulary"
        case let .notFound(p): return "\(p): no tokenizer.json there (nor vocab.json + merges.txt)"
        case let .idOutOfRange(p, f, id, lim): return "\(p): \(f) has id \(id), expected an id in 0..<\(lim)"
        case let .fileTooLarge(p, b, lim):
            return "\(p): \(b) bytes, larger than the \(lim)-byte limit for tokenizer files"
        }
    }
}
