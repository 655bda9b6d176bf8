// The streaming decoder against the full decode, the Eagle prompt against the text spelled out from
// the spec in Fixtures/generate/tokenizer_goldens.py (and its ids against HF), and the typed errors.
import Foundation
import Testing
import Tokenizer
import _TestSupport

@Suite struct StreamingDecoderMatchesFullDecode {
    let tok: Tokenizer
    init() throws { tok = try Tokenizer.load("\(tinyDir)/tokenizer.json") }

    @Test func concatenatedPiecesEqualFullDecodeOnCorpus() throws {
        for c in try goldenCases("tokenizer-tiny") {
            var s = StreamingDecoder(tokenizer: tok)
            var out = ""
            for id in c.ids {
                let piece = try s.push(id)
                // Scalars, not Characters: U+FFFD followed by a combining mark is one Character.
                if !c.decoded.unicodeScalars.contains("\u{FFFD}") {
                    #expect(!piece.unicodeScalars.contains("\u{FFFD}"), "\(c.name)")
                }
                out += piece
            }
            out += s.finish()
            #expect(Array(out.unicodeScalars) == Array(c.decoded.unicodeScalars), "\(c.name)")
        }
    }

    @Test func byteByByteEmojiIsHeldUntilComplete() throws {
        // One id per byte of "é🦅": the stream must emit nothing until a character is whole.
        let ids = "é🦅".utf8.map { tok.id(of: String(ByteLevel.scalar[Int($0)]))! }
        var s = StreamingDecoder(tokenizer: tok)
        let pieces = try ids.map { try s.push($0) }
        #expect(pieces == ["", "é", "", "", "", "🦅"])
        #expect(s.finish() == "")
    }

    @Test func cutStreamEndsWithReplacement() throws {
        let ids = Array("🦅".utf8.prefix(2)).map { tok.id(of: String(ByteLevel.scalar[Int($0)]))! }
        var s = StreamingDecoder(tokenizer: tok)
        #expect(try ids.map { try s.push($0) } == ["", ""])
        #expect(s.finish() == (try tok.decode(ids)))
        #expect(try tok.decode(ids) == "\u{FFFD}")
    }
}

@Suite struct EaglePromptMatchesSpec {
    func golden(_ name: String) throws -> GoldenCase {
        try #require(try goldenCases("tokenizer-tiny").first { $0.name == name })
    }

    @Test func oneImagePromptIsExact() throws {
        let p = EaglePrompt.build(question: "What is in the picture?", media: [.image(contextTokens: 5)])
        #expect(p == (try golden("prompt-one-image")).text)
        #expect(
            p.hasPrefix(
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image 1><img><IMG_CONTEXT>"
            ))
        let tok = try Tokenizer.load("\(tinyDir)/tokenizer.json")
        #expect(tok.encode(p) == (try golden("prompt-one-image")).ids)
    }

    @Test func multipleImagesNoImageAndCustomSystem() throws {
        #expect(
            EaglePrompt.build(question: "Compare them.", media: [.image(contextTokens: 3), .image(contextTokens: 7)])
                == (try golden("prompt-two-images")).text)
        #expect(EaglePrompt.build(question: "Tell me a story.") == (try golden("prompt-no-image")).text)
        #expect(
            EaglePrompt.build(question: "Describe.", media: [.image(contextTokens: 2)], system: "Answer in one word.")
                == (try golden("prompt-system")).text)
    }

    @Test func videoFramesUseTheProcessorWording() throws {
        let v = PromptMedia.video(frames: 3, tokensPerFrame: 3, timestamps: [0, 0.5, 1.25], fps: 2)
        #expect(EaglePrompt.build(question: "What happens?", media: [v]) == (try golden("prompt-video")).text)
        let plain = PromptMedia.video(frames: 2, tokensPerFrame: 2, timestamps: nil, fps: nil)
        #expect(EaglePrompt.build(question: "Summarise.", media: [plain]) == (try golden("prompt-video-no-times")).text)
        let mixed: [PromptMedia] = [
            .image(contextTokens: 2), .video(frames: 2, tokensPerFrame: 2, timestamps: [0, 1], fps: 1),
            .video(frames: 1, tokensPerFrame: 1, timestamps: nil, fps: nil)
        ]
        #expect(EaglePrompt.build(question: "Same bird?", media: mixed) == (try golden("prompt-image-and-video")).text)
        #expect(
            EaglePrompt.ordinal(2) == "second" && EaglePrompt.ordinal(10) == "tenth"
                && EaglePrompt.ordinal(12) == "12th")
    }
}

