// Stop strings (`"stop": ["\n\n", "Question:"]`): the answer ends where one first appears, without it. Text
// arrives a token at a time and a stop string may span tokens, so the end of the text that could still grow into
// one is held back until the next piece decides it: streamed pieces, concatenated, equal the non-streamed answer.
// Without stop strings every piece passes at once.
import Foundation

/// Cuts a stream of text pieces at the first stop string.
public struct StopStrings: Sendable {
    public let stops: [String]
    /// Text received but not yet released: at most the longest proper prefix of a stop string.
    public private(set) var held = ""

    public init(_ stops: [String]) { self.stops = stops }

    /// Adds `piece`; returns the text that can be sent now and whether a stop string ended the answer (then `text`
    /// is what came before it, and nothing more should be pushed).
    public mutating func push(_ piece: String) -> (text: String, stopped: Bool) {
        if stops.isEmpty { return (piece, false) }
        held += piece
        let hits = stops.compactMap { held.range(of: $0)?.lowerBound }
        if let cut = hits.min() {
            defer { held = "" }
            return (String(held[..<cut]), true)
        }
        // Keep the longest tail of `held` that begins some stop string.
        var keep = 0
        for s in stops {
            for k in stride(from: min(s.count - 1, held.count), to: keep, by: -1) where held.hasSuffix(s.prefix(k)) {
                keep = k
                break
            }
        }
        let split = held.index(held.endIndex, offsetBy: -keep)
        defer { held = String(held[split...]) }
        return (String(held[..<split]), false)
    }

    /// Ends the stream: the held-back text, which no stop string completed.
    public mutating func finish() -> String {
        defer { held = "" }
        return held
    }
}
