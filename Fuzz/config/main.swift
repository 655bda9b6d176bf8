// libFuzzer target: config.json bytes through the three decoders a checkpoint's config meets —
// EagleConfig.decode (which runs the SigLIP and Qwen2 decoders inside), Qwen2Config.decode and
// SiglipVisionConfig.decode — and, for a config that decodes, the weight list it implies and its tiler.
// Property: each decoder throws only its own typed error; no trap, overflow or unbounded allocation.
import Eagle
import Foundation
import Qwen2
import SigLIP2
import Tiler

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(bytes: data, count: size)
    do {
        let c = try EagleConfig.decode(bytes, file: "config.json")
        let expected = EagleWeights.expected(c, visionPrefix: "vision_model.")
        precondition(!expected.isEmpty)
        _ = try Tiler(c.tiling)
        _ = c.tokensPerTile
    } catch is EagleError {
    } catch is TilerError {
        fatalError("EagleConfig.decode accepted a tiling the Tiler refuses: \(bytes.count) bytes")
    } catch {
        fatalError("EagleConfig.decode: untyped error \(error)")
    }
    do { _ = try Qwen2Config.decode(bytes, file: "config.json") } catch is Qwen2Error {} catch {
        fatalError("Qwen2Config.decode: untyped error \(error)")
    }
    do {
        let v = try SiglipVisionConfig.decode(configJSON: bytes, file: "config.json")
        _ = v.numPositions; _ = v.headDim
    } catch is VisionConfigError {} catch {
        fatalError("SiglipVisionConfig.decode: untyped error \(error)")
    }
    return 0
}
