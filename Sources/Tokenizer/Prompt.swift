// The Eagle 2.5 prompt (docs/spec.md §5.3, 5.4, 6): ChatML text with image and video placeholders expanded into
// `<img>` + `<IMG_CONTEXT>`×n + `</img>`, built with plain string code (no template engine). It decides
// text only; counting tiles (Tiler) and choosing frames (Video) happen elsewhere and arrive as numbers.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif

/// One picture or one video in the user's turn, in prompt order.
public enum PromptMedia: Sendable, Equatable {
    /// An image whose tiles give `contextTokens` = tiles · tokens per tile (256 for Eagle2.5-8B).
    case image(contextTokens: Int)
    /// A video: `tokensPerFrame` context tokens for each frame (256 at one tile a frame), the frame
    /// timestamps in seconds (nil: the wording without times) and the sampling rate (nil: no rate).
    case video(frames: Int, tokensPerFrame: Int, timestamps: [Double]?, fps: Double?)
}

/// A ChatML message.
public struct ChatMessage: Sendable, Equatable {
    public let role: String
    public let content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// The Eagle 2.5 chat prompt.
public enum EaglePrompt {
    public static let defaultSystem = "You are a helpful assistant."
    public static let imageStart = "<img>", imageEnd = "</img>", imageContext = "<IMG_CONTEXT>"
    public static let imStart = "<|im_start|>", imEnd = "<|im_end|>"

    /// `<img>` + `<IMG_CONTEXT>`×n + `</img>`.
    public static func imageBlock(_ n: Int) -> String {
        imageStart + String(repeating: imageContext, count: max(0, n)) + imageEnd
    }

    /// "first" … "tenth", then "11th", "12th", … (the reference stops at "tenth"; beyond it is Eaglet's choice).
    public static func ordinal(_ k: Int) -> String {
        let words = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
        if k >= 1 && k <= words.count { return words[k - 1] }
        let suffix =
            (k % 100 >= 11 && k % 100 <= 13)
            ? "th" : ["th", "st", "nd", "rd", "th", "th", "th", "th", "th", "th"][abs(k % 10)]
        return "\(k)\(suffix)"
    }

    /// The user content for `media` followed by `text`. Image K (counting images only, from `firstImage`, 1 unless
    /// earlier messages of the conversation held images: the HF processor numbers them across it) becomes
    /// `<image K><img>…</img>\n`; video K becomes "The {K-th} video sampled with {fps:.2f} fps: " and per
    /// frame i (from 1) "Frame {i} sample at {t:.2f}s: <img>…</img>" with no separators ("Frame {i}: "
    /// without timestamps, "The {K-th} video: " without fps), as the HF processor writes it (docs/spec.md §6).
    public static func userContent(media: [PromptMedia], text: String, firstImage: Int = 1) -> String {
        var s = "", images = firstImage - 1, videos = 0
        for m in media {
            switch m {
            case let .image(n):
                images += 1
                s += "<image \(images)>" + imageBlock(n) + "\n"
            case let .video(frames, perFrame, timestamps, fps):
                videos += 1
                s += "The \(ordinal(videos)) video"
                s += fps.map { " sampled with " + cFormat("%.2f", $0) + " fps: " } ?? ": "
                for i in 0..<frames {
                    if let ts = timestamps, i < ts.count {
                        s += "Frame \(i + 1) sample at " + cFormat("%.2f", ts[i]) + "s: "
                    } else {
                        s += "Frame \(i + 1): "
                    }
                    s += imageBlock(perFrame)
                }
            }
        }
        return s + text
    }

    /// ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, a system message first (the
    /// default one when `messages` does not start with one), then `<|im_start|>assistant\n`.
    public static func chatML(_ messages: [ChatMessage], system: String? = nil, addGenerationPrompt: Bool = true)
        -> String
    {
        var all = messages
        if all.first?.role != "system" {
            all.insert(ChatMessage(role: "system", content: system ?? defaultSystem), at: 0)
        }
        var s = ""
        for m in all { s += imStart + m.role + "\n" + m.content + imEnd + "\n" }
        if addGenerationPrompt { s += imStart + "assistant\n" }
        return s
    }

    /// The whole prompt for one question about `media`:
    /// `<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{media…}{question}<|im_end|>\n<|im_start|>assistant\n`.
    public static func build(question: String, media: [PromptMedia] = [], system: String? = nil) -> String {
        chatML([ChatMessage(role: "user", content: userContent(media: media, text: question))], system: system)
    }
}
