// The `eaglet` binary on bad input, run as a user would: exit code 1 (never a signal), nothing on
// stdout, and one line on stderr that starts "eaglet: " and names the file. Skipped when the release
// binary is not built.
import Foundation
import Testing
import _TestSupport

@Suite(
    .enabled(
        if: eagletBinary != nil,
        "the eaglet binary is not built (swift build -c release); the CLI robustness tests are skipped"))
struct CLIRobustness {
    /// Runs `args` and checks: exit 1, no signal, empty stdout, one stderr line "eaglet: …" containing `mention`.
    func expectOneLineFailure(_ args: [String], mentioning mention: String, _ what: String) throws {
        let r = try runEaglet(args)
        #expect(r.reason == .exit, "\(what): ended by signal \(r.status)")
        #expect(r.status == 1, "\(what): exit code \(r.status), stderr: \(r.stderr)")
        #expect(r.stdout.isEmpty, "\(what): stdout \(r.stdout)")
        #expect(r.stderrLines.count == 1, "\(what): stderr has \(r.stderrLines.count) lines: \(r.stderr)")
        #expect(r.stderr.hasPrefix("eaglet: ") && r.stderr.contains(mention), "\(what): \(r.stderr)")
    }

    /// --max-context is capped by the config's max_position_embeddings (512 for tiny-random), before loading;
    /// a huge --max-new-tokens is bounded by the context instead of overflowing `prompt + budget + 1`.
    @Test func contextAndNewTokensAreBounded() throws {
        let base = ["generate", "--model", tinyRandom, "--prompt", "hi"]
        try expectOneLineFailure(
            base + ["--max-context", "1000000000000000000"], mentioning: "max_position_embeddings",
            "context above the model's")
        try expectOneLineFailure(base + ["--max-context", "1"], mentioning: "--max-context 1", "context of one token")
        let r = try runEaglet(base + ["--max-new-tokens", "\(Int.max)", "--json"])
        #expect(r.reason == .exit && r.status == 0, "huge --max-new-tokens: \(r.stderr)")
    }

    /// A negative number for a numeric flag is read as that number and refused by name; it used to be taken for
    /// the next option, and argument-parser said the value was missing (issue 23, minor item).
    @Test func negativeNumbersAreReadAndRefusedByName() throws {
        let base = ["generate", "--model", tinyRandom, "--prompt", "hi"]
        for (flag, name) in [
            ("--temperature", "temperature"), ("--max-new-tokens", "max-new-tokens"), ("--top-k", "top-k"),
            ("--max-context", "max-context")
        ] {
            let r = try runEaglet(base + [flag, "-1"])
            #expect(r.reason == .exit && r.status == 1, "\(flag) -1: status \(r.status), \(r.stderr)")
            #expect(!r.stderr.contains("Missing value"), "\(flag) -1 was taken for a missing value: \(r.stderr)")
            #expect(r.stderr.contains(name) && r.stderr.contains("-1"), "\(flag) -1: \(r.stderr)")
        }
    }

    /// `tile`, `preprocess` and `frames` take `--max-image-pixels` as `generate` does, and the refusal names the
    /// flag (issue 23, minor item).
    @Test func everyCommandThatDecodesTakesThePixelLimit() throws {
        let png = "\(repositoryRoot)/Fixtures/tiny-eagle/demo.png"
        let video = "\(repositoryRoot)/Fixtures/test-videos/h264.mp4"
        try expectOneLineFailure(
            ["tile", png, "--max-image-pixels", "10"], mentioning: "--max-image-pixels", "tile past the limit")
        try expectOneLineFailure(
            ["preprocess", png, "--max-image-pixels", "10", "--dump", "/tmp/eaglet-never-written.safetensors"],
            mentioning: "--max-image-pixels", "preprocess past the limit")
        if FileManager.default.fileExists(atPath: video) {
            let r = try runEaglet(["frames", video, "--max-image-pixels", "10"])
            #expect(r.reason == .exit && r.status == 1, "frames past the limit: \(r.stderr)")
            #expect(r.stderr.contains("--max-image-pixels"), "frames past the limit: \(r.stderr)")
        }
    }

