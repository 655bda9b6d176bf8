// `eaglet train` and `eaglet eval` as a user runs them: one JSON line a step, a checkpoint that generate loads, a
// non-finite loss that stops the run and keeps the last good checkpoint, Ctrl-C that saves a resumable one, and
// a malformed line named by its number.
import Foundation
import Testing
import _TestSupport

@Suite(.enabled(if: eagletBinary != nil, "the eaglet binary is not built (swift build -c release)"), .serialized)
struct TrainCLI {
    func folder() throws -> String {
        try dataFolder((0..<6).map { sampleLine("Question \($0)?", "Answer \($0).", image: $0 % 2 == 0) })
    }

    @Test func jsonLinesCheckpointAndEval() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runEaglet([
            "train", "--model", tinyRandom, "--data", dir + "/data.jsonl", "--steps", "3", "--batch-samples", "2",
            "--out", dir + "/out", "--json", "--dump-gradients", dir + "/g.safetensors"
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        for (k, l) in lines.enumerated() {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])
            #expect(o["step"] as? Int == k)
            for key in ["loss", "tokens", "supervised_tokens", "lr", "grad_norm", "seconds"] {
                #expect(o[key] != nil, "\(key) missing in \(l)")
            }
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/g.safetensors"))
        let e = try runEaglet([
            "eval", "--model", dir + "/out", "--data", dir + "/data.jsonl", "--json", "--max-new-tokens", "4"
        ])
        #expect(e.status == 0, "\(e.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(o["samples"] as? Int == 6)
    }

    /// `--resume` continues bit for bit: 4 steps in one run, or 2 and then 2 more resumed, write the same weights and
    /// optimizer state, byte for byte (shuffled data, clipping, weight decay).
    @Test func resumeIsBitIdentical() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let common = [
            "train", "--model", tinyRandom, "--data", dir + "/data.jsonl", "--batch-samples", "2", "--shuffle",
            "--seed", "5", "--lr", "1e-2", "--clip", "0.5",
            "--weight-decay", "0.1"
        ]
        #expect(try runEaglet(common + ["--steps", "4", "--out", dir + "/straight"]).status == 0)
        #expect(try runEaglet(common + ["--steps", "2", "--out", dir + "/split"]).status == 0)
        let r = try runEaglet(common + ["--steps", "4", "--resume", dir + "/split", "--out", dir + "/split"])
        #expect(r.status == 0, "\(r.stderr)")
        // (A constant learning rate: with a cosine schedule the first half's rates depend on --steps.)
        for f in ["model.safetensors", "optimizer.safetensors"] {
            let a = FileManager.default.contents(atPath: dir + "/straight/" + f)
            let b = FileManager.default.contents(atPath: dir + "/split/" + f)
            #expect(a != nil && a == b, "\(f) differs after resume")
        }
    }

    @Test func nonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runEaglet([
            "train", "--model", tinyRandom, "--data", dir + "/data.jsonl", "--steps", "6", "--batch-samples", "2",
            "--lr", "1e30", "--save-every", "1", "--out", dir + "/out", "--json"
        ])
        #expect(r.status == 1)
        #expect(r.stderr.contains("not finite") && r.stderr.contains(dir + "/out"), "\(r.stderr)")
        // What was saved loads (every value finite or not, the folder is whole).
        #expect(FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
        #expect(FileManager.default.fileExists(atPath: dir + "/out/trainer_state.json"))
    }

    @Test func malformedLineIsNamed() throws {
        let dir = try dataFolder([sampleLine("q", "a"), "{not json"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runEaglet([
            "train", "--model", tinyRandom, "--data", dir + "/data.jsonl", "--steps", "1", "--out", dir + "/out"
        ])
        #expect(r.status == 1)
        #expect(r.stderr.contains("data.jsonl:2:"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func interruptSavesAResumableCheckpoint() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(eagletBinary))
        p.arguments = [
            "train", "--model", tinyRandom, "--data", dir + "/data.jsonl", "--steps", "100000", "--batch-samples", "2",
            "--out", dir + "/out", "--json"
        ]
        // Steps of a tiny model print thousands of lines a second: to a file, not a pipe nobody drains.
        let log = dir + "/log.jsonl"
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait for a first step (at most 60 s), then Ctrl-C.
        let start = Date()
        while (FileManager.default.contents(atPath: log)?.count ?? 0) == 0 && Date().timeIntervalSince(start) < 60 {
            usleep(20_000)
        }
        kill(p.processIdentifier, SIGINT)
        let sent = Date()
        while p.isRunning && Date().timeIntervalSince(sent) < 30 { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            Issue.record("eaglet train did not stop within 30 s of SIGINT")
            return
        }
        #expect(p.terminationStatus == 130)
        let state = try #require(FileManager.default.contents(atPath: dir + "/out/trainer_state.json"))
        let o = try #require(try JSONSerialization.jsonObject(with: state) as? [String: Any])
        #expect((o["step"] as? Int ?? 0) >= 1)
        let r = try runEaglet([
            "train", "--model", tinyRandom, "--data", dir + "/data.jsonl", "--steps", "\((o["step"] as? Int ?? 0) + 1)",
            "--batch-samples", "2", "--resume", dir + "/out", "--out", dir + "/out", "--json"
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").count == 1)
    }
}
