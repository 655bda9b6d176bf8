// swift-tools-version:6.0
// Eaglet: NVIDIA Eagle 2.5 rebuilt from scratch in Swift as a reference and teaching implementation.
//
// One small module per component, ordered along the data path (docs/architecture.md):
//   Tensor, SafeTensors  →  (later) Imaging, Tiler, PatchEmbed, SigLIP2, Connector, Tokenizer,
//   QwenAttention, Qwen2, Eagle, Video, ADS, FusedKernels, ContextParallel, EagletGPU
// `Eaglet` re-exports them all. `_`-prefixed targets are internals (C bindings, test support, tools).
import PackageDescription

let package = Package(
    name: "Eaglet",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Eaglet", targets: ["Eaglet"]),
        .executable(name: "eaglet", targets: ["eaglet"]),
        .executable(name: "eaglet-bench", targets: ["eaglet-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian (libopenblas-dev, liblapacke-dev).
        .systemLibrary(name: "_CBLAS", path: "Sources/_CBLAS"),
        .systemLibrary(name: "_CLAPACKE", path: "Sources/_CLAPACKE"),

        // Chapter 01: tensors, the BLAS binding, safetensors.
        .target(name: "Tensor", dependencies: ["_CBLAS"]),
        .target(name: "SafeTensors", dependencies: ["Tensor"]),

        // Chapter 06: the byte-level BPE tokenizer and the Eagle chat prompt.
        .target(name: "Tokenizer"),

        // The umbrella.
        .target(name: "Eaglet", dependencies: ["Tensor", "SafeTensors", "Tokenizer"]),

        // Executables.
        .executableTarget(name: "eaglet", dependencies: [
            "Eaglet", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "eaglet-bench", dependencies: [
            "Eaglet", "_CBLAS", "_CLAPACKE",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Test support: one assertClose, the tolerance table, the fixture loader, the notebook runner.
        .target(name: "_TestSupport", dependencies: ["Tensor", "SafeTensors"]),

        // Chapters as tests: a tool that turns Chapters/*.md into one Swift Testing test per chapter,
        // driven by a build-tool plugin.
        .executableTarget(name: "_ChapterGen"),
        .plugin(name: "ChapterTestsPlugin", capability: .buildTool(), dependencies: ["_ChapterGen"]),

        .testTarget(name: "TestSupportTests", dependencies: ["_TestSupport"]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "_TestSupport"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "_TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "Tensor", "_TestSupport"]),
        .testTarget(
            name: "ChapterTests",
            dependencies: ["Eaglet", "_TestSupport"],
            plugins: ["ChapterTestsPlugin"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
