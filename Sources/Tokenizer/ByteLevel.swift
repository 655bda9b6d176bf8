// GPT-2's byte-level alphabet: a fixed bijection between the 256 byte values and 256 printable Unicode
// scalars, so that any byte string can be spelled with "characters" a BPE vocabulary can hold (docs/spec.md §5.4:
// Qwen2 inherits it). It is a table and its inverse, nothing more; the splitting that comes before it
// lives in PreTokenizer.swift.

/// The byte ↔ scalar table of GPT-2's byte-level BPE.
///
/// Bytes that are printable and not whitespace in Latin-1 (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for
/// themselves; the other 68 bytes (controls, space, DEL, NBSP, soft hyphen …) are given the scalars
/// U+0100, U+0101, … in byte order. So a space (0x20) is `Ġ` (U+0120) and a newline (0x0A) is `Ċ` (U+010A).
public enum ByteLevel {
    /// `scalar[b]` spells byte `b`.
    public static let scalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let keeps = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if keeps { table[b] = Unicode.Scalar(UInt32(b))! } else { table[b] = Unicode.Scalar(next)!; next += 1 }
        }
        return table
    }()

    /// The inverse: byte of a scalar, or nil for a scalar outside the alphabet.
    public static func byte(of s: Unicode.Scalar) -> UInt8? { inverse[s.value] }

    private static let inverse: [UInt32: UInt8] = {
        var d = [UInt32: UInt8]()
        for (b, s) in scalar.enumerated() { d[s.value] = UInt8(b) }
        return d
    }()

    /// Spells bytes in the byte-level alphabet: `[0x48, 0x20, 0xC3, 0xA9]` → `"HĠÃ©"`.
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalar[Int(b)]) }
        return String(s)
    }

    /// The bytes a token spells, as HF's ByteLevel decoder reads it: every scalar mapped back, or, when
    /// some scalar is outside the alphabet (an added token like `<IMG_CONTEXT>` is inside it, but a
    /// token holding `é` literally is not), the token's own UTF-8 bytes.
    public static func decode(_ token: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard let b = byte(of: s) else { return Array(token.utf8) }
            out.append(b)
        }
        return out
    }
}
