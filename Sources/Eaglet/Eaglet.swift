// Eaglet: the umbrella module. `import Eaglet` brings every component along the data path.
// Every component module (Tensor, SafeTensors, Imaging, Tiler, PatchEmbed, SigLIP2, Connector, Tokenizer,
// QwenAttention, Qwen2, Eagle, Video, ADS, EagleVideo, FusedKernels, ContextParallel, Figures, Synth, Train,
// EagletGPU) is re-exported; Serve, the HTTP server, is not (it is the eaglet executable's).
@_exported import Tensor
@_exported import SafeTensors
@_exported import Imaging
@_exported import Tiler
@_exported import PatchEmbed
@_exported import SigLIP2
@_exported import Connector
@_exported import QwenAttention
@_exported import Qwen2
@_exported import Tokenizer
@_exported import Eagle
@_exported import ContextParallel
@_exported import Video
@_exported import ADS
@_exported import EagleVideo
@_exported import FusedKernels
@_exported import Figures
@_exported import Synth
@_exported import Train
@_exported import EagletGPU

/// The version of the Eaglet library.
public let eagletVersion = "0.1.0"
