// libFuzzer target: tokenizer.json bytes loaded with Tokenizer(tokenizerJSONData:), and a tokenizer that
// loads then encodes and decodes a fixed text with every kind of piece (added tokens, CJK, digits,
// spaces, accents to normalise). Property: loading throws only TokenizerError; encoding never traps and
// gives ids that decode.
import Foundation
import Tokenizer

let probe = "<|im_start|>user\nHello, world! 12345 你好 café  e\u{301}\t<IMG_CONTEXT><img></img>  done<|im_end|>\n"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(bytes: data, count: size)
    do {
        let t = try Tokenizer(tokenizerJSONData: bytes, path: "tokenizer.json")
        let ids = t.encode(probe)
        _ = try t.decode(ids)
        precondition(ids.allSatisfy { $0 >= 0 && $0 < t.vocabularySize })
    } catch is TokenizerError {
    } catch {
        fatalError("untyped error: \(error)")
    }
    return 0
}
