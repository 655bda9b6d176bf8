// swift-tools-version:6.0
// Eaglet: NVIDIA Eagle 2.5 rebuilt from scratch in Swift as a reference and teaching implementation.
//
// One small module per component, ordered along the data path (docs/architecture.md):
//   Tensor, SafeTensors  →  Imaging, Tiler, PatchEmbed, SigLIP2, Connector, Tokenizer,
//   QwenAttention, Qwen2, Eagle, Video, ADS, EagleVideo, FusedKernels, ContextParallel, Figures, EagletGPU
// `Eaglet` re-exports them all. `_`-prefixed targets are internals (C bindings, test support, tools).
// `Serve` (the OpenAI-compatible HTTP server, on Hummingbird) is the `eaglet` executable's alone: neither the
// umbrella nor the static `eaglet-gpu` carries the server packages.
import PackageDescription

let package = Package(
    name: "Eaglet",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Eaglet", targets: ["Eaglet"]),
        .executable(name: "eaglet", targets: ["eaglet"]),
        .executable(name: "eaglet-bench", targets: ["eaglet-bench"]),
        .executable(name: "eaglet-gpu", targets: ["eaglet-gpu"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The server's HTTP stack (Serve only): Hummingbird 2 on SwiftNIO, its logger and its service lifecycle.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0")
    ],
    targets: [
        // C libraries from Debian (libopenblas-dev, liblapacke-dev).
        .systemLibrary(name: "_CBLAS", path: "Sources/_CBLAS"),
        .systemLibrary(name: "_CLAPACKE", path: "Sources/_CLAPACKE"),

        // Chapter 01: tensors, the BLAS binding, safetensors.
        .target(name: "Tensor", dependencies: ["_CBLAS", "_CKernels"]),
        // The kernels whose vector path (AVX-512, AVX2, plain C) is chosen at run time: BF16 gemv and widening, q8_0.
        .target(name: "_CKernels"),
        // What Eaglet needs beyond FoundationEssentials (JSON tree reader, paths, printf formatting, a lock), so the
        // modules eaglet-gpu links carry no ICU.
        .target(name: "_Essentials"),
        .target(name: "SafeTensors", dependencies: ["Tensor", "_Essentials"]),

        // Chapter 02: images in, tiles out. libpng and libjpeg-turbo from Debian (libpng-dev,
        // libjpeg62-turbo-dev) behind a C shim that turns their longjmp error paths into status codes.
        .target(name: "_ImageCodecs", linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        .target(name: "Imaging", dependencies: ["Tensor", "_ImageCodecs", "_Essentials"]),
        .target(name: "Tiler", dependencies: ["Tensor", "Imaging"]),

        // Chapters 03–04: the vision tower (patch embedding, SigLIP2 encoder blocks).
        .target(name: "PatchEmbed", dependencies: ["Tensor"]),
        .target(name: "SigLIP2", dependencies: ["Tensor", "SafeTensors", "PatchEmbed", "_Essentials", "_CKernels"]),

        // Chapter 05: pixel shuffle and the mlp1 projector.
        .target(name: "Connector", dependencies: ["Tensor", "SafeTensors"]),
        // Chapter 07: RoPE, grouped-query attention (naive and blockwise with LSE), the KV cache.
        .target(name: "QwenAttention", dependencies: ["Tensor", "_CBLAS", "_CKernels"]),
        // Chapter 08: the Qwen2 decoder, its config and weight loader, greedy generation.
        .target(name: "Qwen2", dependencies: ["Tensor", "SafeTensors", "QwenAttention", "_Essentials"]),

        // Chapter 13: context parallelism (ring, zigzag, llama3, Ulysses, USP) over threads or Open MPI
        // (libmpi is dlopened at run time, so nothing links it).
        .target(name: "ContextParallel", dependencies: ["Tensor", "QwenAttention", "Qwen2", "_Essentials"]),

        // Chapter 06: the byte-level BPE tokenizer and the Eagle chat prompt.
        .target(name: "Tokenizer", dependencies: ["_Essentials"]),

        // Chapter 09: the whole model, the checkpoint check, sampling and the pipeline from files to text.
        .target(
            name: "Eagle",
            dependencies: [
                "Tensor", "SafeTensors", "Imaging", "Tiler", "SigLIP2", "Connector",
                "QwenAttention", "Qwen2", "Tokenizer", "_Essentials", "_CKernels"
            ]),

        // Chapter 15: real size — a seeded random checkpoint in the released layout, streamed to disk (eaglet synth).
        .target(name: "Synth", dependencies: ["Eagle", "Qwen2", "SigLIP2", "SafeTensors", "Tokenizer", "_Essentials"]),

        // Chapter 16: training — backward through every part, AdamW, packed steps.
        .target(
            name: "Train",
            dependencies: [
                "Eagle", "Qwen2", "QwenAttention", "SigLIP2", "PatchEmbed", "Connector", "FusedKernels", "SafeTensors",
                "Tensor", "Tokenizer", "Tiler", "Imaging", "_Essentials"
            ]),

        // The umbrella.
        .target(
            name: "Eaglet",
            dependencies: [
                "Tensor", "SafeTensors", "Imaging", "Tiler", "PatchEmbed", "SigLIP2", "Connector", "QwenAttention",
                "Qwen2", "Tokenizer", "Eagle", "ContextParallel", "Video", "ADS", "EagleVideo", "FusedKernels",
                "Figures",
                "Synth", "EagletGPU", "Train"
            ]),
        // Chapter 10: video files through FFmpeg's libraries from Debian (libavformat-dev, libavcodec-dev,
        // libswscale-dev, libavutil-dev) behind a C shim for AVERROR and the other function-like macros.
        .target(
            name: "_CFFmpeg",
            linkerSettings: [
                .linkedLibrary("avformat"), .linkedLibrary("avcodec"), .linkedLibrary("swscale"),
                .linkedLibrary("avutil")
            ]),
        .target(name: "Video", dependencies: ["Imaging", "_CFFmpeg"]),
        // Chapter 11: Automatic Degrade Sampling, packing and the progressive context schedule.
        .target(name: "ADS", dependencies: ["Tiler"]),
        // Chapter 11: a video in the prompt — frames chosen by the sampling policy, fitted to the context with ADS
        // (eaglet generate --video, eaglet serve's video_url).
        .target(name: "EagleVideo", dependencies: ["Eagle", "Video", "ADS", "Tiler", "Tokenizer", "Imaging", "Tensor"]),

        // Chapter 17: serving — an OpenAI-compatible chat server (HTTP, server-sent events, one generation at a time).
        .target(
            name: "Serve",
            dependencies: [
                "Eagle", "EagleVideo", "Video", "ADS", "Imaging", "Qwen2", "Tokenizer", "Tensor", "_Essentials",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio")
            ]),

        // Chapter 12: the kernel lab — naive vs fused forward and backward (RMSNorm, SwiGLU/MLP, RoPE,
        // linear + cross-entropy, attention backward) with a memory ledger.
        .target(name: "FusedKernels", dependencies: ["Tensor", "QwenAttention", "_CBLAS"]),

        // Chapter figures (ADS budget plot, kernel line plots, CP rank pictures): the only place besides the pipeline
        // that writes PNGs.
        .target(name: "Figures", dependencies: ["Imaging", "ADS", "ContextParallel"]),

        // Chapter 14: the GPU mirror (CUDA driver, NVRTC and cuBLAS bound at run time with dlopen, so it
        // builds and its no-GPU path is tested everywhere) and the GPU subcommands shared by both CLIs.
        // NCCL is dlopened as well (NCCL.swift); its ncclCommInitRank takes a 128-byte struct by value, which only the
        // C shim `_CNCCL` can pass. ContextParallel supplies the schemes that `eaglet-gpu cp` runs over NCCL.
        .target(name: "_CNCCL"),
        .target(
            name: "EagletGPU",
            dependencies: [
                "Tensor", "Imaging", "PatchEmbed", "SigLIP2", "Connector", "QwenAttention", "Qwen2", "Eagle",
                "ContextParallel", "_Essentials", "_CNCCL"
            ]),
        .target(
            name: "_GPUCommands",
            dependencies: [
                "EagletGPU", "ContextParallel", "Eagle", "Imaging", "Qwen2", "Synth", "Tensor", "_Essentials",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),

        // Executables.
        .executableTarget(
            name: "eaglet",
            dependencies: [
                "Eaglet", "Serve", "_GPUCommands", "_Essentials",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        // The self-contained GPU executable: no Video, MPI or the other chapters (make gpu-binary).
        .executableTarget(
            name: "eaglet-gpu",
            dependencies: [
                "_GPUCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        .executableTarget(
            name: "eaglet-bench",
            dependencies: [
                "Eaglet", "Serve", "_CBLAS", "_CLAPACKE", "_Essentials",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
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
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "_TestSupport"]),
        .testTarget(name: "TilerTests", dependencies: ["Tiler", "Imaging", "_TestSupport"]),
        .testTarget(name: "PatchEmbedTests", dependencies: ["PatchEmbed", "_TestSupport"]),
        .testTarget(name: "SigLIP2Tests", dependencies: ["SigLIP2", "PatchEmbed", "SafeTensors", "_TestSupport"]),
        .testTarget(name: "ConnectorTests", dependencies: ["Connector", "_TestSupport"]),
        .testTarget(name: "QwenAttentionTests", dependencies: ["QwenAttention", "_TestSupport"]),
        .testTarget(name: "Qwen2Tests", dependencies: ["Qwen2", "QwenAttention", "_TestSupport"]),
        .testTarget(
            name: "EagleTests",
            dependencies: ["Eagle", "Qwen2", "QwenAttention", "SigLIP2", "SafeTensors", "_TestSupport"]),
        .testTarget(
            name: "ContextParallelTests",
            dependencies: ["ContextParallel", "QwenAttention", "Qwen2", "SafeTensors", "Tensor", "_TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "Tensor", "_TestSupport"]),
        .testTarget(name: "VideoTests", dependencies: ["Video", "Imaging", "SafeTensors", "Tensor", "_TestSupport"]),
        .testTarget(name: "ADSTests", dependencies: ["ADS", "_TestSupport"]),
        .testTarget(
            name: "EagletGPUTests",
            dependencies: ["EagletGPU", "ContextParallel", "Eagle", "QwenAttention", "Tensor", "_TestSupport"]),
        .testTarget(name: "FusedKernelsTests", dependencies: ["FusedKernels", "QwenAttention", "_TestSupport"]),
        .testTarget(
            name: "TrainTests", dependencies: ["Train", "Eagle", "SafeTensors", "Tensor", "Imaging", "_TestSupport"]),
        // Hand-made bad files, each answered by its specific typed error; the CLI on bad input (docs/robustness.md).
        .testTarget(
            name: "RobustnessTests",
            dependencies: [
                "SafeTensors", "Imaging", "Tokenizer", "Qwen2", "SigLIP2", "Eagle", "Video", "ADS", "_TestSupport"
            ]),
        // eaglet serve as its clients see it: the openai Python client, plain HTTP for every bad request, signals.
        .testTarget(name: "ServeTests", dependencies: ["Serve", "Eagle", "_TestSupport"], exclude: ["clients"]),
        .testTarget(
            name: "ChapterTests",
            dependencies: ["Eaglet", "Serve", "_TestSupport"],
            plugins: ["ChapterTestsPlugin"]
        )
    ],
    swiftLanguageModes: [.v6]
)
