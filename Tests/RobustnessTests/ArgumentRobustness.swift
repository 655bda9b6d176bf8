// Numbers from the command line that once overflowed Int: ADS requests and the context-parallel check.
import Foundation
import Testing
import ADS
import _TestSupport

@Suite struct ArgumentRobustness {
    @Test func absurdADSRequestsAreTypedErrors() {
        // Once: total · weight overflowed in largestRemainder.
        #expect(
            throws: ADSError.invalidRequest(field: "max context", reason: "must be at most \(1 << 31) (got \(Int.max))")
        ) {
            try automaticDegradeSampling(ADSRequest(maxContext: Int.max, textTokens: 10, temporalCandidates: [8]))
        }
        #expect(
            throws: ADSError.invalidRequest(
                field: "temporal input 2", reason: "must be at most \(1 << 31) (got \(Int.max))")
        ) {
            try automaticDegradeSampling(ADSRequest(maxContext: 1000, textTokens: 10, temporalCandidates: [8, Int.max]))
        }
        #expect(
            throws: ADSError.invalidRequest(
                field: "tokens per tile", reason: "must be at most \(1 << 31) (got \(Int.max))")
        ) {
            try automaticDegradeSampling(
                ADSRequest(maxContext: 1000, textTokens: 10), config: ADSConfig(tokensPerTile: Int.max))
        }
    }
}

@Suite(.enabled(if: eagletBinary != nil, "the eaglet binary is not built (swift build -c release)"))
struct ArgumentRobustnessCLI {
    @Test func overflowingArgumentsAreOneLine() throws {
        for args in [
            ["ads", "--max-context", "\(Int.max)", "--text-tokens", "10", "--temporal", "\(Int.max)"],
            [
                "cp", "--strategy", "ring", "--world", "2", "--seq", "3000000000", "--heads", "3000000000",
                "--kv-heads", "1", "--head-dim", "4"
            ],
            ["frames", "\(repositoryRoot)/Fixtures/test-videos/h264.mp4", "--num-frames", "\(Int.max)"]
        ] {
            let r = try runEaglet(args)
            #expect(
                r.reason == .exit && r.status == 1,
                "\(args[0]): status \(r.status) (\(r.reason == .exit ? "exit" : "signal"))")
            #expect(r.stderrLines.count == 1 && r.stderr.hasPrefix("eaglet: "), "\(args[0]): \(r.stderr)")
        }
    }
}
