// eaglet: the command-line face of Eaglet. The whole surface is planned in docs/cli.md; subcommands
// arrive with the issues that build their modules.
//
// Conventions: with --json, stdout is exactly one line of JSON and everything for humans goes to
// stderr; bad usage exits 64 (argument-parser), bad input prints one summary line naming the file or
// field and exits 1; never a signal.
import ArgumentParser
import _Essentials
import Eaglet
import _GPUCommands
import Foundation

@main
struct EagletCommand: ParsableCommand {
    /// Tunes the allocator for tensor buffers (see `reuseFreedTensorMemory`), then parses and runs.
    static func main() {
        BLAS.restartIfMisdetected() // Debian's OpenBLAS 0.3.21 and recent CPUs (see BLAS.betterCoreType)
        reuseFreedTensorMemory()
        refuseArgumentsThatAreNotUTF8()
        main(nil)
    }

    /// Swift decodes arguments as UTF-8, replacing invalid bytes with U+FFFD, so a file name that is not UTF-8 could
    /// name — and open — a different file. Such arguments are refused before anything is parsed (exit 1).
    static func refuseArgumentsThatAreNotUTF8() {
        for i in 1..<Int(CommandLine.argc) {
            guard let p = CommandLine.unsafeArgv[i] else { continue }
            let bytes = UnsafeBufferPointer(
                start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
            if String(validating: bytes, as: UTF8.self) == nil {
                FileHandle.standardError.write(
                    Data(
                        "eaglet: argument \(i) is not valid UTF-8; rename the file (Eaglet reads names as UTF-8)\n".utf8
                    ))
                Foundation.exit(1)
            }
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "eaglet",
        abstract: "NVIDIA Eagle 2.5 rebuilt in Swift: a reference and teaching implementation.",
        version: eagletVersion,
        subcommands: [
            Demo.self, Generate.self, Forward.self, Inspect.self, Tile.self, Preprocess.self, Tokenize.self,
            Detokenize.self, Frames.self, ADSCommand.self, ContextParallelCommand.self,
            Synth.self, TrainCommand.self, EvalCommand.self, ServeCommand.self, GPUCheckCommand.self
        ]

    )
}

/// A failure caused by the user's input: printed as one line, exit code 1.
struct InputError: Error, CustomStringConvertible {
    let description: String
}

/// Runs `body`, turning any thrown input error into one line on stderr and exit code 1.
func reportingInputErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as CleanExit { throw e } catch let e as ExitCode { throw e } catch {
        FileHandle.standardError.write(Data("eaglet: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Finds the repository (for shipped fixtures and checkpoints): --root, $EAGLET_ROOT, the current
/// folder and its parents, then the executable's folder and its parents.
func locateRepository(_ explicit: String?) throws -> String {
    let fm = FileManager.default
    if let explicit { return explicit }
    if let env = ProcessInfo.processInfo.environment["EAGLET_ROOT"], !env.isEmpty { return env }
    let starts = [
        fm.currentDirectoryPath, (CommandLine.arguments[0] as NSString).deletingLastPathComponent,
        Bundle.main.executablePath.map { ($0 as NSString).deletingLastPathComponent } ?? ""
    ]
    for start in starts where !start.isEmpty {
        var url = URL(fileURLWithPath: start).standardizedFileURL
        while true {
            if fm.fileExists(atPath: url.appendingPathComponent("Fixtures/tensor-ops/manifest.json").path) {
                return url.path
            }
            if url.path == "/" { break }
            url.deleteLastPathComponent()
        }
    }
    throw InputError(
        description: "cannot find the Eaglet repository (its Fixtures/ folder); pass --root DIR or set EAGLET_ROOT")
}
