// The Qwen2 pre-tokenizer: the split regex that cuts normalised text into pieces before byte-level BPE
// (docs/spec.md §5.4; Qwen2's tokenizer.json `pre_tokenizer`). Two versions:
//   - `Qwen2Split.naive`: the regex itself, run by NSRegularExpression, with `\s` spelled out so it means
//     what it means in HF tokenizers (Oniguruma: the Unicode White_Space property) and not ICU's `\s`.
//   - `Qwen2Split.pieces`: a hand-written scanner over Unicode scalars that makes the same choices the
//     backtracking regex makes, alternative by alternative, in one left-to-right pass without allocation.
// Both are tested against HF's `pre_tokenize_str` on the corpus. The byte-level spelling that follows the
// split is ByteLevel.swift; the merges are BPE.swift.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The Qwen2 split pattern, verbatim from Qwen2's tokenizer.json. Seven alternatives, tried in order
/// at each position (leftmost-first, like every backtracking engine):
///
///     1. (?i:'s|'t|'re|'ve|'m|'ll|'d)        contractions, any case
///     2. [^\r\n\p{L}\p{N}]?\p{L}+            a word, with at most one leading non-letter (" the", "(a")
///     3. \p{N}                               ONE digit (Qwen2 splits numbers digit by digit)
///     4.  ?[^\s\p{L}\p{N}]+[\r\n]*           a run of punctuation/symbols, optional leading space, then newlines
///     5. \s*[\r\n]+                          whitespace up to and including the last newline of the run
///     6. \s+(?!\S)                           whitespace, leaving the last one to start the next word
///     7. \s+                                 whatever whitespace is left
public enum Qwen2Split {
    public static let pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// What the pattern can tell apart about a scalar.
    public enum Class: UInt8, Sendable {
        case letter // \p{L}: Lu Ll Lt Lm Lo
        case number // \p{N}: Nd Nl No
        case newline // \r or \n (also whitespace)
        case space // other White_Space scalars: \t \v \f, space, U+0085, U+00A0, U+2000…, U+3000 …
        case other // everything else: punctuation, symbols, marks, emoji, controls, format characters
    }

    private static let asciiClass: [Class] = (0..<128).map { b -> Class in
        switch b {
        case 0x41...0x5A, 0x61...0x7A: return .letter
        case 0x30...0x39: return .number
        case 0x0A, 0x0D: return .newline
        case 0x09, 0x0B, 0x0C, 0x20: return .space
        default: return .other
        }
    }

