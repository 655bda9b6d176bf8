// ADS against the Python reference written from the spec (Fixtures/ads-reference,
// Fixtures/generate/ads_reference.py), its errors, and packing / the progressive schedule.
import Testing
import ADS
import _TestSupport

@Suite struct ADSMatchesPythonReference {
    @Test func allocationsMatchReferenceOnEveryCase() throws {
        let f = try Fixture.load("ads-reference")
        func ints(_ k: String) throws -> [Int] { try f.file.integers(k).values.map { Int($0) } }
        let cfg = try ints("cfg"), caps = try ints("caps"), capsOff = try ints("caps_offsets")
        let images = try ints("images"), imagesOff = try ints("images_offsets")
        let cand = try ints("candidates"), candOff = try ints("candidates_offsets")
        let status = try ints("status"), frames = try ints("frames"), framesOff = try ints("frames_offsets")
        let tileCap = try ints("tile_cap"), tiles = try ints("tiles"), tilesOff = try ints("tiles_offsets")
        let visual = try ints("visual_tokens"), total = try ints("total_tokens")
        let n = status.count
        #expect(n >= 4000)
        var misses = 0, seen = [0, 0, 0, 0]
        for i in 0..<n {
            let c = Array(cfg[6 * i..<6 * i + 6])
            let config = ADSConfig(
                tokensPerTile: c[2], tileCaps: Array(caps[capsOff[i]..<capsOff[i + 1]]), minFrames: c[3],
                tileSize: c[4], useThumbnail: c[5] != 0)
            let ims = (imagesOff[i]..<imagesOff[i + 1]).map {
                ADSImage(width: images[2 * $0], height: images[2 * $0 + 1])
            }
            let request = ADSRequest(
                maxContext: c[0], textTokens: c[1], images: ims,
                temporalCandidates: Array(cand[candOff[i]..<candOff[i + 1]]))
            seen[status[i]] += 1
            let got: Int
            var ok = false
            do {
                let a = try automaticDegradeSampling(request, config: config)
                got = 0
                ok =
                    a
                    == ADSAllocation(
                        frames: Array(frames[framesOff[i]..<framesOff[i + 1]]), tileCap: tileCap[i],
                        tiles: Array(tiles[tilesOff[i]..<tilesOff[i + 1]]), visualTokens: visual[i],
                        totalTokens: total[i])
                if ok { #expect(a.totalTokens <= request.maxContext) }
            } catch let e as ADSError {
                switch e {
                case .textTooLong: got = 1
                case .imagesDoNotFit: got = 2
                case .minimumFramesDoNotFit: got = 3
                case .invalidRequest: got = 9
                }
                ok = got == status[i]
            }
            if !ok {
                misses += 1
                if misses <= 5 {
                    Issue.record("case \(i): \(request) \(config): status \(got), reference \(status[i])")
                }
            }
        }
        #expect(misses == 0)
        #expect(seen.allSatisfy { $0 > 100 }, "every outcome is exercised: \(seen)")
    }

    @Test func specExamplesByHand() throws {
        // One 600-candidate video, 1000 text tokens, L = 32768: n* = ⌊31768 / 256⌋ = 124, no images so t* = 12.
        let a = try automaticDegradeSampling(ADSRequest(maxContext: 32768, textTokens: 1000, temporalCandidates: [600]))
        #expect(
            a.frames == [124] && a.tileCap == 12 && a.tiles == [] && a.visualTokens == 124 * 256
                && a.totalTokens == 1000 + 124 * 256)
        // 100 and 20 candidates, n* = 40: minimums 8 + 8, the other 24 shared 92 : 12 → 21.2, 2.8 → 21, 3.
        #expect(
            try automaticDegradeSampling(
                ADSRequest(maxContext: 40 * 256 + 50, textTokens: 50, temporalCandidates: [100, 20])
            ).frames == [29, 11])
        // No temporal inputs: n* = 0; a 1920×1080 image gets the 4×2 grid + thumbnail.
        let b = try automaticDegradeSampling(
            ADSRequest(maxContext: 8192, textTokens: 100, images: [ADSImage(width: 1920, height: 1080)]))
        #expect(b.frames == [] && b.tileCap == 12 && b.tiles == [9] && b.visualTokens == 9 * 256)
        // Tie in remainders goes to the earlier input: 2 extra frames over weights 1, 1, 1, 1 → first two.
        #expect(largestRemainder(2, weights: [1, 1, 1, 1]) == [1, 1, 0, 0])
    }

    @Test func errorsAreTypedAndSayWhatToChange() {
        #expect(throws: ADSError.textTooLong(textTokens: 101, maxContext: 100)) {
            try automaticDegradeSampling(ADSRequest(maxContext: 100, textTokens: 101))
        }
        #expect(throws: ADSError.imagesDoNotFit(images: 2, tokensNeeded: 512, budget: 500)) {
            try automaticDegradeSampling(
                ADSRequest(
                    maxContext: 600, textTokens: 100, images: [.init(width: 9, height: 9), .init(width: 9, height: 9)]))
        }
        #expect(throws: ADSError.minimumFramesDoNotFit(minimums: [8, 8, 3], available: 16)) {
            try automaticDegradeSampling(
                ADSRequest(maxContext: 16 * 256, textTokens: 0, temporalCandidates: [50, 9, 3]))
        }
        #expect(throws: ADSError.self) {
            try automaticDegradeSampling(ADSRequest(maxContext: 1000, textTokens: 0, temporalCandidates: [0]))
        }
        #expect(throws: ADSError.self) {
            try automaticDegradeSampling(
                ADSRequest(maxContext: 1000, textTokens: 0, images: [.init(width: 0, height: 5)]))
        }
        let message = ADSError.textTooLong(textTokens: 101, maxContext: 100).description
        #expect(message.contains("101") && message.contains("--max-context"))
    }

    @Test func largestRemainderShowsTheAlabamaParadox() {
        // More to share, yet the third input loses a frame: Hamilton's method is not house-monotone.
        #expect(largestRemainder(10, weights: [6, 6, 2]) == [4, 4, 2])
        #expect(largestRemainder(11, weights: [6, 6, 2]) == [5, 5, 1])
    }
}

