// The tokenizer of Eagle 2.5's language model (Qwen2's byte-level BPE, docs/spec.md §5.3–5.4): text → ids and
// ids → text, read from a HF `tokenizer.json` or a `vocab.json` + `merges.txt` pair.
//
// encode(text):
//   1. added tokens (`<|im_start|>`, `<IMG_CONTEXT>`, …) are cut out of the raw text first, leftmost-longest;
//   2. every stretch between them is NFC-normalised (Normalizer.swift),
//   3. split by the Qwen2 regex (PreTokenizer.swift),
//   4. each piece spelled byte by byte in GPT-2's byte-level alphabet (ByteLevel.swift),
//   5. and merged by rank (BPE.swift), with a cache of pieces already seen.
// decode(ids): each token's bytes (ByteLevel.decode), concatenated, read as UTF-8 with U+FFFD for bad bytes.
// Not here: WordPiece/Unigram models, other pre-tokenizers, truncation/padding, post-processors (Qwen2
// adds no BOS/EOS), offsets. Added tokens with `single_word` are refused at load time.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif

/// A token matched in raw text before BPE (`added_tokens` of tokenizer.json).
public struct AddedToken: Sendable, Equatable {
    public let id: Int
    public let content: String
    /// Special tokens are dropped by `decode(skipSpecialTokens: true)`.
    public let special: Bool
    /// Matched on NFC-normalised text (true) or on the raw text (false, the usual case for specials).
    public let normalized: Bool
    /// Whitespace on the left / right of a match is swallowed into it.
    public let lstrip: Bool
    public let rstrip: Bool
}

/// A byte-level BPE tokenizer with Qwen2's normaliser and pre-tokenizer.
// @unchecked: everything is immutable after init except `cache`, which is only read and written with `cacheLock` held.
public final class Tokenizer: @unchecked Sendable {
    /// Token → id of the BPE model (not the added tokens).
    public let vocab: [String: Int]
    /// The added tokens in file order.
    public let addedTokens: [AddedToken]
    /// Whether text is NFC-normalised before splitting.
    public let normalizesNFC: Bool
    /// The merge table.
    public let bpe: BPE
    /// id → token string, for the model's and the added tokens (nil for a hole in the id range).
    public let idToToken: [String?]
    /// One past the largest id.
    public var vocabularySize: Int { idToToken.count }

    /// Id of each byte's byte-level scalar (-1 when the vocabulary lacks it: the byte is dropped, as HF does
    /// without an unk token).
    let byteID: [Int32]
    /// Bytes of each id, as decode writes them.
    let idBytes: [[UInt8]]
    let specialIDs: Set<Int>
    /// Added tokens by the first UTF-8 byte of their content, longest first.
    let rawMatchers: [[(bytes: [UInt8], token: AddedToken)]]
    let normalizedMatchers: [[(bytes: [UInt8], token: AddedToken)]]
    let ignoreMerges: Bool

    private var cache = [String: [Int32]]()
    private let cacheLock = Mutex()
    /// Pieces longer than this (in bytes) are not cached.
    static let cacheMaxPieceBytes = 64
    static let cacheMaxEntries = 1 << 18

    /// Largest token id accepted (exclusive): 2²⁴ = 16 777 216, a hundred times Qwen2's 151 665 ids. The
    /// id → token table is sized by the largest id, so this bounds what a hostile file can make us allocate.
    public static let maxTokenID = 1 << 24
    /// Largest tokenizer file read (tokenizer.json, vocab.json, merges.txt, tokenizer_config.json):
    /// 256 MB, thirty times Qwen2's 7 MB tokenizer.json.
    public static let maxFileBytes = 256 << 20

    /// The bytes of `path`, refusing files over `maxFileBytes` before reading them.
    static func readFile(_ path: String) throws -> Data {
        let data: Data
        do { data = Data(try readRegularFile(path, limit: maxFileBytes)) } catch let p as FileReadProblem {
            if case let .tooLarge(b, l) = p { throw TokenizerError.fileTooLarge(path: path, bytes: b, limit: l) }
            throw TokenizerError.unreadable(path: path)
        }
        return data
    }

    // MARK: Loading

