// The `eaglet` command's conventions, run as a user would: --json prints exactly one JSON line on
// stdout; bad input is one line on stderr and exit code 1; bad usage is argument-parser's exit 64.
import Foundation
import Testing
import SafeTensors
import _TestSupport

@Suite(.enabled(if: eagletBinary != nil, "the eaglet binary is not built (swift build -c release)"))
struct EagletCommandLine {
    @Test func generateJSONIsOneLineWithTheReferenceTokens() throws {
        let golden = try Fixture.load("eagle-tiny-random")
        let want = try golden.file.integers("greedy_tokens").values
        let (code, out, _) = try runEaglet([
            "generate", "--model", tinyRandom, "--image", "\(tinyRandom)/example.png",
            "--prompt", golden.manifest["question"] as? String ?? "", "--max-new-tokens", "\(want.count)", "--json"
        ]).outputs
        #expect(code == 0)
        let lines = out.split(separator: "\n")
        #expect(lines.count == 1)
        let obj = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect((obj?["tokens"] as? [Int])?.map(Int64.init) == want)
        #expect(obj?["text"] is String)
        #expect((obj?["prompt_tokens"] as? Int ?? 0) > 0 && (obj?["peak_rss_bytes"] as? Int ?? 0) > 1 << 20)
        #expect(obj?["ttft_seconds"] is Double && obj?["decode_tokens_per_second"] is Double)
    }

    /// A run that cannot fit is refused from the headers, before any weight is read: one line, exit 1.
    @Test func aRunThatCannotFitIsRefusedBeforeLoading() throws {
        let args = ["generate", "--model", tinyRandom, "--prompt", "hi", "--max-new-tokens", "2"]
        let r = try runEaglet(args, environment: ["EAGLET_MEMORY_LIMIT_BYTES": "10000"])
        #expect(r.status == 1 && r.stderrLines.count == 1)
        #expect(r.stderr.hasPrefix("eaglet: \(tinyRandom): this run does not fit in memory — weights "))
        #expect(try runEaglet(args, environment: ["EAGLET_MEMORY_LIMIT_BYTES": "\(1 << 30)"]).status == 0)
    }

    @Test func badInputIsOneLineAndExitCodeOne() throws {
        let (code, out, err) = try runEaglet(["generate", "--model", "/nonexistent-model", "--prompt", "hi"]).outputs
        #expect(code == 1)
        #expect(out.isEmpty)
        #expect(err.split(separator: "\n").count == 1 && err.hasPrefix("eaglet: /nonexistent-model/config.json"))
    }

    @Test func synthTinyThenGenerateOnIt() throws {
        let dir = NSTemporaryDirectory() + "eaglet-synth-cli-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, out, err) = try runEaglet(["synth", "--preset", "tiny", "--out", dir, "--seed", "3", "--json"])
            .outputs
        #expect(code == 0)
        let lines = out.split(separator: "\n")
        #expect(lines.count == 1)
        let obj = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect(obj?["shards"] as? Int == 1 && obj?["tokenizer"] as? Bool == true)
        #expect(err.contains("model-00001-of-00001.safetensors"))
        let gen = try runEaglet(["generate", "--model", dir, "--prompt", "Hello there", "--max-new-tokens", "3"])
        #expect(gen.outputs.0 == 0)
        for bad in [
            ["--preset", "huge"], ["--preset", "tiny", "--text-layers", "0"], ["--preset", "tiny", "--dtype", "f16"],
            ["--preset", "tiny", "--shard-bytes", "1000"]
        ] {
            let (c, o, e) = try runEaglet(["synth", "--out", dir + "-bad"] + bad).outputs
            #expect(c == 1 && o.isEmpty, "\(bad)")
            #expect(e.split(separator: "\n").count == 1 && e.hasPrefix("eaglet: --"), "\(bad): \(e)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "-bad"))
    }

    @Test func badUsageIsExitCode64() throws {
        // neither --prompt nor --input-ids
        let (code, _, _) = try runEaglet(["generate", "--model", tinyRandom]).outputs
        #expect(code == 64)
    }

    @Test func forwardDumpHoldsEveryStage() throws {
        let path = NSTemporaryDirectory() + "eaglet-forward-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (code, _, _) = try runEaglet([
            "forward", "--model", tinyRandom, "--image", "\(tinyRandom)/example.png",
            "--prompt", "What color is the circle?", "--dump", path
        ]).outputs
        #expect(code == 0)
        let f = try SafeTensorsFile(path: path)
        #expect(f.names == ["input_ids", "logits", "pixel_values", "vision_features", "visual_tokens"])
        let golden = try Fixture.load("eagle-tiny-random")
        assertClose(try f.tensor("logits"), try golden.tensor("logits"), .fp32Block, "forward --dump logits")
    }

    @Test func generateWithAVideoFitsFramesWithADS() throws {
        // h264.mp4: 100 frames at 25 fps (4 s) → the 2 fps policy offers 8 candidates; at the default context
        // (512) all 8 fit, one 28-px tile (4 tokens) each; a context shorter than the text is an error.
        let video = "\(repositoryRoot)/Fixtures/test-videos/h264.mp4"
        let (code, out, err) = try runEaglet([
            "generate", "--model", tinyRandom, "--video", video, "--prompt", "What happens?",
            "--max-new-tokens", "3", "--json"
        ]).outputs
        #expect(code == 0)
        #expect(err.contains("video: 8 frames (ADS)"))
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect((obj?["tokens"] as? [Int])?.count == 3)
        let (short, _, shortErr) = try runEaglet([
            "generate", "--model", tinyRandom, "--video", video, "--prompt", "What happens?",
            "--max-context", "60"
        ]).outputs
        #expect(short == 1)
        #expect(shortErr.contains("longer than the context of 60"))
    }
}
