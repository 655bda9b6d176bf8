// SafeTensorsStreamWriter: header first, tensor bytes appended in pieces; the file is what the reader accepts,
// with the values given, and it appears under its name only when complete.
import Foundation
import Testing
import SafeTensors
import _TestSupport

@Suite struct SafeTensorsStreamWriterTests {
    @Test func piecesWrittenInOrderReadBack() throws {
        let path = NSTemporaryDirectory() + "eaglet-stream-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let a = (0..<15).map { Float($0) * 0.25 - 1 }
        let b: [Float] = [1, -2, 3.5, 1.00390625, 65504, 1e-3] // 1 + 2⁻⁸ is a tie: even rounding gives 1.0
        let entries = [
            SafeTensorsEntry("a", .f32, [3, 5]), SafeTensorsEntry("empty", .f32, [0, 4]),
            SafeTensorsEntry("b", .bf16, [2, 3])
        ]
        let w = try SafeTensorsStreamWriter(path: path, entries: entries, metadata: ["format": "pt"])
        try w.append(floats: Array(a[0..<4]))
        try w.append(floats: Array(a[4...]))
        #expect(w.nextTensor?.name == "b") // the empty tensor needs no bytes
        try w.append(floats: Array(b[0..<1]))
        try w.append(floats: Array(b[1...]))
        #expect(w.nextTensor == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        try w.finish()

        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata == ["format": "pt"])
        #expect(f.tensors.map(\.name) == ["a", "empty", "b"])
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(size == w.fileSize)
        #expect(try f.tensor("a").storage == a)
        #expect(try f.tensor("empty").shape == [0, 4])
        #expect(try f.tensor("b").storage == [1, -2, 3.5, 1, 65536, 0.00099945068359375])
        // Byte for byte what the in-memory writer produces for the same tensors.
        var mem = SafeTensorsWriter()
        mem.metadata = ["format": "pt"]
        mem.add("a", Tensor(shape: [3, 5], storage: a))
        mem.add("empty", Tensor(shape: [0, 4], storage: []))
        mem.add("b", Tensor(shape: [2, 3], storage: b), as: .bf16)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == mem.serialized())
    }
}
