// A small JSON reader (RFC 8259) that returns the same kind of tree `JSONSerialization` does —
// [String: Any], [Any], String, Int, Double, Bool, `JSONNull` — so the loaders of checkpoints, configs and
// tokenizers need only FoundationEssentials, and the static `eaglet-gpu` binary carries no ICU (docs/gpu.md).
//
// Numbers: an integer literal that fits in Int is an Int, anything else (fraction, exponent, too large) a
// Double; read numbers through `JSON.double`/`JSON.int` where either may appear. Strings: every escape
// including surrogate pairs; unpaired surrogates become U+FFFD (Python's json does the same with
// errors="replace"). Limits (untrusted input, docs/robustness.md): nesting depth 512; a malformed document
// is a `JSONError` naming the byte offset.
// `JSON.serialize` writes such a tree back (sorted keys), for handing a sub-object to JSONDecoder.
// What it is not: a streaming parser, or Codable (JSONDecoder is, and is in FoundationEssentials).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// JSON's `null` in a parsed tree.
public struct JSONNull: Equatable, Sendable {
    public init() {}
}

/// Why a document is not JSON: the byte offset and what was expected there.
public struct JSONError: Error, Equatable, CustomStringConvertible, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

public enum JSON {
    /// The deepest nesting of arrays and objects accepted.
    public static let maximumDepth = 512

    /// Parses a whole document.
    public static func parse(_ data: Data) throws -> Any { try parse([UInt8](data)) }

    /// Why `data` is not a JSON document of the wanted kind (`[String: Any]`, `[Any]`, …), for error messages:
    /// the parser's own reason with its byte offset ("invalid JSON at byte 12: expected a value"), or "the
    /// document is an array, not <what>"; nil when it is one.
    public static func whyNot<T>(_ data: Data, _ type: T.Type, what: String) -> String? {
        whyNot([UInt8](data), type, what: what)
    }

    /// `whyNot` for bytes.
    public static func whyNot<T>(_ bytes: [UInt8], _ type: T.Type, what: String) -> String? {
        let value: Any
        do { value = try parse(bytes) } catch { return "\(error)" }
        if value is T { return nil }
        let kind: String
        switch value {
        case is [String: Any]: kind = "an object"
        case is [Any]: kind = "an array"
        case is String: kind = "a string"
        case is JSONNull: kind = "null"
        case is Bool: kind = "a boolean"
        default: kind = "a number"
        }
        return "the document is \(kind), not \(what)"
    }

    /// Parses a whole document.
    public static func parse(_ bytes: [UInt8]) throws -> Any {
        try bytes.withUnsafeBufferPointer { buf in
            var p = Parser(b: buf, i: 0)
            // A UTF-8 byte order mark is tolerated, as Python's json.load with utf-8-sig would.
            if buf.count >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF { p.i = 3 }
            let v = try p.value(depth: 0)
            p.skipSpace()
            guard p.i == buf.count else { throw p.fail("unexpected text after the document") }
            return v
        }
    }

    /// Writes a tree of [String: Any], [Any], String, Int, Double, Float, Bool and JSONNull as JSON text
    /// (object keys sorted). Anything else, or a non-finite number, is an error.
    public static func serialize(_ value: Any) throws -> Data {
        var out = ""
        try write(value, into: &out)
        return Data(out.utf8)
    }

    static func write(_ v: Any, into out: inout String) throws {
        switch v {
        case let d as [String: Any]:
            out += "{"
            for (n, k) in d.keys.sorted().enumerated() {
                if n > 0 { out += "," }
                writeString(k, into: &out); out += ":"
                try write(d[k]!, into: &out)
            }
            out += "}"
        case let a as [Any]:
            out += "["
            for (n, e) in a.enumerated() { if n > 0 { out += "," }; try write(e, into: &out) }
            out += "]"
        case let s as String: writeString(s, into: &out)
        case let b as Bool: out += b ? "true" : "false"
        case let i as Int: out += String(i)
        case let d as Double:
            guard d.isFinite else { throw JSONError(offset: out.utf8.count, reason: "cannot write \(d)") }
            out += "\(d)"
        case let f as Float:
            guard f.isFinite else { throw JSONError(offset: out.utf8.count, reason: "cannot write \(f)") }
            out += "\(f)"
        case is JSONNull: out += "null"
        default: throw JSONError(offset: out.utf8.count, reason: "cannot write a value of type \(type(of: v))")
        }
    }

