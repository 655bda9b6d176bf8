// eaglet-bench realsize: an Eagle2.5-8B-shaped checkpoint (`eaglet synth --preset eagle2.5-8b --dtype bf16`) on this
// machine, as a user runs it — `eaglet generate --json` in its own process per weight format — and PyTorch bf16 on
// the same checkpoint and the same prompt in the same run (Fixtures/generate/bench_realsize_torch.py).
//
// The prompt: one 448-px tile (seeded pixel_values) and `--text-tokens` text tokens around its <IMG_CONTEXT> run,
// written once as --input-ids / --pixel-values files that both sides read, so both do the same work.
// Reported per side: load seconds (to a model ready for its first forward; page cache warm), time to first token
// (tower, mlp1, splice, prefill, first logits), decode tokens/s over `--new-tokens`, peak RSS, and decode as a
// fraction of the bound:
//     bound (tokens/s) = streaming read (GB/s) ÷ bytes read per token,
//     bytes read per token = Σ over the decoder's projections and the LM head of elements · bytes per value as held
// (2 for BF16, 34/32 for q8_0; the KV cache of a few hundred tokens and the norms are left out).
import ArgumentParser
import Eaglet
import Foundation
import _Essentials

struct RealSizeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "realsize",
        abstract:
            "An Eagle2.5-8B-shaped checkpoint: load, time to first token, decode vs the bound, BF16 and q8_0 vs PyTorch."
    )

    @Option(help: "Checkpoint folder (make one with: eaglet synth --preset eagle2.5-8b --dtype bf16 --out DIR).")
    var model: String
    @Option(help: "Comma-separated weight formats for Eaglet.") var formats: String = "native,q8_0"
    @Option(help: "Text tokens around the image's visual tokens.") var textTokens: Int = 32
    @Option(help: "Tokens generated (the first one is the time to first token).") var newTokens: Int = 16
    @Flag(help: "Skip PyTorch.") var noTorch = false
    @Flag(
        inversion: .prefixedNo,
        help: "Before each side, drop the shards from the page cache and read them back through a 2 MiB-page mapping.")
    var settle = true

    func run() throws {
        let config = try EagleConfig.load(directory: model)
        let t = config.text
        print(machineDescription(blasCore: BLAS.coreName))
        print("CPU vector extensions: \(cpuVectorExtensions()); Eaglet kernel path \(KernelPath.current)")
        let folder = NSTemporaryDirectory() + "eaglet-realsize-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The prompt: text ids (seeded, in the vocabulary), one tile's <IMG_CONTEXT> run in the middle.
        var rng = SplitMix64(seed: 2026)
        let text = (0..<textTokens).map { _ in 100 + Int(rng.next() % UInt64(max(1, min(t.vocabSize, 150_000) - 100))) }
        let visual = config.tokensPerTile
        let ids =
            Array(text[..<(textTokens / 2)]) + Array(repeating: config.imageTokenIndex, count: visual)
            + Array(text[(textTokens / 2)...])
        let idsPath = folder + "/ids.json", pvPath = folder + "/pixel_values.safetensors"
        try Data("[\(ids.map(String.init).joined(separator: ","))]".utf8).write(to: URL(fileURLWithPath: idsPath))
        var w = SafeTensorsWriter()
        w.add("pixel_values", Tensor.seeded([1, 3, config.tileSize, config.tileSize], seed: 7, scale: 1))
        try Data(w.serialized()).write(to: URL(fileURLWithPath: pvPath))
        print("prompt: \(ids.count) tokens (\(visual) visual from one \(config.tileSize)-px tile), \(newTokens) new")

        // The streaming read this machine sustains with 2 threads (1 GiB, median of 7), measured again before each
        // side (the host's bandwidth moves by a tenth within minutes); each side's bound uses its own.
        let threads = BLAS.defaultThreads
        func measureRead() -> Double {
            let n = 1 << 28
            let data = [Float](repeating: 1, count: n)
            let seconds = data.withUnsafeBufferPointer { b in medianTime(repeats: 7) { streamRead(b, threads: threads) }
            }
            return Double(n * 4) / seconds / 1e9
        }
        func prepare(_ side: String) -> Double {
            if settle {
                let t0 = Date()
                let pmd = settlePageCache(model)
                print(
                    "\(side): "
                        + cFormat(
                            "page cache settled in %.1f s (%.0f %% of it in 2 MiB folios)",
                            Date().timeIntervalSince(t0),
                            100 * pmd))
            }
            let r = measureRead()
            print("\(side): " + cFormat("streaming read %.1f GB/s (%d threads)", r, threads))
            return r
        }

        let C = t.hiddenSize, I = t.intermediateSize, qkv = (t.numAttentionHeads + 2 * t.numKeyValueHeads) * t.headDim
        let matrices = t.numHiddenLayers * (qkv * C + t.numAttentionHeads * t.headDim * C + 3 * C * I) + t.vocabSize * C

        let eaglet = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0])
            .deletingLastPathComponent().appendingPathComponent("eaglet").path
        var rows = [(String, [String: Any], Double)]()
        for f in formats.split(separator: ",").map(String.init) {
            let readGBs = prepare("Eaglet \(f)")
            guard
                let out = runProcess(
                    eaglet,
                    [
                        "generate", "--model", model, "--input-ids", idsPath, "--pixel-values", pvPath,
                        "--max-new-tokens", "\(newTokens)", "--weights", f, "--json"
                    ]),
                let line = out.split(separator: "\n").last,
                let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else {
                print("eaglet --weights \(f): failed"); continue
            }
            rows.append(("Eaglet \(f)", obj, readGBs))
        }
        let torchRead = noTorch ? 0 : prepare("PyTorch")
        if !noTorch,
            let script = torchScript("bench_realsize_torch.py"),
            let out = runProcess(
                "/usr/bin/env",
                [
                    "python3", script, "--model", model, "--ids", idsPath, "--pixels", pvPath, "--new-tokens",
                    "\(newTokens)", "--threads", "\(threads)"
                ]),
            let line = out.split(separator: "\n").last,
            let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        {
            rows.append(("PyTorch \(obj["torch"] as? String ?? "") bf16", obj, torchRead))
        }
        print(
            "| side | bytes/weight | load s | TTFT s | decode tok/s | read GB/s | bound tok/s | of bound | peak RSS GiB |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for (name, o, readGBs) in rows {
            let bpv = bytesPerWeight(name.hasPrefix("Eaglet q8_0") ? "q8_0" : "bf16")
            let bound = readGBs * 1e9 / (Double(matrices) * bpv)
            let dec = o["decode_tokens_per_second"] as? Double ?? .nan
            print(
                "| \(name) | "
                    + cFormat(
                        "%.4g | %.2f | %.2f | %.3f | %.1f | %.3f | %.0f %% | %.1f |", bpv,
                        o["load_seconds"] as? Double ?? .nan,
                        o["ttft_seconds"] as? Double ?? .nan, dec, readGBs, bound, 100 * dec / bound,
                        Double(o["peak_rss_bytes"] as? Int ?? 0) / Double(1 << 30)))
        }
        if let torch = rows.first(where: { $0.0.hasPrefix("PyTorch") })?.1 {
            for (name, o, _) in rows where name.hasPrefix("Eaglet") {
                let ttft = (torch["ttft_seconds"] as? Double ?? .nan) / (o["ttft_seconds"] as? Double ?? .nan)
                let dec =
                    (o["decode_tokens_per_second"] as? Double ?? .nan)
                    / (torch["decode_tokens_per_second"] as? Double ?? .nan)
                print(
                    "\(name): " + cFormat("time to first token %.2f× faster than PyTorch bf16, decode %.2f×", ttft, dec)
                )
            }
        }
        if let b = rows.first(where: { $0.0 == "Eaglet native" })?.1,
            let q = rows.first(where: { $0.0 == "Eaglet q8_0" })?.1
        {
            let r =
                (q["decode_tokens_per_second"] as? Double ?? .nan) / (b["decode_tokens_per_second"] as? Double ?? .nan)
            print(cFormat("q8_0 decode / BF16 decode: %.2f×", r))
        }
    }
}

