// Helpers of the robustness regression suite: scratch files made byte by byte, a CRC-32 for PNG chunks,
// and the error a body threw. Nothing here is compared with anything.
import Foundation
import _TestSupport

/// A fresh scratch folder for this test process.
let scratchDirectory: String = {
    let d = NSTemporaryDirectory() + "eaglet-robustness-\(getpid())"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}()

/// Writes `bytes` to `scratchDirectory/name` and returns the path.
@discardableResult
func scratch(_ name: String, _ bytes: [UInt8]) -> String {
    let path = "\(scratchDirectory)/\(name)"
    try? FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

/// A sparse file of `size` bytes (nothing is written): for limits checked on the size before reading.
func sparse(_ name: String, size: UInt64) throws -> String {
    let path = scratch(name, [])
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try h.truncate(atOffset: size)
    try h.close()
    return path
}

/// A safetensors file: the 8-byte length (or `length`), the header `json`, then `data`.
func safetensors(_ name: String, _ json: String, data: [UInt8] = [], length: UInt64? = nil) -> String {
    let h = Array(json.utf8)
    return scratch(name, withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { Array($0) } + h + data)
}

/// The error `body` threw, or nil.
func thrown(_ body: () throws -> Void) -> (any Error)? {
    do { try body(); return nil } catch { return error }
}

/// CRC-32 (ISO-HDLC, as PNG chunks use), bit by bit.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
    }
    return ~c
}

func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// A PNG chunk: length, type, data, CRC over type + data.
func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let t = Array(type.utf8)
    return be32(UInt32(data.count)) + t + data + be32(crc32(t + data))
}

/// A well-formed PNG signature + IHDR (8-bit RGB) claiming `width`×`height`, with a tiny IDAT and IEND:
/// every CRC is right, only the size is a lie.
func pngClaiming(width: UInt32, height: UInt32) -> [UInt8] {
    let ihdr = be32(width) + be32(height) + [8, 2, 0, 0, 0]
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + pngChunk("IHDR", ihdr)
        + pngChunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + pngChunk("IEND", [])
}

/// The tiny random Eagle checkpoint shipped in Fixtures.
let tinyRandom = "\(repositoryRoot)/Fixtures/tiny-random"

/// A copy of the tiny random checkpoint in the scratch folder (config.json, model.safetensors,
/// tokenizer.json, generation_config.json), to be damaged by a test.
func tinyRandomCopy(_ name: String) throws -> String {
    let dir = "\(scratchDirectory)/\(name)"
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for f in ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "example.png"] {
        try FileManager.default.copyItem(atPath: "\(tinyRandom)/\(f)", toPath: "\(dir)/\(f)")
    }
    return dir
}

/// The tiny random config.json as a JSON object, edited by `edit`, as bytes.
func tinyConfig(_ edit: (inout [String: Any], inout [String: Any], inout [String: Any]) -> Void) throws -> Data {
    let data = try Data(contentsOf: URL(fileURLWithPath: "\(tinyRandom)/config.json"))
    var top = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    var vision = top["vision_config"] as! [String: Any], text = top["text_config"] as! [String: Any]
    edit(&top, &vision, &text)
    if top["vision_config"] != nil { top["vision_config"] = vision }
    if top["text_config"] != nil { top["text_config"] = text }
    return try JSONSerialization.data(withJSONObject: top)
}
