// The one generation loop: prefill once, then one token at a time until a stop token or the budget, with one
// timing report. The CPU decoder (`Qwen2ForCausalLM.Decoding`), the Eagle pipeline (images spliced into the
// prompt) and the GPU mirror each conform to `TokenDecoder`; the loop and its arithmetic are written here once.
//
// What it is: logits₀ = prefill(); token_i = choose(logits_i, context); logits_{i+1} = step(token_i), stopping
// after a token in `stopTokens` (kept in the output) or after `maxNewTokens` tokens. Time to first token runs
// from `started` (the caller's clock, so work before the prefill such as the vision tower counts) to the first
// chosen token; the decode rate is the tokens after the first over the time after it.
// What it is not: batched, speculative or beam search; the choice of a token is the caller's (argmax or Eagle's
// sampler).
import QwenAttention
import Tensor
import _Essentials

/// A model that can run a prompt once and then extend it one token at a time.
public protocol TokenDecoder {
    /// Runs the whole prompt; returns the logits (V) of its last position.
    mutating func prefill() throws -> [Float]
    /// Appends `token`; returns the logits (V) of its position.
    mutating func step(_ token: Int) throws -> [Float]
}

/// What one generation did.
public struct GenerationReport: Sendable, Equatable {
    /// The new tokens, the stop token included when one was produced.
    public var tokens: [Int]
    public var timeToFirstToken: Double
    public var totalSeconds: Double
    /// Decode rate after the first token (tokens/s; 0 with fewer than two tokens).
    public var tokensPerSecond: Double

    /// The one-line timing report every generating command prints:
    /// `[150 prompt tokens (112 visual), 6 new; first token 18 ms; 5200.0 tokens/s]`.
    public func summary(promptTokens: Int, visualTokens: Int) -> String {
        cFormat(
            "[%d prompt tokens (%d visual), %d new; first token %.0f ms; %.1f tokens/s]",
            promptTokens, visualTokens, tokens.count, timeToFirstToken * 1000, tokensPerSecond)
    }
}

/// Seconds from `start` to now on the monotonic clock.
public func secondsSince(_ start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// Generates up to `maxNewTokens` tokens from `decoder`; `choose(logits, context)` picks each one (context: the
/// tokens chosen so far), `onToken` sees each as it comes. An error thrown by `onToken` ends the generation before
/// the next step and is rethrown (the server's way to stop for a client that went away).
public func generate(
    _ decoder: inout some TokenDecoder, maxNewTokens: Int, stopTokens: Set<Int>,
    started: ContinuousClock.Instant = .now,
    choose: (_ logits: [Float], _ chosen: [Int]) -> Int = { logits, _ in argmax(logits) },
    onToken: (Int) throws -> Void = { _ in }
) throws -> GenerationReport {
    var out = [Int](), ttft = 0.0
    if maxNewTokens > 0 {
        var logits = try decoder.prefill()
        while true {
            let next = choose(logits, out)
            if out.isEmpty { ttft = secondsSince(started) }
            out.append(next)
            try onToken(next)
            if stopTokens.contains(next) || out.count == maxNewTokens { break }
            logits = try decoder.step(next)
        }
    }
    let total = secondsSince(started)
    let rate = out.count > 1 ? Double(out.count - 1) / max(total - ttft, 1e-9) : 0
    return GenerationReport(tokens: out, timeToFirstToken: ttft, totalSeconds: total, tokensPerSecond: rate)
}

/// Index of the largest value (the first one on ties, as torch.argmax).
public func argmax(_ x: [Float]) -> Int {
    var best = 0
    for i in 1..<max(x.count, 1) where x[i] > x[best] { best = i }
    return best
}

extension Qwen2ForCausalLM {
    /// The CPU decoder over input embeddings (T, C) (token embeddings, or Eagle's with images spliced in) and
    /// its KV cache.
    public struct Decoding: TokenDecoder {
        public let model: Qwen2ForCausalLM
        public let inputsEmbeds: Tensor
        public let compute: Compute
        public private(set) var cache: KVCache?

        public init(model: Qwen2ForCausalLM, inputsEmbeds: Tensor, capacity: Int, compute: Compute = .fast) {
            self.model = model; self.inputsEmbeds = inputsEmbeds; self.compute = compute
            cache = model.makeCache(capacity: capacity)
        }

        public mutating func prefill() throws -> [Float] {
            let h = model.hiddenStates(inputsEmbeds, cache: &cache, compute: compute)
            return model.lmHead(h.slice(dim: 0, (h.shape[0] - 1)..<h.shape[0]), compute: compute).storage
        }

        public mutating func step(_ token: Int) throws -> [Float] {
            model.forward([token], cache: &cache, lastOnly: true, compute: compute).storage
        }
    }

    /// Greedy decoding: prefill `prompt`, then append argmax tokens one at a time through the KV cache
    /// until `maxNewTokens` or a token in `stopTokens`. Returns the new tokens.
    public func generateGreedy(
        prompt: [Int], maxNewTokens: Int, stopTokens: Set<Int> = [],
        compute: Compute = .fast
    ) throws -> [Int] {
        guard !prompt.isEmpty else { throw Qwen2Error.badField("prompt", "is empty") }
        if let bad = prompt.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw Qwen2Error.badField("prompt", "holds token id \(bad), outside 0..<\(config.vocabSize)")
        }
        var decoding = Decoding(
            model: self, inputsEmbeds: embed(prompt), capacity: prompt.count + maxNewTokens, compute: compute)
        return try generate(&decoding, maxNewTokens: maxNewTokens, stopTokens: stopTokens).tokens
    }
}
