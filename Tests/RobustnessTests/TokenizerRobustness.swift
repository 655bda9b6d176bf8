// Bad tokenizer files: no model, merges naming unknown tokens, ids far outside any vocabulary (which once
// sized the id table, or trapped converting to Int32), oversized files; and prompt building on odd input.
import Foundation
import Testing
import Tokenizer

@Suite struct TokenizerRobustness {
    func load(_ json: String) -> TokenizerError? {
        thrown { _ = try Tokenizer(tokenizerJSONData: Data(json.utf8), path: "tokenizer.json") } as? TokenizerError
    }
    let pre =
        #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\#(Qwen2Split.pattern.replacingOccurrences(of: "\\", with: "\\\\"))"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]}"#
    func file(vocab: String, merges: String = "[]", added: String = "[]") -> String {
        #"{"normalizer":{"type":"NFC"},"pre_tokenizer":\#(pre),"added_tokens":\#(added),"model":{"type":"BPE","vocab":\#(vocab),"merges":\#(merges)}}"#
    }

    @Test func wellFormedMinimalFileLoads() throws {
        let t = try Tokenizer(tokenizerJSONData: Data(file(vocab: #"{"a":0,"b":1,"ab":2}"#, merges: #"["a b"]"#).utf8))
        #expect(t.encode("ab") == [2])
    }

    @Test func missingModelOrEmptyFile() {
        #expect(load("{}") == .malformedJSON(path: "tokenizer.json", reason: "no \"model\" object"))
        #expect(
            load("")
                == .malformedJSON(
                    path: "tokenizer.json",
                    reason: "not valid JSON (invalid JSON at byte 0: expected a value, found the end)"))
        #expect(
            load(#"{"model":{"type":"BPE","vocab":[],"merges":[]}}"#)
                == .malformedJSON(path: "tokenizer.json", reason: "model.vocab is not an object of token → id"))
    }

    @Test func mergesReferencingUnknownTokens() {
        #expect(
            load(file(vocab: #"{"a":0,"b":1}"#, merges: #"["a b"]"#))
                == .mergeUnknownToken(path: "tokenizer.json", line: 1, token: "ab"))
        #expect(
            load(file(vocab: #"{"a":0,"ab":2}"#, merges: #"["a z"]"#))
                == .mergeUnknownToken(path: "tokenizer.json", line: 1, token: "z"))
        #expect(
            load(file(vocab: #"{"a":0}"#, merges: #"["a"]"#))
                == .malformedMerge(path: "tokenizer.json", line: 1, text: "a"))
    }

    @Test func idsOutsideTheBoundAreRefused() {
        let limit = Tokenizer.maxTokenID
        // Once: a 2⁴⁰-entry id table (or a trap converting a byte token's id to Int32).
        #expect(
            load(file(vocab: #"{"a":\#(1 << 40)}"#))
                == .idOutOfRange(path: "tokenizer.json", field: "model.vocab[\"a\"]", id: 1 << 40, limit: limit))
        #expect(
            load(file(vocab: #"{"a":\#(limit)}"#))
                == .idOutOfRange(path: "tokenizer.json", field: "model.vocab[\"a\"]", id: limit, limit: limit))
        // Once: a negative added-token id indexed the table at -5.
        #expect(
            load(file(vocab: #"{"a":0}"#, added: #"[{"id":-5,"content":"<x>","special":true}]"#))
                == .idOutOfRange(path: "tokenizer.json", field: "added token \"<x>\"", id: -5, limit: limit))
        #expect(
            load(file(vocab: #"{"a":-1}"#))
                == .malformedJSON(path: "tokenizer.json", reason: "model.vocab[\"a\"] is not a non-negative integer"))
    }

    @Test func oversizedFileIsRefusedBeforeReading() throws {
        let p = try sparse("tok/tokenizer.json", size: UInt64(Tokenizer.maxFileBytes) + 1)
        #expect(
            throws: TokenizerError.fileTooLarge(
                path: p, bytes: Tokenizer.maxFileBytes + 1, limit: Tokenizer.maxFileBytes)
        ) {
            try Tokenizer.load(p)
        }
    }

    @Test func promptOrdinalsOfAnyIntegerDoNotTrap() {
        #expect(EaglePrompt.ordinal(3) == "third")
        #expect(EaglePrompt.ordinal(22) == "22nd")
        #expect(EaglePrompt.ordinal(-3) == "-3rd") // once: an index of -3 into the suffix table
        #expect(EaglePrompt.imageBlock(-4) == "<img></img>")
    }
}
