// Reading files written by the reference implementations (safetensors.torch, huggingface_hub), and
// writing files the reader (and Python) accept.
import Foundation
import Testing
import SafeTensors
import _TestSupport

@Suite struct SafeTensorsReadsReferenceFiles {
    let expected: Fixture
    init() throws { expected = try Fixture.load("safetensors-expected") }

    @Test func readsEveryDTypeWrittenBySafetensorsTorch() throws {
        let f = try SafeTensorsFile(path: "\(repositoryRoot)/Fixtures/safetensors/mixed.safetensors")
        #expect(f.metadata["written_by"] == "safetensors.torch")
        #expect(f.info("layer.weight_bf16")?.dtype == .bf16)
        #expect(f.info("layer.weight_f16")?.dtype == .f16)
        for name in ["layer.weight", "layer.weight_bf16", "layer.weight_f16", "scalar"] {
            assertClose(try f.tensor(name), try expected.tensor(name), .exact, name)
        }
        #expect(try f.tensor("scalar").shape == [])
        #expect(try f.tensor("empty").shape == [0, 3])
        #expect(try f.integers("ids_i64").values == (try expected.file.integers("ids_i64").values))
        #expect(try f.integers("ids_i32").values == (try expected.file.integers("ids_i32").values))
    }

    @Test func readsShardedCheckpointWrittenByHuggingfaceHub() throws {
        let ckpt = try Checkpoint(path: "\(repositoryRoot)/Fixtures/safetensors/sharded")
        #expect(Set(ckpt.weightMap.values).count == 3)
        let names = expected.file.names.filter { $0.hasPrefix("sharded/") }
        #expect(names.count == ckpt.names.count)
        for key in names {
            let name = String(key.dropFirst("sharded/".count))
            assertClose(try ckpt.tensor(name), try expected.tensor(key), .exact, name)
        }
        #expect(ckpt.info("language_model.model.layers.0.mlp.gate_proj.weight")?.dtype == .bf16)
    }

    @Test func writerRoundTripsEveryDType() throws {
        var w = SafeTensorsWriter()
        let t = Tensor.seeded([3, 4], seed: 9, scale: 3)
        w.add("a", t)
        w.add("a_bf16", t, as: .bf16)
        w.add("a_f16", t, as: .f16)
        w.add("ids", integers: [1, -2, 1 << 40], shape: [3])
        w.metadata = ["k": "v \"quoted\""]
        let bytes = w.serialized()
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        #expect(headerLength % 8 == 0, "data section is 8-byte aligned")
        let path = NSTemporaryDirectory() + "eaglet-writer-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata["k"] == "v \"quoted\"")
        assertClose(try f.tensor("a"), t, .exact)
        assertClose(try f.tensor("a_bf16"), t.roundedToBF16(), .exact)
        assertClose(try f.tensor("a_f16"), t.roundedToF16(), .exact)
        #expect(try f.integers("ids").values == [1, -2, 1 << 40])
    }
}
