// Decoding while generating: ids arrive one at a time, and a byte-level token may end in the middle of
// a UTF-8 character (one emoji is often two or three tokens). The streaming decoder holds back an
// incomplete tail and emits only whole characters, so what it emits, concatenated, equals
// `decode(allIDs)` — never a U+FFFD that the full decode would not have. Not here: skipping special
// tokens mid-stream (pass `skipSpecialTokens`), stop strings (the generator's job).

/// Turns a stream of ids into a stream of complete text pieces.
public struct StreamingDecoder {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    /// Bytes received but not yet emitted: at most an incomplete UTF-8 sequence (≤ 3 bytes).
    public private(set) var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id; returns the text that is now complete (possibly empty).
    public mutating func push(_ id: Int) throws -> String {
        pending += try tokenizer.bytes([id], skipSpecialTokens: skipSpecialTokens)
        let keep = StreamingDecoder.incompleteTail(pending)
        let ready = pending[..<(pending.count - keep)]
        let text = String(decoding: ready, as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Ends the stream: whatever is held back, with U+FFFD for an unfinished character.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many bytes at the end of `b` form the start of a UTF-8 sequence that more bytes could still
    /// complete: a lead byte followed by fewer continuation bytes than it announces, each allowed in
    /// its place (E0 needs A0–BF next, ED 80–9F, F0 90–BF, F4 80–8F). 0 when the end is complete or
    /// already invalid (then the full decode would write U+FFFD there too).
    public static func incompleteTail(_ b: [UInt8]) -> Int {
        let n = b.count
        var k = 1
        while k <= min(3, n) {
            let lead = b[n - k]
            if lead & 0xC0 == 0x80 { k += 1; continue } // continuation byte: look further back
            let need: Int
            switch lead {
            case 0xC2...0xDF: need = 2
            case 0xE0...0xEF: need = 3
            case 0xF0...0xF4: need = 4
            default: return 0
            }
            guard k < need else { return 0 } // complete (or over-long run: invalid anyway)
            if k >= 2 {
                let second = b[n - k + 1]
                let ok: Bool
                switch lead {
                case 0xE0: ok = (0xA0...0xBF).contains(second)
                case 0xED: ok = (0x80...0x9F).contains(second)
                case 0xF0: ok = (0x90...0xBF).contains(second)
                case 0xF4: ok = (0x80...0x8F).contains(second)
                default: ok = true
                }
                if !ok { return 0 }
            }
            return k
        }
        return 0
    }
}