extension EaglePromptMatchesSpec {
    @Test func multiTurnChatML() throws {
        let messages = [
            ChatMessage(
                role: "user", content: EaglePrompt.userContent(media: [.image(contextTokens: 2)], text: "What is it?")),
            ChatMessage(role: "assistant", content: "An eagle."),
            ChatMessage(role: "user", content: "How many?")
        ]
        let g = try golden("prompt-multi-turn")
        #expect(EaglePrompt.chatML(messages) == g.text)
        let tok = try Tokenizer.load("\(tinyDir)/tokenizer.json")
        #expect(tok.encode(EaglePrompt.chatML(messages)) == g.ids)
    }

    /// Images are numbered across the conversation (the HF processor's running count, docs/spec.md §5.4): the second
    /// user message's first image is `<image 2>`. Spelled out by hand from the spec.
    @Test func imagesAreNumberedAcrossTurns() {
        let second = EaglePrompt.userContent(media: [.image(contextTokens: 1)], text: "And this one?", firstImage: 2)
        #expect(second == "<image 2><img><IMG_CONTEXT></img>\nAnd this one?")
        #expect(EaglePrompt.userContent(media: [], text: "Hi", firstImage: 5) == "Hi")
    }
}

@Suite struct TokenizerRejectsBadInput {
    func load(_ json: String) throws -> Tokenizer { try Tokenizer(tokenizerJSONData: Data(json.utf8), path: "t.json") }
    let pre =
        #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\#(Qwen2Split.pattern.replacingOccurrences(of: "\\", with: "\\\\"))"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]}"#

    @Test func malformedJSON() {
        #expect(
            throws: TokenizerError.malformedJSON(
                path: "t.json", reason: "not valid JSON (invalid JSON at byte 10: expected a value, found the end)")
        ) {
            try load("{\"model\": ")
        }
        #expect(throws: TokenizerError.malformedJSON(path: "t.json", reason: "no \"model\" object")) { try load("{}") }
    }

    @Test func unknownModelType() {
        #expect(throws: TokenizerError.unknownModelType(path: "t.json", found: "WordPiece")) {
            try load(#"{"model":{"type":"WordPiece","vocab":{}}}"#)
        }
    }

    @Test func mergeNamingUnknownToken() throws {
        let base =
            #"{"normalizer":{"type":"NFC"},"pre_tokenizer":\#(pre),"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":"#
        _ = try load(base + #"[["a","b"]]}}"#)
        #expect(throws: TokenizerError.mergeUnknownToken(path: "t.json", line: 2, token: "c")) {
            try load(base + #"["a b","a c"]}}"#)
        }
        #expect(throws: TokenizerError.mergeUnknownToken(path: "t.json", line: 1, token: "ba")) {
            try load(base + #"[["b","a"]]}}"#)
        }
        #expect(throws: TokenizerError.malformedMerge(path: "t.json", line: 1, text: "abc")) {
            try load(base + #"["abc"]}}"#)
        }
    }

    @Test func otherPreTokenizerIsUnsupported() {
        #expect(throws: (any Error).self) {
            try load(#"{"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"BPE","vocab":{},"merges":[]}}"#)
        }
    }

    @Test func unknownIDInDecode() throws {
        let tok = try Tokenizer.load("\(tinyDir)/tokenizer.json")
        #expect(throws: TokenizerError.unknownID(999_999)) { try tok.decode([1, 999_999]) }
        #expect(throws: TokenizerError.notFound(path: "/nonexistent/tok")) { try Tokenizer.load("/nonexistent/tok") }
    }
}
