// Choosing the next token from logits (V), in the order transformers applies its processors: the
// repetition penalty first, then temperature, top-k and top-p, then a draw from the softmax. Temperature
// 0 is greedy (argmax after the penalty). Draws come from SplitMix64(seed), so a seed fixes the output.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Tensor

/// How to pick tokens.
public struct SamplingParameters: Sendable, Equatable {
    /// 0: greedy. Otherwise logits are divided by it.
    public var temperature: Float = 0
    /// Keep the k most likely tokens (0: off).
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p (1: off).
    public var topP: Float = 1
    /// Divide positive logits of tokens already in the context by it, multiply negative ones (1: off).
    public var repetitionPenalty: Float = 1
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, repetitionPenalty: Float = 1, seed: UInt64 = 0)
    {
        self.temperature = temperature; self.topK = topK; self.topP = topP
        self.repetitionPenalty = repetitionPenalty; self.seed = seed
    }

    /// Throws for values outside their ranges.
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else {
            throw EagleError.badParameter(name: "temperature", value: "\(temperature)", expected: "a number ≥ 0")
        }
        guard topK >= 0 else {
            throw EagleError.badParameter(name: "top-k", value: "\(topK)", expected: "an integer ≥ 0")
        }
        guard topP > 0, topP <= 1 else {
            throw EagleError.badParameter(name: "top-p", value: "\(topP)", expected: "a number in (0, 1]")
        }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw EagleError.badParameter(
                name: "repetition-penalty", value: "\(repetitionPenalty)", expected: "a number > 0")
        }
    }
}

/// A seeded token sampler.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: SplitMix64

    public init(_ p: SamplingParameters) { parameters = p; rng = SplitMix64(seed: p.seed) }

    /// The next token given `logits` (V) and the tokens so far (for the repetition penalty).
    public mutating func next(logits: [Float], context: [Int]) -> Int {
        let p = parameters
        var l = logits
        if p.repetitionPenalty != 1 {
            for id in Set(context) where id >= 0 && id < l.count {
                l[id] = l[id] > 0 ? l[id] / p.repetitionPenalty : l[id] * p.repetitionPenalty
            }
        }
        if p.temperature == 0 { return argmaxFirst(l) }
        // candidates by descending logit (stable: ties keep the lower id first); dividing by T > 0 keeps the order
        var order = Array(l.indices).sorted { l[$0] != l[$1] ? l[$0] > l[$1] : $0 < $1 }
        if p.topK > 0 && p.topK < order.count { order = Array(order.prefix(p.topK)) }
        // softmax(l / T) as exp((l − max) / T) in Double: the same numbers for ordinary T, and no overflow to
        // ∞ − ∞ = NaN for a tiny one (T = 1e-38 once sampled garbage; now it is greedy, as its limit is).
        let m = l[order[0]], t = Double(p.temperature)
        var probs = order.map { exp(Double(l[$0] - m) / t) }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        if p.topP < 1 {
            // keep tokens while the mass before them is below p (the top token always stays)
            var keep = 0, mass = 0.0
            while keep < probs.count && (keep == 0 || mass < Double(p.topP)) { mass += probs[keep]; keep += 1 }
            order = Array(order.prefix(keep)); probs = Array(probs.prefix(keep))
            let s = probs.reduce(0, +)
            for i in probs.indices { probs[i] /= s }
        }
        let u = Double(rng.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        var acc = 0.0
        for (k, pr) in probs.enumerated() {
            acc += pr
            if u < acc { return order[k] }
        }
        return order[order.count - 1]
    }
}

/// Index of the largest value, the first on ties (torch.argmax).
public func argmaxFirst(_ x: [Float]) -> Int {
    var best = 0
    for i in x.indices where x[i] > x[best] { best = i }
    return best
}
