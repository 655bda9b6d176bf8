// Every lie a hostile safetensors file or index can tell, each answered by its own typed error
// (never a trap). Files are built byte by byte here.
import Foundation
import Testing
import SafeTensors

/// Writes `bytes` to a fresh temporary file and returns its path.
private func temp(_ bytes: [UInt8], _ tag: String) -> String {
    let path = NSTemporaryDirectory() + "eaglet-bad-\(tag)-\(getpid()).safetensors"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

/// A safetensors file with header `json`, `data` bytes, and optionally a lying header length.
private func file(_ json: String, data: [UInt8] = [], length: UInt64? = nil, tag: String) -> String {
    let h = Array(json.utf8)
    var bytes = withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { Array($0) }
    bytes += h + data
    return temp(bytes, tag)
}

@Suite struct SafeTensorsRejectsMalformedFiles {
    @Test func emptyAndShortFilesAreTruncated() {
        let p0 = temp([], "empty"), p5 = temp([1, 2, 3, 4, 5], "short")
        #expect(throws: SafeTensorsError.truncated(file: p0, size: 0)) { try SafeTensorsFile(path: p0) }
        #expect(throws: SafeTensorsError.truncated(file: p5, size: 5)) { try SafeTensorsFile(path: p5) }
    }

    @Test func headerLengthBeyondSaneBound() {
        let p = file("{}", length: 1 << 40, tag: "huge")
        #expect(
            throws: SafeTensorsError.headerTooLarge(file: p, length: 1 << 40, limit: SafeTensorsFile.maxHeaderBytes)
        ) {
            try SafeTensorsFile(path: p)
        }
    }

    @Test func headerLengthBeyondFile() {
        let p = file("{}", length: 4096, tag: "beyond")
        #expect(throws: SafeTensorsError.headerBeyondFile(file: p, length: 4096, fileSize: 10)) {
            try SafeTensorsFile(path: p)
        }
    }

    @Test func headerThatIsNotJSONOrNotUTF8() {
        let p1 = file("{\"a\": ", tag: "json")
        #expect(throws: SafeTensorsError.headerNotUTF8JSON(file: p1, reason: "malformed JSON")) {
            try SafeTensorsFile(path: p1)
        }
        var bytes = withUnsafeBytes(of: UInt64(4).littleEndian) { Array($0) }
        bytes += [0x7B, 0xFF, 0xFE, 0x7D]
        let p2 = temp(bytes, "utf8")
        #expect(throws: SafeTensorsError.headerNotUTF8JSON(file: p2, reason: "invalid UTF-8")) {
            try SafeTensorsFile(path: p2)
        }
    }

    @Test func headerThatIsNotAnObject() {
        let p = file("[1, 2, 3]", tag: "array")
        #expect(throws: SafeTensorsError.headerNotObject(file: p)) { try SafeTensorsFile(path: p) }
    }

    @Test func entriesWithWrongFields() {
        let p1 = file(#"{"t": 3}"#, tag: "entry")
        #expect(throws: SafeTensorsError.badEntry(file: p1, tensor: "t", reason: "entry is not an object")) {
            try SafeTensorsFile(path: p1)
        }
        let p2 = file(
            #"{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0], tag: "neg")
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: p2) }
        let p3 = file(
            #"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0.5, 4]}}"#, data: [0, 0, 0, 0], tag: "frac")
        #expect(throws: SafeTensorsError.badEntry(file: p3, tensor: "t", reason: "'data_offsets' must be two integers"))
        { try SafeTensorsFile(path: p3) }
        let p4 = file(
            #"{"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0],
            tag: "ovf")
        #expect(
            throws: SafeTensorsError.badEntry(
                file: p4, tensor: "t", reason: "shape [4294967296, 4294967296] has too many elements")
        ) {
            try SafeTensorsFile(path: p4)
        }
        let p5 = file(#"{"__metadata__": {"a": 1}}"#, tag: "meta")
        #expect(
            throws: SafeTensorsError.badEntry(
                file: p5, tensor: "__metadata__", reason: "__metadata__['a'] is not a string")
        ) {
            try SafeTensorsFile(path: p5)
        }
    }

    @Test func unknownDType() {
        let p = file(#"{"t": {"dtype": "F8_E9M9", "shape": [1], "data_offsets": [0, 1]}}"#, data: [0], tag: "dtype")
        #expect(throws: SafeTensorsError.unknownDType(file: p, tensor: "t", dtype: "F8_E9M9")) {
            try SafeTensorsFile(path: p)
        }
    }

    @Test func offsetsOutOfRange() {
        let p1 = file(#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, data: [0, 0, 0, 0], tag: "oob")
        #expect(throws: SafeTensorsError.offsetsOutOfRange(file: p1, tensor: "t", begin: 0, end: 8, dataSize: 4)) {
            try SafeTensorsFile(path: p1)
        }
        let p2 = file(#"{"t": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}"#, data: [0, 0, 0, 0], tag: "rev")
        #expect(throws: SafeTensorsError.offsetsOutOfRange(file: p2, tensor: "t", begin: 4, end: 0, dataSize: 4)) {
            try SafeTensorsFile(path: p2)
        }
    }

    @Test func shapeTimesDTypeDisagreesWithByteLength() {
        let p = file(
            #"{"t": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}}"#, data: Array(repeating: 0, count: 8),
            tag: "size")
        #expect(
            throws: SafeTensorsError.sizeMismatch(
                file: p, tensor: "t", shape: [3], dtype: "BF16", expectedBytes: 6, actualBytes: 8)
        ) {
            try SafeTensorsFile(path: p)
        }
    }

    @Test func overlappingTensors() {
        let json =
            #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#
        let p = file(json, data: Array(repeating: 0, count: 12), tag: "overlap")
        #expect(throws: SafeTensorsError.overlap(file: p, tensor: "b", other: "a")) { try SafeTensorsFile(path: p) }
    }

    @Test func missingTensorAndWrongDType() throws {
        let p = file(
            #"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 128, 63], tag: "ok")
        let f = try SafeTensorsFile(path: p)
        #expect(try f.tensor("t").storage == [1])
        #expect(throws: SafeTensorsError.missingTensor(file: p, tensor: "u")) { try f.tensor("u") }
        #expect(throws: SafeTensorsError.wrongDType(file: p, tensor: "t", dtype: "F32", expected: "an integer dtype")) {
            try f.integers("t")
        }
    }

    @Test func notARegularFile() {
        #expect(
            throws: SafeTensorsError.cannotOpen(file: "/nonexistent/x.safetensors", reason: "No such file or directory")
        ) {
            try SafeTensorsFile(path: "/nonexistent/x.safetensors")
        }
        #expect(throws: SafeTensorsError.cannotOpen(file: "/tmp", reason: "not a regular file")) {
            try SafeTensorsFile(path: "/tmp")
        }
    }
}

