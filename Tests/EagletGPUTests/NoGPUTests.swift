// The GPU module where there is no GPU (CI, this repository's CPU machines): it builds, and every entry
// point fails with an error that names what was looked for. On a GPU host the same tests check that the
// device was found instead. The GPU arithmetic itself is checked by `gpu-check` on a GPU (docs/gpu.md).
import EagletGPU
import Foundation
import Testing
import _TestSupport

@Suite(.serialized) struct NoGPUTests {
    @Test func openingTheGPUEitherFindsOneOrNamesTheLibraryAndFolders() {
        do {
            let gpu = try GPU.open()
            #expect(!gpu.name.isEmpty && gpu.computeCapability.major >= 5, "a GPU was found: \(gpu.summary)")
        } catch let e as GPUError {
            #expect("\(e)".hasPrefix("no GPU"), "message: \(e)")
            if case let .libraryNotFound(library, searched) = e {
                #expect(library.contains("libcuda.so.1"))
                #expect(searched.contains("/usr/local/nvidia/lib64"))
                #expect("\(e)".contains("EAGLET_CUDA_LIBRARY_PATH"))
            }
        } catch {
            Issue.record("expected a GPUError, got \(error)")
        }
    }

    @Test func theEnvironmentOverrideIsSearchedFirst() {
        setenv("EAGLET_CUDA_LIBRARY_PATH", "/nonexistent/a:/nonexistent/b", 1)
        defer { unsetenv("EAGLET_CUDA_LIBRARY_PATH") }
        #expect(Array(CUDALibraries.searchFolders.prefix(2)) == ["/nonexistent/a", "/nonexistent/b"])
    }

    @Test func gpuCheckWithoutAGPUExitsOneWithOneLine() throws {
        // The built CLI next to this test bundle; skipped when the executable is not there.
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("eaglet").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { return }
        if (try? GPU.open()) != nil { return }   // a GPU host: the no-GPU path cannot be shown here
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["gpu-check", "--model", repositoryRoot + "/Fixtures/tiny-eagle", "--prompt", "How many shapes are there?"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .exit && p.terminationStatus == 1)
        #expect(text.hasPrefix("gpu-check: no GPU"), "stderr: \(text)")
        #expect(text.split(separator: "\n").count == 1, "stderr: \(text)")
    }
}