/// Drops every shard of `model` from the page cache (clean pages only) and reads it back through a mapping that asks
/// for 2 MiB pages (MADV_HUGEPAGE, then MADV_POPULATE_READ), so each side finds the checkpoint cached the same way:
/// in 2 MiB folios that the kernel can map with one TLB entry each. Pages cached by the write that made the files, or
/// re-read after another process pushed them out, are otherwise in small folios, and decode over them was measured
/// 5–10 % slower. Returns the fraction of the shards' bytes this process saw mapped in 2 MiB pages (FilePmdMapped).
func settlePageCache(_ model: String) -> Double {
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: model)) ?? []).filter {
        $0.hasSuffix(".safetensors")
    }
    var total = 0, pmd = 0
    for name in files {
        let fd = open(model + "/" + name, O_RDONLY)
        guard fd >= 0 else { continue }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { continue }
        let size = Int(st.st_size)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else { continue }
        _ = madvise(p, size, Int32(MADV_HUGEPAGE))
        _ = madvise(p, size, 22) // MADV_POPULATE_READ (Linux 5.14)
        total += size
        pmd += filePMDMappedBytes()
        munmap(p, size)
    }
    return total > 0 ? Double(pmd) / Double(total) : 0
}

/// This process's FilePmdMapped, in bytes (/proc/self/smaps_rollup); 0 where it cannot be read.
func filePMDMappedBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8),
        let line = s.split(separator: "\n").first(where: { $0.hasPrefix("FilePmdMapped:") })
    else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
}
