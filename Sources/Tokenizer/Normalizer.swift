// Unicode NFC, the normaliser of Qwen2's tokenizer.json (docs/spec.md §5.4). The Swift standard library's own
// normaliser does the work (`_nfcCodeUnits`, the one String comparison uses and FoundationEssentials
// builds on; tests compare it with Python's unicodedata.normalize("NFC") and with HF's output on the
// corpus); this file adds only a quick check that skips the call for text that is certainly NFC already.
// It is not a normaliser of its own.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

public enum NFC {
    /// The naive path: always normalise.
    public static func naive(_ s: String) -> String { String(decoding: s._nfcCodeUnits, as: UTF8.self) }

    /// True when `v` is certainly NFC_Quick_Check=Yes with canonical combining class 0, so a text made
    /// only of such scalars is already NFC (nothing decomposes, nothing composes, nothing reorders).
    /// The ranges are deliberately few and conservative: Latin-1 and below, Cyrillic letters, Arabic
    /// letters, CJK punctuation (up to U+3029), kana (without the combining sound marks U+3099/309A), CJK
    /// ideographs, Hangul syllables, fullwidth forms and the emoji blocks.
    @inline(__always)
    public static func isStable(_ v: UInt32) -> Bool {
        if v < 0x300 { return true }
        switch v {
        case 0x0400..<0x0483, 0x0621..<0x064B, 0x3000..<0x302A, 0x3040..<0x3099, 0x309B..<0x3100,
            0x4E00..<0xA000, 0xAC00..<0xD7A4, 0xFF01..<0xFF61, 0x1F300..<0x1FA00:
            return true
        default:
            return false
        }
    }

    /// NFC of `s`, skipping Foundation when every scalar is stable.
    public static func normalize(_ s: String) -> String {
        for u in s.unicodeScalars where !isStable(u.value) { return naive(s) }
        return s
    }
}