    /// Reads `path`: a tokenizer.json, or a folder holding tokenizer.json, or (failing that)
    /// vocab.json + merges.txt (+ tokenizer_config.json for added tokens).
    public static func load(_ path: String) throws -> Tokenizer {
        guard let isDir = Path.isDirectory(path) else { throw TokenizerError.notFound(path: path) }
        if !isDir { return try Tokenizer(tokenizerJSON: path) }
        let json = Path.join(path, "tokenizer.json")
        if FileManager.default.fileExists(atPath: json) { return try Tokenizer(tokenizerJSON: json) }
        let vocab = Path.join(path, "vocab.json")
        let merges = Path.join(path, "merges.txt")
        if FileManager.default.fileExists(atPath: vocab), FileManager.default.fileExists(atPath: merges) {
            return try Tokenizer(vocabJSON: vocab, mergesTXT: merges)
        }
        throw TokenizerError.notFound(path: path)
    }

    /// Reads a HF tokenizer.json whose model is BPE with Qwen2's normaliser, pre-tokenizer and decoder.
    public convenience init(tokenizerJSON path: String) throws {
        let data = try Tokenizer.readFile(path)
        try self.init(tokenizerJSONData: data, path: path)
    }

    /// Reads tokenizer.json bytes (`path` only names them in errors).
    public convenience init(tokenizerJSONData data: Data, path: String = "tokenizer.json") throws {
        let root: [String: Any]
        do {
            guard let r = try JSON.parse(data) as? [String: Any] else {
                throw TokenizerError.malformedJSON(path: path, reason: "the top level is not an object")
            }
            root = r
        } catch let e as TokenizerError { throw e } catch {
            throw TokenizerError.malformedJSON(path: path, reason: "not valid JSON (\(error))")
        }
        guard let model = root["model"] as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: path, reason: "no \"model\" object")
        }
        let type = model["type"] as? String ?? "BPE" // old files omit it; BPE is the default there
        guard type == "BPE" else { throw TokenizerError.unknownModelType(path: path, found: type) }
        guard let rawVocab = model["vocab"] as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: path, reason: "model.vocab is not an object of token → id")
        }
        var vocab = [String: Int](minimumCapacity: rawVocab.count)
        for (k, v) in rawVocab {
            guard let id = v as? Int, id >= 0 else {
                throw TokenizerError.malformedJSON(
                    path: path, reason: "model.vocab[\"\(k)\"] is not a non-negative integer")
            }
            vocab[k] = id
        }
        guard let rawMerges = model["merges"] as? [Any] else {
            throw TokenizerError.malformedJSON(path: path, reason: "model.merges is not an array")
        }
        var merges = [(String, String)]()
        merges.reserveCapacity(rawMerges.count)
        for (i, m) in rawMerges.enumerated() {
            if let s = m as? String {
                merges.append(try Tokenizer.parseMerge(s, line: i + 1, path: path))
            } else if let pair = m as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw TokenizerError.malformedMerge(path: path, line: i + 1, text: "\(m)")
            }
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key] as? String, !s.isEmpty {
                throw TokenizerError.unsupported(path: path, field: "model.\(key)", found: "\"\(s)\"")
            }
        }
        if let b = model["byte_fallback"] as? Bool, b {
            throw TokenizerError.unsupported(path: path, field: "model.byte_fallback", found: "true")
        }
        let ignoreMerges = model["ignore_merges"] as? Bool ?? false

        // Normaliser: NFC or none.
        var nfc = false
        switch root["normalizer"] {
        case nil, is JSONNull: nfc = false
        case let n as [String: Any]:
            let t = n["type"] as? String ?? "?"
            if t == "NFC" {
                nfc = true
            } else if t == "Sequence", let list = n["normalizers"] as? [[String: Any]], list.count <= 1,
                list.allSatisfy({ $0["type"] as? String == "NFC" })
            {
                nfc = !list.isEmpty
            } else {
                throw TokenizerError.unsupported(path: path, field: "normalizer", found: t)
            }
        default: throw TokenizerError.malformedJSON(path: path, reason: "\"normalizer\" is not an object")
        }
        try Tokenizer.checkPreTokenizer(root["pre_tokenizer"], path: path)
        if let d = root["decoder"] as? [String: Any], let t = d["type"] as? String, t != "ByteLevel" {
            throw TokenizerError.unsupported(path: path, field: "decoder", found: t)
        }
        var added = [AddedToken]()
        if let list = root["added_tokens"] {
            guard let list = list as? [[String: Any]] else {
                throw TokenizerError.malformedJSON(path: path, reason: "\"added_tokens\" is not an array of objects")
            }
            for (i, t) in list.enumerated() {
                guard let id = t["id"] as? Int, let content = t["content"] as? String, !content.isEmpty else {
                    throw TokenizerError.malformedJSON(
                        path: path, reason: "added_tokens[\(i)] needs an integer \"id\" and a non-empty \"content\"")
                }
                if t["single_word"] as? Bool == true {
                    throw TokenizerError.unsupported(path: path, field: "added_tokens[\(i)].single_word", found: "true")
                }
                added.append(
                    AddedToken(
                        id: id, content: content, special: t["special"] as? Bool ?? false,
                        normalized: t["normalized"] as? Bool ?? !(t["special"] as? Bool ?? false),
                        lstrip: t["lstrip"] as? Bool ?? false, rstrip: t["rstrip"] as? Bool ?? false))
            }
        }
        try self.init(
            vocab: vocab, merges: merges, addedTokens: added, nfc: nfc, ignoreMerges: ignoreMerges, path: path)
    }

    /// Reads the vocab.json + merges.txt pair (merges.txt: optional `#version` line, then "a b" per line,
    /// LF or CRLF). Added tokens come from tokenizer_config.json's `added_tokens_decoder` when that file
    /// sits beside vocab.json. The normaliser (NFC) and pre-tokenizer (Qwen2) are assumed.
    public convenience init(vocabJSON: String, mergesTXT: String) throws {
        let vdata = try Tokenizer.readFile(vocabJSON)
        guard let raw = (try? JSON.parse(vdata)) as? [String: Any] else {
            let why = JSON.whyNot(vdata, [String: Any].self, what: "an object") ?? ""
            throw TokenizerError.malformedJSON(path: vocabJSON, reason: "not a JSON object of token → id (\(why))")
        }
        var vocab = [String: Int](minimumCapacity: raw.count)
        for (k, v) in raw {
            guard let id = v as? Int, id >= 0 else {
                throw TokenizerError.malformedJSON(
                    path: vocabJSON, reason: "\"\(k)\" is not mapped to a non-negative integer")
            }
            vocab[k] = id
        }
        let mdata = try Tokenizer.readFile(mergesTXT)
        let text = String(decoding: mdata, as: UTF8.self)
        var merges = [(String, String)]()
        // Swift reads "\r\n" as ONE Character, so split on either spelling of a line end.
        for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .enumerated()
        {
            let l = Substring(line)
            if l.isEmpty || (i == 0 && l.hasPrefix("#version")) { continue }
            merges.append(try Tokenizer.parseMerge(String(l), line: i + 1, path: mergesTXT))
        }
        var added = [AddedToken]()
        let config = Path.join(Path.deletingLastComponent(vocabJSON), "tokenizer_config.json")
        if FileManager.default.fileExists(atPath: config) {
            let cdata = try Tokenizer.readFile(config)
            guard let c = (try? JSON.parse(cdata)) as? [String: Any] else {
                throw TokenizerError.malformedJSON(
                    path: config,
                    reason: JSON.whyNot(cdata, [String: Any].self, what: "an object") ?? "not a JSON object")
            }
            if let dec = c["added_tokens_decoder"] as? [String: [String: Any]] {
                for (k, t) in dec.sorted(by: { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }) {
                    guard let id = Int(k), let content = t["content"] as? String, !content.isEmpty else {
                        throw TokenizerError.malformedJSON(
                            path: config,
                            reason: "added_tokens_decoder[\"\(k)\"] needs an integer key and a \"content\"")
                    }
                    let special = t["special"] as? Bool ?? false
                    added.append(
                        AddedToken(
                            id: id, content: content, special: special,
                            normalized: t["normalized"] as? Bool ?? !special,
                            lstrip: t["lstrip"] as? Bool ?? false, rstrip: t["rstrip"] as? Bool ?? false))
                }
            }
        }
        try self.init(vocab: vocab, merges: merges, addedTokens: added, nfc: true, ignoreMerges: false, path: mergesTXT)
    }

    /// Builds a tokenizer from its parts.
    public init(
        vocab: [String: Int], merges: [(String, String)], addedTokens: [AddedToken], nfc: Bool,
        ignoreMerges: Bool = false, path: String = "<memory>"
    ) throws {
        self.vocab = vocab
        self.addedTokens = addedTokens
        self.normalizesNFC = nfc
        self.ignoreMerges = ignoreMerges
        // Ids index the id → token table below (and are packed into 32 bits by BPE): bound them first.
        for (t, id) in vocab where id < 0 || id >= Tokenizer.maxTokenID {
            throw TokenizerError.idOutOfRange(
                path: path, field: "model.vocab[\"\(t)\"]", id: id, limit: Tokenizer.maxTokenID)
        }
        for t in addedTokens where t.id < 0 || t.id >= Tokenizer.maxTokenID {
            throw TokenizerError.idOutOfRange(
                path: path, field: "added token \"\(t.content)\"", id: t.id, limit: Tokenizer.maxTokenID)
        }
        for t in addedTokens where t.content.isEmpty {
            throw TokenizerError.malformedJSON(path: path, reason: "an added token (id \(t.id)) has empty content")
        }
        self.bpe = try BPE(merges: merges, vocab: vocab, path: path)
        let size = max((vocab.values.max() ?? -1) + 1, (addedTokens.map(\.id).max() ?? -1) + 1)
        var tokens = [String?](repeating: nil, count: size)
        for (t, id) in vocab { tokens[id] = t }
        for t in addedTokens { tokens[t.id] = t.content }
        idToToken = tokens
        idBytes = tokens.map { $0.map(ByteLevel.decode) ?? [] }
        byteID = (0..<256).map { b in Int32(vocab[String(ByteLevel.scalar[b])] ?? -1) }
        specialIDs = Set(addedTokens.filter(\.special).map(\.id))
        func matchers(_ list: [AddedToken]) -> [[(bytes: [UInt8], token: AddedToken)]] {
            var m = [[(bytes: [UInt8], token: AddedToken)]](repeating: [], count: 256)
            for t in list { let b = Array(t.content.utf8); m[Int(b[0])].append((b, t)) }
            for i in 0..<256 { m[i].sort { $0.bytes.count > $1.bytes.count } }
            return m
        }
        rawMatchers = matchers(addedTokens.filter { !$0.normalized || !nfc })
        normalizedMatchers = matchers(addedTokens.filter { $0.normalized && nfc })
    }

    static func parseMerge(_ s: String, line: Int, path: String) throws -> (String, String) {
        let parts = s.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw TokenizerError.malformedMerge(path: path, line: line, text: s)
        }
        return (String(parts[0]), String(parts[1]))
    }

    static func checkPreTokenizer(_ p: Any?, path: String) throws {
        guard let p = p as? [String: Any], p["type"] as? String == "Sequence",
            let list = p["pretokenizers"] as? [[String: Any]],
            list.count == 2, list[0]["type"] as? String == "Split", list[1]["type"] as? String == "ByteLevel"
        else {
            throw TokenizerError.unsupported(
                path: path, field: "pre_tokenizer",
                found: "\((p as? [String: Any])?["type"] ?? "none") (not Split + ByteLevel)")
        }
        let pattern = (list[0]["pattern"] as? [String: Any])?["Regex"] as? String
        guard pattern == Qwen2Split.pattern else {
            throw TokenizerError.unsupported(
                path: path, field: "pre_tokenizer.pretokenizers[0].pattern",
                found: "\"\(pattern ?? "?")\" (not Qwen2's)")
        }
        guard (list[0]["behavior"] as? String ?? "Isolated") == "Isolated", list[0]["invert"] as? Bool != true else {
            throw TokenizerError.unsupported(
                path: path, field: "pre_tokenizer.pretokenizers[0].behavior", found: "\(list[0]["behavior"] ?? "?")")
        }
        if list[1]["use_regex"] as? Bool == true || list[1]["add_prefix_space"] as? Bool == true {
            throw TokenizerError.unsupported(
                path: path, field: "pre_tokenizer.pretokenizers[1]",
                found: "ByteLevel with use_regex or add_prefix_space")
        }
    }

    // MARK: Encoding

    /// The id of a token (model or added), or nil.
    public func id(of token: String) -> Int? {
        if let t = addedTokens.first(where: { $0.content == token }) { return t.id }
        return vocab[token]
    }

    /// HF `encode(text, add_special_tokens=False).ids`.
    public func encode(_ text: String) -> [Int] {
        var out = [Int]()
        out.reserveCapacity(text.utf8.count / 3 + 4)
        var scratch = Scratch()
        var s = text
        s.withUTF8 { buf in
            Tokenizer.splitAdded(buf, rawMatchers) { part in
                switch part {
                case let .added(id): out.append(id)
                case let .text(range): encodeRaw(UnsafeBufferPointer(rebasing: buf[range]), into: &out, &scratch)
                }
            }
        }
        return out
    }

    /// Encodes bytes that may not be valid UTF-8: bad sequences become U+FFFD first (maximal subparts,
    /// as Python's `bytes.decode("utf-8", errors="replace")` does).
    public func encode(bytes: [UInt8]) -> [Int] { encode(String(decoding: bytes, as: UTF8.self)) }

    /// The naive path: the same steps with Foundation's NFC on every stretch, NSRegularExpression for
    /// the split and string-keyed merges, no cache.
    public func encodeNaive(_ text: String) -> [Int] {
        var out = [Int]()
        let bytes = Array(text.utf8)
        bytes.withUnsafeBufferPointer { buf in
            Tokenizer.splitAdded(buf, rawMatchers) { part in
                switch part {
                case let .added(id): out.append(id)
                case let .text(range):
                    var stretch = String(decoding: buf[range], as: UTF8.self)
                    if normalizesNFC { stretch = NFC.naive(stretch) }
                    let nb = Array(stretch.utf8)
                    nb.withUnsafeBufferPointer { nbuf in
                        Tokenizer.splitAdded(nbuf, normalizedMatchers) { p in
                            switch p {
                            case let .added(id): out.append(id)
                            case let .text(r):
                                for piece in Qwen2Split.naive(String(decoding: nbuf[r], as: UTF8.self)) {
                                    let symbols = piece.utf8.map { String(ByteLevel.scalar[Int($0)]) }
                                    for t in bpe.naive(symbols) { if let id = vocab[t] { out.append(id) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    enum Part {
        case added(Int)
        case text(Range<Int>)
    }

    /// Cuts `buf` at added tokens, leftmost-longest; calls `body` with the tokens and the text between.
    /// lstrip/rstrip tokens swallow the ASCII whitespace beside them.
    static func splitAdded(
        _ buf: UnsafeBufferPointer<UInt8>, _ matchers: [[(bytes: [UInt8], token: AddedToken)]],
        _ body: (Part) -> Void
    ) {
        let n = buf.count
        var start = 0, i = 0
        outer: while i < n {
            let cands = matchers[Int(buf[i])]
            if !cands.isEmpty {
                for (bytes, token) in cands where bytes.count <= n - i {
                    var k = 1
                    while k < bytes.count, buf[i + k] == bytes[k] { k += 1 }
                    if k == bytes.count {
                        var left = i, right = i + k
                        if token.lstrip { while left > start, isASCIISpace(buf[left - 1]) { left -= 1 } }
                        if token.rstrip { while right < n, isASCIISpace(buf[right]) { right += 1 } }
                        if left > start { body(.text(start..<left)) }
                        body(.added(token.id))
                        start = right; i = right
                        continue outer
                    }
                }
            }
            i += 1
        }
        if start < n { body(.text(start..<n)) }
    }

    @inline(__always) static func isASCIISpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    /// Reusable buffers of one encode call.
    struct Scratch {
        var values = [UInt32](), classes = [Qwen2Split.Class](), starts = [Int]()
        var ids = [Int32]()
    }

    /// Steps 2–5 for one stretch of raw text between added tokens.
    func encodeRaw(_ raw: UnsafeBufferPointer<UInt8>, into out: inout [Int], _ scratch: inout Scratch) {
        if normalizesNFC && !Tokenizer.allStable(raw) {
            var s = NFC.naive(String(decoding: raw, as: UTF8.self))
            s.withUTF8 { nb in
                Tokenizer.splitAdded(nb, normalizedMatchers) { p in
                    switch p {
                    case let .added(id): out.append(id)
                    case let .text(r): encodeNormalized(UnsafeBufferPointer(rebasing: nb[r]), into: &out, &scratch)
                    }
                }
            }
        } else if normalizedMatchers.contains(where: { !$0.isEmpty }) {
            Tokenizer.splitAdded(raw, normalizedMatchers) { p in
                switch p {
                case let .added(id): out.append(id)
                case let .text(r): encodeNormalized(UnsafeBufferPointer(rebasing: raw[r]), into: &out, &scratch)
                }
            }
        } else {
            encodeNormalized(raw, into: &out, &scratch)
        }
    }

    /// True when every scalar of the UTF-8 text is NFC-stable (see NFC.isStable).
    static func allStable(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        while i < n {
            let x = b[i]
            if x < 0xCC { i += x < 0x80 ? 1 : 2; continue } // U+0000…U+02FF
            let (v, len) = decodeScalar(b, i)
            if !NFC.isStable(v) { return false }
            i += len
        }
        return true
    }

    /// Decodes the scalar starting at `i` of valid UTF-8 (Swift strings are always valid).
    @inline(__always)
    static func decodeScalar(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let x = UInt32(b[i])
        if x < 0x80 { return (x, 1) }
        if x < 0xE0 { return ((x & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F), 2) }
        if x < 0xF0 { return ((x & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F), 3) }
        return (
            (x & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F), 4
        )
    }

    /// Steps 3–5 on NFC text.
    func encodeNormalized(_ b: UnsafeBufferPointer<UInt8>, into out: inout [Int], _ scratch: inout Scratch) {
        scratch.values.removeAll(keepingCapacity: true)
        scratch.classes.removeAll(keepingCapacity: true)
        scratch.starts.removeAll(keepingCapacity: true)
        var i = 0
        while i < b.count {
            let (v, len) = Tokenizer.decodeScalar(b, i)
            scratch.values.append(v)
            scratch.classes.append(Qwen2Split.classify(v))
            scratch.starts.append(i)
            i += len
        }
        scratch.starts.append(b.count)
        let starts = scratch.starts
        scratch.values.withUnsafeBufferPointer { vb in
            scratch.classes.withUnsafeBufferPointer { cb in
                Qwen2Split.pieces(vb, cb) { s, e in
                    bpePiece(UnsafeBufferPointer(rebasing: b[starts[s]..<starts[e]]), into: &out, &scratch.ids)
                }
            }
        }
    }

    /// Step 4–5 for one piece, through the cache.
    @inline(__always)
    func bpePiece(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int], _ ids: inout [Int32]) {
        if piece.count == 1 {
            let id = byteID[Int(piece[0])]
            if id >= 0 { out.append(Int(id)) }
            return
        }
        let cacheable = piece.count <= Tokenizer.cacheMaxPieceBytes
        var key = ""
        if cacheable {
            key = String(decoding: piece, as: UTF8.self)
            cacheLock.lock()
            let hit = cache[key]
            cacheLock.unlock()
            if let hit { for x in hit { out.append(Int(x)) }; return }
        }
        ids.removeAll(keepingCapacity: true)
        if ignoreMerges, let whole = vocab[ByteLevel.encode(piece)] {
            ids.append(Int32(whole))
        } else {
            for byte in piece { let id = byteID[Int(byte)]; if id >= 0 { ids.append(id) } }
            bpe.merge(&ids)
        }
        for x in ids { out.append(Int(x)) }
        if cacheable {
            cacheLock.lock()
            if cache.count >= Tokenizer.cacheMaxEntries { cache.removeAll(keepingCapacity: true) }
            cache[key] = ids
            cacheLock.unlock()
        }
    }

    // MARK: Decoding

    /// HF `decode(ids, skip_special_tokens:)`: the bytes of every token, read as UTF-8 (bad bytes → U+FFFD).
    /// Throws for an id outside the vocabulary (HF silently drops it).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> String {
        String(decoding: try bytes(ids, skipSpecialTokens: skipSpecialTokens), as: UTF8.self)
    }

    /// The raw bytes the ids spell.
    public func bytes(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> [UInt8] {
        var out = [UInt8]()
        for id in ids {
            guard id >= 0, id < idToToken.count, idToToken[id] != nil else { throw TokenizerError.unknownID(id) }
            if skipSpecialTokens && specialIDs.contains(id) { continue }
            out.append(contentsOf: idBytes[id])
        }
        return out
    }

    /// The token string of an id (byte-level spelling for model tokens), or nil.
    public func token(of id: Int) -> String? { id >= 0 && id < idToToken.count ? idToToken[id] : nil }
}