    /// The class of one scalar (Unicode general category; White_Space for `\s`).
    @inline(__always)
    public static func classify(_ v: UInt32) -> Class {
        if v < 128 { return asciiClass[Int(v)] }
        guard let s = Unicode.Scalar(v) else { return .other }
        let p = s.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return p.isWhitespace ? .space : .other
        }
    }

    /// Case-insensitive match of a contraction letter (Oniguruma folds U+017F ſ to s).
    @inline(__always)
    private static func folds(_ v: UInt32, to lower: UInt32) -> Bool {
        v == lower || v == lower - 32 || (lower == 0x73 && v == 0x17F)
    }

    /// Cuts `v` (scalar values, classes `c`) into pieces, calling `emit(start, end)` for each scalar range
    /// in order. The pieces tile the input: every position starts a match of one alternative.
    @inline(__always)
    public static func pieces(
        _ v: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<Class>,
        _ emit: (Int, Int) -> Void
    ) {
        let n = v.count
        var i = 0
        while i < n {
            let end = matchEnd(v, c, i, n)
            emit(i, end)
            i = end
        }
    }

    /// Where the match starting at `i` ends, trying the seven alternatives in order.
    @inline(__always)
    static func matchEnd(_ v: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<Class>, _ i: Int, _ n: Int) -> Int {
        // 1. contractions
        if v[i] == 0x27, i + 1 < n {
            let a = v[i + 1]
            if folds(a, to: 0x73) || folds(a, to: 0x74) || folds(a, to: 0x6D) || folds(a, to: 0x64) { return i + 2 }
            if i + 2 < n {
                let b = v[i + 2]
                if (folds(a, to: 0x72) && folds(b, to: 0x65)) || (folds(a, to: 0x76) && folds(b, to: 0x65))
                    || (folds(a, to: 0x6C) && folds(b, to: 0x6C))
                {
                    return i + 3
                }
            }
        }
        let ci = c[i]
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        var j = i
        if (ci == .space || ci == .other), i + 1 < n, c[i + 1] == .letter { j = i + 1 }
        if c[j] == .letter {
            j += 1
            while j < n, c[j] == .letter { j += 1 }
            return j
        }
        // 3. \p{N}
        if ci == .number { return i + 1 }
        // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
        j = i
        if v[i] == 0x20, i + 1 < n, c[i + 1] == .other { j = i + 1 }
        if c[j] == .other {
            j += 1
            while j < n, c[j] == .other { j += 1 }
            while j < n, c[j] == .newline { j += 1 }
            return j
        }
        // Only whitespace is left here (ci is .space or .newline). Find the run and its last newline.
        var r = i
        var lastNewline = -1
        while r < n, c[r] == .space || c[r] == .newline {
            if c[r] == .newline { lastNewline = r }
            r += 1
        }
        // 5. \s*[\r\n]+
        if lastNewline >= 0 { return lastNewline + 1 }
        // 6. \s+(?!\S): the whole run at the end of the text, else all but its last scalar
        if r == n { return r }
        if r - i >= 2 { return r - 1 }
        // 7. \s+
        return r
    }

    /// Pieces of `text` by the scanner, as strings (for tests and the chapter).
    public static func split(_ text: String) -> [String] {
        let v = text.unicodeScalars.map(\.value)
        let c = v.map(classify)
        var out = [String]()
        var scalars = Array(text.unicodeScalars)
        v.withUnsafeBufferPointer { vb in
            c.withUnsafeBufferPointer { cb in
                pieces(vb, cb) { a, b in
                    var s = String.UnicodeScalarView()
                    s.append(contentsOf: scalars[a..<b])
                    out.append(String(s))
                }
            }
        }
        scalars.removeAll()
        return out
    }

    /// `\s` as Oniguruma (HF tokenizers' regex engine) reads it: the Unicode White_Space property.
    static let whiteSpaceClass =
        #"\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"#

    /// The naive reference: the pattern run by Swift's Regex engine over Unicode scalars (not grapheme
    /// clusters, as HF's engine does), `\s`/`\S` spelled out as above.
    public static func naive(_ text: String) -> [String] {
        // Match ranges fall on scalar boundaries, which may be inside a Character: cut the scalar view.
        text.matches(of: naiveRegex).map { String(String.UnicodeScalarView(text.unicodeScalars[$0.range])) }
    }

    // nonisolated(unsafe): a let that is only matched against, and Regex compiles its program lazily with an atomic
    // store, so concurrent matches are safe (Regex is just not marked Sendable).
    nonisolated(unsafe) private static let naiveRegex: Regex<AnyRegexOutput> = {
        // Swift's Regex rejects the range U+2000–U+200A as a class bound (U+2000 and U+2001 have canonical
        // decompositions), so its eleven members are listed one by one.
        let spaces = (0x2000...0x200A).map { "\\x{" + String($0, radix: 16) + "}" }.joined()
        let whiteSpaceClass = Qwen2Split.whiteSpaceClass.replacing(#"\x{2000}-\x{200A}"#, with: spaces)
        let p =
            pattern
            .replacing(#"[^\s\p{L}\p{N}]"#, with: "[^\(whiteSpaceClass)\\p{L}\\p{N}]")
            .replacing(#"(?!\S)"#, with: "(?![^\(whiteSpaceClass)])")
            .replacing(#"\s"#, with: "[\(whiteSpaceClass)]")
        // The pattern is a constant; failing to compile it is a programming error.
        return try! Regex(p).matchingSemantics(.unicodeScalar)
    }()
}