    /// `s` as a JSON string literal: quotes, backslashes and control characters escaped.
    public static func quoted(_ s: String) -> String {
        var out = ""
        writeString(s, into: &out)
        return out
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    /// A number as Double, whether it was written as an integer or not.
    public static func double(_ v: Any?) -> Double? {
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        return nil
    }

    /// A number as Int when it is integral and in range (1.0 counts, 1.5 does not).
    public static func int(_ v: Any?) -> Int? {
        if let i = v as? Int { return i }
        if let d = v as? Double, d == d.rounded(), abs(d) < 9.0e15 { return Int(d) }
        return nil
    }
}

private struct Parser {
    let b: UnsafeBufferPointer<UInt8>
    var i: Int

    func fail(_ reason: String) -> JSONError { JSONError(offset: i, reason: reason) }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws -> Any {
        skipSpace()
        guard i < b.count else { throw fail("expected a value, found the end") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "t"): try literal("true"); return true
        case UInt8(ascii: "f"): try literal("false"); return false
        case UInt8(ascii: "n"): try literal("null"); return JSONNull()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("expected a value")
        }
    }

    mutating func literal(_ word: String) throws {
        for c in word.utf8 {
            guard i < b.count, b[i] == c else { throw fail("expected \(word)") }
            i += 1
        }
    }

    mutating func object(depth: Int) throws -> [String: Any] {
        guard depth <= JSON.maximumDepth else { throw fail("nested deeper than \(JSON.maximumDepth) levels") }
        i += 1
        var out = [String: Any]()
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return out }
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
            let key = try string()
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
            i += 1
            out[key] = try value(depth: depth) // a repeated key keeps the last value, as Python's json does
            skipSpace()
            guard i < b.count else { throw fail("unterminated object") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; return out }
            throw fail("expected ',' or '}' in an object")
        }
    }

    mutating func array(depth: Int) throws -> [Any] {
        guard depth <= JSON.maximumDepth else { throw fail("nested deeper than \(JSON.maximumDepth) levels") }
        i += 1
        var out = [Any]()
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return out }
        while true {
            out.append(try value(depth: depth))
            skipSpace()
            guard i < b.count else { throw fail("unterminated array") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "]") { i += 1; return out }
            throw fail("expected ',' or ']' in an array")
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("bad hex digit in a \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    mutating func string() throws -> String {
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\") {
            guard b[i] >= 0x20 else { throw fail("control character in a string") }
            i += 1
        }
        guard i < b.count else { throw fail("unterminated string") }
        var bytes = [UInt8](b[start..<i])
        while true {
            guard i < b.count else { throw fail("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in a string") }
            if c != UInt8(ascii: "\\") { bytes.append(c); i += 1; continue }
            i += 1
            guard i < b.count else { throw fail("unterminated escape") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var u = try hex4()
                if (0xD800..<0xDC00).contains(u), i + 6 <= b.count, b[i] == UInt8(ascii: "\\"),
                    b[i + 1] == UInt8(ascii: "u")
                {
                    let save = i
                    i += 2
                    let lo = try hex4()
                    if (0xDC00..<0xE000).contains(lo) {
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        i = save
                    }
                }
                let scalar = Unicode.Scalar(u) ?? "\u{FFFD}"
                bytes.append(contentsOf: Array(String(scalar).utf8))
            default: throw fail("unknown escape \\\(Character(Unicode.Scalar(e)))")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func number() throws -> Any {
        let start = i
        if b[i] == UInt8(ascii: "-") { i += 1 }
        var integral = true
        func digits() -> Int { let s = i; while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }; return i - s }
        let first = i
        guard digits() > 0 else { throw fail("expected digits") }
        if b[first] == UInt8(ascii: "0") && i - first > 1 { throw fail("a number may not start with 0") }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            integral = false; i += 1
            guard digits() > 0 else { throw fail("expected digits after '.'") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            integral = false; i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("expected digits in an exponent") }
        }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        if integral, let n = Int(text) { return n }
        guard let d = Double(text) else { throw fail("unreadable number \(text)") }
        return d
    }
}
