// libFuzzer target: arbitrary bytes (as text; invalid UTF-8 becomes U+FFFD) encoded with one fixed
// tokenizer, Fixtures/tokenizer-tiny/tokenizer.json (1322 tokens, the six Eagle added tokens, NFC), or
// $EAGLET_FUZZ_TOKENIZER. Properties: no trap; every id lies in the vocabulary and decodes; the fast
// path equals the naive one (NFC by Foundation, NSRegularExpression split, string merges).
import Foundation
import Tokenizer

let tokenizer: Tokenizer = {
    let path = ProcessInfo.processInfo.environment["EAGLET_FUZZ_TOKENIZER"] ?? "Fixtures/tokenizer-tiny/tokenizer.json"
    do { return try Tokenizer(tokenizerJSON: path) } catch {
        fatalError("fuzz-tokenizer-encode: cannot load \(path) (run from the repository root): \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let ids = tokenizer.encode(bytes: bytes)
    precondition(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "an id outside the vocabulary")
    do { _ = try tokenizer.decode(ids) } catch { fatalError("encode gave ids that do not decode: \(error)") }
    let naive = tokenizer.encodeNaive(String(decoding: bytes, as: UTF8.self))
    precondition(naive == ids, "fast \(ids) != naive \(naive)")
    return 0
}
