// Hand-made bad safetensors files and checkpoints, each answered by its own SafeTensorsError or
// EagleError case (matched case by case, never just "it threw").
import Foundation
import Testing
import Eagle
import SafeTensors
import _TestSupport

@Suite struct SafeTensorsRobustness {
    @Test func emptyAndTruncatedFiles() {
        let empty = scratch("st/empty.safetensors", [])
        let seven = scratch("st/seven.safetensors", [8, 0, 0, 0, 0, 0, 0])
        #expect(throws: SafeTensorsError.truncated(file: empty, size: 0)) { try SafeTensorsFile(path: empty) }
        #expect(throws: SafeTensorsError.truncated(file: seven, size: 7)) { try SafeTensorsFile(path: seven) }
        // A header cut in the middle: the length says 60 bytes, 20 are there.
        let partial = #"{"a":{"dtype":"F32","#
        let cut = safetensors("st/cut.safetensors", partial, length: 60)
        #expect(throws: SafeTensorsError.headerBeyondFile(file: cut, length: 60, fileSize: 8 + partial.utf8.count)) {
            try SafeTensorsFile(path: cut)
        }
    }

    @Test func oversizedHeaderLengthIsRefusedBeforeReading() {
        let p = safetensors("st/huge-header.safetensors", "{}", length: UInt64.max)
        #expect(
            throws: SafeTensorsError.headerTooLarge(file: p, length: UInt64.max, limit: SafeTensorsFile.maxHeaderBytes)
        ) {
            try SafeTensorsFile(path: p)
        }
    }

    @Test func headerThatIsNotJSONOrNotAnObject() {
        let binary = scratch("st/binary.safetensors", [4, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFE, 0x00, 0x81])
        #expect(throws: SafeTensorsError.headerNotUTF8JSON(file: binary, reason: "invalid UTF-8")) {
            try SafeTensorsFile(path: binary)
        }
        let array = safetensors("st/array.safetensors", "[1,2]")
        #expect(throws: SafeTensorsError.headerNotObject(file: array)) { try SafeTensorsFile(path: array) }
    }

    @Test func wrongDTypeString() {
        let p = safetensors(
            "st/dtype.safetensors", #"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        #expect(throws: SafeTensorsError.unknownDType(file: p, tensor: "w", dtype: "F33")) {
            try SafeTensorsFile(path: p)
        }
    }

    @Test func shapeThatLiesAboutTheByteRange() {
        // 2×3 F32 needs 24 bytes; the offsets give 20.
        let p = safetensors(
            "st/shape-lie.safetensors", #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#,
            data: .init(repeating: 0, count: 24))
        #expect(
            throws: SafeTensorsError.sizeMismatch(
                file: p, tensor: "w", shape: [2, 3], dtype: "F32", expectedBytes: 24, actualBytes: 20)
        ) {
            try SafeTensorsFile(path: p)
        }
        // A shape whose element count overflows Int.
        let big = safetensors(
            "st/shape-overflow.safetensors",
            #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,8],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        guard
            case let .badEntry(file, tensor, reason)? = thrown({ _ = try SafeTensorsFile(path: big) })
                as? SafeTensorsError
        else {
            Issue.record("overflowing shape: expected badEntry"); return
        }
        #expect(file == big && tensor == "w" && reason.contains("too many elements"))
        let negative = safetensors(
            "st/shape-negative.safetensors", #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            data: [0, 0, 0, 0])
        guard
            case .badEntry(negative, "w", _)? = thrown({ _ = try SafeTensorsFile(path: negative) }) as? SafeTensorsError
        else {
            Issue.record("negative shape: expected badEntry"); return
        }
    }

    @Test func offsetsPastTheEndReversedOrOverlapping() {
        let past = safetensors(
            "st/past.safetensors", #"{"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#, data: [1, 2, 3, 4])
        #expect(throws: SafeTensorsError.offsetsOutOfRange(file: past, tensor: "w", begin: 0, end: 8, dataSize: 4)) {
            try SafeTensorsFile(path: past)
        }
        let reversed = safetensors(
            "st/reversed.safetensors", #"{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}"#, data: [1, 2, 3, 4])
        #expect(throws: SafeTensorsError.offsetsOutOfRange(file: reversed, tensor: "w", begin: 4, end: 2, dataSize: 4))
        { try SafeTensorsFile(path: reversed) }
        let overlap = safetensors(
            "st/overlap.safetensors",
            #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#,
            data: [1, 2, 3, 4])
        #expect(throws: SafeTensorsError.overlap(file: overlap, tensor: "b", other: "a")) {
            try SafeTensorsFile(path: overlap)
        }
        // Regression: an empty tensor between two overlapping ones once hid the overlap (only neighbours were
        // compared).
        let hidden = safetensors(
            "st/overlap-hidden.safetensors",
            #"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"c":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#,
            data: .init(repeating: 7, count: 8))
        #expect(throws: SafeTensorsError.overlap(file: hidden, tensor: "c", other: "a")) {
            try SafeTensorsFile(path: hidden)
        }
    }

    @Test func shardedIndexThatPointsOutsideItsFolder() throws {
        let dir = "\(scratchDirectory)/st/sharded-escape"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        scratch(
            "st/sharded-escape/model.safetensors.index.json", Array(#"{"weight_map":{"w":"../../etc/passwd"}}"#.utf8))
        guard case let .badIndex(file, reason)? = thrown({ _ = try Checkpoint(path: dir) }) as? SafeTensorsError else {
            Issue.record("index escaping its folder: expected badIndex"); return
        }
        #expect(file.hasSuffix("model.safetensors.index.json") && reason.contains("not a plain file name"))
        scratch("st/sharded-escape/model.safetensors.index.json", Array(#"{"metadata":{}}"#.utf8))
        guard
            case .badIndex(_, "missing object 'weight_map'")? = thrown({ _ = try Checkpoint(path: dir) })
                as? SafeTensorsError
        else {
            Issue.record("index without weight_map: expected badIndex"); return
        }
    }

    @Test func nanAndInfiniteWeightsAreFoundByName() throws {
        let dir = try tinyRandomCopy("st/nan-checkpoint")
        let path = "\(dir)/model.safetensors"
        let file = try SafeTensorsFile(path: path)
        let name = "mlp1.1.weight"
        guard let info = file.info(name), info.dtype == .f32 else {
            Issue.record("\(name) is not F32 in the fixture"); return
        }
        // Overwrite the first element with a NaN, in place.
        let headerLength =
            try FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8).map { d in
                d.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
            } ?? 0
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seek(toOffset: 8 + headerLength + UInt64(info.dataRange.lowerBound))
        h.write(Data(withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Array($0) }))
        try h.close()
        #expect(throws: EagleError.nonFiniteWeights(source: dir, tensors: [name])) {
            _ = try EagleModel.load(directory: dir)
        }
        // The scan can be skipped: the model then loads.
        _ = try EagleModel.load(directory: dir, scanForNonFinite: false)
    }

    @Test func checkpointThatDisagreesWithItsConfig() throws {
        let dir = try tinyRandomCopy("st/wrong-config")
        let config = try tinyConfig { _, _, text in text["num_hidden_layers"] = 3 }
        try config.write(to: URL(fileURLWithPath: "\(dir)/config.json"))
        guard
            case let .mismatch(source, missing, unexpected, misshaped)? = thrown({
                _ = try EagleModel.load(directory: dir)
            }) as? CheckpointError
        else {
            Issue.record("a third layer the checkpoint lacks: expected CheckpointError.mismatch"); return
        }
        #expect(source == dir && unexpected.isEmpty && misshaped.isEmpty)
        #expect(missing.contains("language_model.model.layers.2.mlp.up_proj.weight"))
    }
}