@Suite struct PackingAndSchedule {
    /// Deterministic pseudo-random samples (a small LCG; the values only need to vary).
    static func samples(_ count: Int) -> [ADSRequest] {
        var state: UInt64 = 12345
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        return (0..<count).map { _ in
            let kind = next(3)
            let images =
                kind == 1 ? [] : (0..<next(4)).map { _ in ADSImage(width: 1 + next(4000), height: 1 + next(3000)) }
            let temporal = kind == 0 ? [] : (0..<(1 + next(2))).map { _ in 1 + next(700) }
            return ADSRequest(
                maxContext: 0, textTokens: next(3) == 0 ? next(40000) : next(3000), images: images,
                temporalCandidates: temporal)
        }
    }

    @Test func fastFirstFitDecreasingMatchesNaive() throws {
        var state: UInt64 = 7
        for trial in 0..<40 {
            let capacity = 1 + trial * 97
            let lengths = (0..<(trial * 13 % 301)).map { _ -> Int in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int((state >> 33) % UInt64(capacity + 1))
            }
            let fast = try packFirstFitDecreasing(lengths, capacity: capacity)
            let naive = try packFirstFitDecreasingNaive(lengths, capacity: capacity)
            #expect(fast == naive, "trial \(trial)")
        }
        #expect(throws: PackingError.sampleTooLong(sample: 1, length: 11, capacity: 10)) {
            try packFirstFitDecreasing([3, 11], capacity: 10)
        }
    }

    @Test func scheduleNeverOverfillsPacksAndEverySampleIsPackedOnce() throws {
        let set = Self.samples(300)
        let stages = try progressiveSchedule(set)
        #expect(stages.map(\.maxContext) == [32768, 65536, 131072])
        for stage in stages {
            var count = [Int](repeating: 0, count: set.count)
            for (k, pack) in stage.packing.packs.enumerated() {
                var sum = 0
                for i in pack {
                    count[i] += 1
                    guard case let .success(a) = stage.allocations[i] else {
                        Issue.record("dropped sample \(i) was packed"); continue
                    }
                    sum += a.totalTokens
                }
                #expect(sum == stage.packing.used[k] && sum <= stage.maxContext)
            }
            for (i, a) in stage.allocations.enumerated() {
                if case .success = a {
                    #expect(count[i] == 1, "sample \(i) packed \(count[i]) times")
                } else {
                    #expect(count[i] == 0)
                }
            }
        }
        #expect(stages[0].fittedCount < set.count && stages[0].fittedCount > 0)
    }

    @Test func allocationsGrowMonotonicallyWithContext() throws {
        // n*, t*, every image's tiles and the token counts never shrink as L grows; a sample that fits
        // keeps fitting. (Frames per input need not: see largestRemainderShowsTheAlabamaParadox.)
        let set = Self.samples(200)
        let contexts = stride(from: 2048, through: 140_000, by: 1531).map { $0 }
        let stages = try progressiveSchedule(set, contexts: contexts)
        for i in set.indices {
            var previous: ADSAllocation? = nil
            for stage in stages {
                switch stage.allocations[i] {
                case let .success(a):
                    if let p = previous {
                        #expect(
                            a.totalFrames >= p.totalFrames && a.tileCap >= p.tileCap && a.visualTokens >= p.visualTokens
                                && a.totalTokens >= p.totalTokens && zip(a.tiles, p.tiles).allSatisfy { $0 >= $1 },
                            "sample \(i) at L = \(stage.maxContext)")
                    }
                    previous = a
                case .failure:
                    #expect(previous == nil, "sample \(i) fitted at a smaller L but not at \(stage.maxContext)")
                }
            }
        }
    }
}