@Suite struct CheckpointRejectsBadIndexes {
    private func folder(index: String, tag: String) -> String {
        let dir = NSTemporaryDirectory() + "eaglet-index-\(tag)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir + "/model.safetensors.index.json", contents: Data(index.utf8))
        return dir
    }

    @Test func shardPathsMayNotLeaveTheFolder() {
        let d = folder(index: #"{"weight_map": {"w": "../../etc/passwd"}}"#, tag: "escape")
        #expect(
            throws: SafeTensorsError.badIndex(
                file: d + "/model.safetensors.index.json",
                reason: "weight_map['w'] = '../../etc/passwd' is not a plain file name in the checkpoint folder")
        ) {
            try Checkpoint(path: d)
        }
    }

    @Test func indexWithoutWeightMap() {
        let d = folder(index: #"{"metadata": {}}"#, tag: "nomap")
        #expect(
            throws: SafeTensorsError.badIndex(
                file: d + "/model.safetensors.index.json", reason: "missing object 'weight_map'")
        ) {
            try Checkpoint(path: d)
        }
    }

    @Test func indexNamingATensorTheShardLacks() throws {
        let d = folder(index: #"{"weight_map": {"w": "a.safetensors", "ghost": "a.safetensors"}}"#, tag: "ghost")
        var w = SafeTensorsWriter()
        w.add("w", Tensor(shape: [1], storage: [1]))
        try w.write(to: d + "/a.safetensors")
        #expect(throws: SafeTensorsError.missingTensor(file: d + "/a.safetensors", tensor: "ghost")) {
            try Checkpoint(path: d)
        }
    }

    @Test func folderWithNoCheckpoint() {
        let d = folder(index: "", tag: "none")
        try? FileManager.default.removeItem(atPath: d + "/model.safetensors.index.json")
        #expect(
            throws: SafeTensorsError.cannotOpen(
                file: d, reason: "neither model.safetensors.index.json nor model.safetensors is in this folder")
        ) {
            try Checkpoint(path: d)
        }
    }
}