    /// A generation_config.json that exists but cannot be used is named on stderr, with where the stop tokens come
    /// from instead; generation still runs (it was ignored without a word; issue 23, minor item).
    @Test func anUnusableGenerationConfigIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/eaglet-genconfig-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: tinyRandom, toPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("{\"eos_token_id\": [1,".utf8).write(to: URL(fileURLWithPath: dir + "/generation_config.json"))
        let r = try runEaglet(["generate", "--model", dir, "--prompt", "hi", "--max-new-tokens", "2", "--json"])
        #expect(r.reason == .exit && r.status == 0, "status \(r.status): \(r.stderr)")
        #expect(
            r.stderr.contains("generation_config.json ignored") && r.stderr.contains("invalid JSON at byte"),
            "\(r.stderr)")
        try Data("{\"eos_token_id\": 2}".utf8).write(to: URL(fileURLWithPath: dir + "/generation_config.json"))
        let ok = try runEaglet(["generate", "--model", dir, "--prompt", "hi", "--max-new-tokens", "2", "--json"])
        #expect(!ok.stderr.contains("generation_config.json"), "a usable file: \(ok.stderr)")
    }

    /// `forward --dump` onto the checkpoint's own weights would replace them; onto a folder it printed a raw NSError.
    /// Both are one-line errors now, and the checkpoint is untouched (issue 23, minor items).
    @Test func forwardDumpCannotOverwriteTheCheckpoint() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/eaglet-dump-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: tinyRandom, toPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let before = FileManager.default.contents(atPath: dir + "/model.safetensors")
        try expectOneLineFailure(
            ["forward", "--model", dir, "--prompt", "hi", "--dump", dir + "/model.safetensors"],
            mentioning: "would overwrite", "dump onto the weights")
        #expect(FileManager.default.contents(atPath: dir + "/model.safetensors") == before)
        try expectOneLineFailure(
            ["forward", "--model", dir, "--prompt", "hi", "--dump", dir], mentioning: "names a folder",
            "dump onto a folder")
    }

    /// A file name that is not UTF-8 (byte 0xFF) is refused by name, not decoded with U+FFFD into the name of some
    /// other file (issue 23 item 8). Process takes Strings, so the shell writes the byte.
    @Test func argumentsThatAreNotUTF8AreRefused() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "exec \"$0\" tile \"$(printf 'a\\377.png')\" --json", try #require(eagletBinary)]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .exit && p.terminationStatus == 1)
        #expect(text.hasPrefix("eaglet: argument 2 is not valid UTF-8"), "\(text)")
    }

    /// Sizes that overflowed the grid arithmetic or a thread count, refused by range (issue 23 item 7).
    @Test func hugeNumericFlagsAreRefusedByRange() throws {
        for (args, mention) in [
            (["tile", "--width", "4294967296", "--height", "4294967296"], "1048576"),
            (["ads", "--max-context", "100000", "--text-tokens", "10", "--image", "4294967296x4294967296"], "1048576"),
            (
                [
                    "cp", "--strategy", "ring", "--world", "\(Int.max)", "--seq", "64", "--heads", "2", "--kv-heads",
                    "1",
                    "--head-dim", "4"
                ], "--world"
            )
        ] {
            let r = try runEaglet(args)
            #expect(r.reason == .exit && r.status != 0, "\(args[0]): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(mention), "\(args[0]): \(r.stderr)")
        }
    }

    /// A FIFO where a checkpoint, config, prompt ids or image should be, or a device as an image, is refused at
    /// once (it used to block in open() or read forever): one line, exit 1, well inside the runner's timeout.
    @Test func fifosAndDevicesAreRefusedWithoutBlocking() throws {
        let weights = try tinyRandomCopy("cli/fifo-weights")
        try FileManager.default.removeItem(atPath: "\(weights)/model.safetensors")
        #expect(mkfifo("\(weights)/model.safetensors", 0o600) == 0)
        let config = try tinyRandomCopy("cli/fifo-config")
        try FileManager.default.removeItem(atPath: "\(config)/config.json")
        #expect(mkfifo("\(config)/config.json", 0o600) == 0)
        let ids = "\(scratchDirectory)/cli/fifo-ids.json"
        try? FileManager.default.removeItem(atPath: ids)
        #expect(mkfifo(ids, 0o600) == 0)
        for (args, what) in [
            (["generate", "--model", weights, "--prompt", "hi"], "FIFO as model.safetensors"),
            (["generate", "--model", config, "--prompt", "hi"], "FIFO as config.json"),
            (["generate", "--model", tinyRandom, "--input-ids", ids], "FIFO as --input-ids"),
            (["generate", "--model", tinyRandom, "--image", "/dev/zero", "--prompt", "hi"], "/dev/zero as an image")
        ] {
            let r = try runEaglet(args, timeout: 30)
            #expect(r.reason == .exit && r.status == 1 && r.stderrLines.count == 1, "\(what): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("not a regular file"), "\(what): \(r.stderr)")
        }
    }

    @Test func badImagesAreOneLine() throws {
        let empty = scratch("cli/empty.png", [])
        try expectOneLineFailure(
            ["generate", "--model", tinyRandom, "--image", empty, "--prompt", "hi"], mentioning: empty, "empty image")
        let huge = scratch("cli/huge.png", pngClaiming(width: 100_000, height: 100_000))
        try expectOneLineFailure(
            ["generate", "--model", tinyRandom, "--image", huge, "--prompt", "hi"], mentioning: "100000×100000",
            "huge IHDR")
        try expectOneLineFailure(
            [
                "generate", "--model", tinyRandom, "--image", "\(tinyRandom)/example.png", "--prompt", "hi",
                "--max-image-pixels", "10"
            ], mentioning: "example.png", "lowered pixel limit")
    }

    @Test func badCheckpointsAreOneLine() throws {
        let dir = try tinyRandomCopy("cli/bad-config")
        try Data("{\"model_type\": \"eagle_2_5_vl\", ".utf8).write(to: URL(fileURLWithPath: "\(dir)/config.json"))
        try expectOneLineFailure(
            ["generate", "--model", dir, "--prompt", "hi"], mentioning: "\(dir)/config.json", "truncated config.json")
        let dir2 = try tinyRandomCopy("cli/absurd-config")
        try tinyConfig { _, _, t in t["num_hidden_layers"] = 1_000_000_000 }.write(
            to: URL(fileURLWithPath: "\(dir2)/config.json"))
        try expectOneLineFailure(["inspect", "--model", dir2], mentioning: "num_hidden_layers", "absurd layer count")
        let dir3 = try tinyRandomCopy("cli/truncated-weights")
        let weights = try Data(contentsOf: URL(fileURLWithPath: "\(dir3)/model.safetensors"))
        try weights.prefix(weights.count / 2).write(to: URL(fileURLWithPath: "\(dir3)/model.safetensors"))
        try expectOneLineFailure(
            ["generate", "--model", dir3, "--prompt", "hi"], mentioning: "model.safetensors", "truncated weights")
    }

    @Test func badTokenizerPromptIdsAndVideoAreOneLine() throws {
        let tok = scratch(
            "cli/tokenizer.json", Array(#"{"model": {"type": "BPE", "vocab": {"a": 99999999999}, "merges": []}}"#.utf8))
        try expectOneLineFailure(
            ["tokenize", "--tokenizer", tok, "--text", "hi"], mentioning: tok, "bad tokenizer.json")
        let ids = scratch("cli/ids.json", Array("[1, 2, 1e300]".utf8))
        try expectOneLineFailure(
            ["generate", "--model", tinyRandom, "--input-ids", ids], mentioning: ids, "non-integer id")
        let far = scratch("cli/far-ids.json", Array("[1, 2, 99999]".utf8))
        try expectOneLineFailure(
            ["generate", "--model", tinyRandom, "--input-ids", far], mentioning: "99999", "id outside the vocabulary")
        // Regression: a rank-0 pixel_values tensor was indexed before its shape was checked (a trap).
        let pv = safetensors(
            "cli/pixel-values.safetensors", #"{"pixel_values":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
            data: [0, 0, 0, 0])
        let three = scratch("cli/three-ids.json", Array("[1, 2, 3]".utf8))
        try expectOneLineFailure(
            [
                "forward", "--model", tinyRandom, "--input-ids", three, "--pixel-values", pv, "--dump",
                "\(scratchDirectory)/cli/dump.safetensors"
            ],
            mentioning: "pixel_values: shape []", "rank-0 pixel_values")
        let video = scratch("cli/empty.mp4", [])
        try expectOneLineFailure(["frames", video], mentioning: video, "empty video")
        let junk = scratch("cli/junk.mkv", Array(repeating: 0x5A, count: 4096))
        try expectOneLineFailure(
            ["generate", "--model", tinyRandom, "--video", junk, "--prompt", "hi"], mentioning: junk, "junk video")
    }

    @Test func nanWeightsFailWithASummaryLineFirst() throws {
        let dir = try tinyRandomCopy("cli/nan")
        let path = "\(dir)/model.safetensors"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // The last four bytes of the data section are the last element of the last tensor: make it +Inf.
        bytes.replaceSubrange(bytes.count - 4..<bytes.count, with: [0x00, 0x00, 0x80, 0x7F])
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try runEaglet(["generate", "--model", dir, "--prompt", "hi"])
        #expect(r.reason == .exit && r.status == 1)
        // EagleError.nonFiniteWeights: one summary line, then the tensor names indented.
        #expect(
            r.stderrLines.first?.hasPrefix("eaglet: \(dir): 1 tensors hold NaN or infinite values") == true,
            "\(r.stderr)")
        #expect(r.stderrLines.count == 2 && r.stderrLines[1].hasPrefix("  "))
    }
}
