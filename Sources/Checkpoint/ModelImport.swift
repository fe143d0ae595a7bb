import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN

/// A model trained elsewhere, made a Tessera checkpoint: a PyTorch `state_dict` saved with
/// `safetensors.torch.save_file` (segmentation_models_pytorch's `Unet(encoder_name="resnetN")`, or Tessera's own
/// U-Net layout) plus what the weights do not say (classes, names, normalisation, default tile). The result loads in
/// `segment`, `eval` and `explain` like a trained one; it carries no optimizer state and no training recipe.
public struct ModelImport {
    public var architecture: Architecture
    public var inChannels: Int
    public var classes: Int
    /// smp's `decoder_channels` (ResNet U-Net only; smp's default).
    public var decoderChannels = [256, 128, 64, 32, 16]
    /// Tessera U-Net options (plain U-Net only), by default those `tessera train` uses.
    public var unetDepth = UNetOptions().depth, unetWidth = UNetOptions().width
    public var unetBatchNorm = UNetOptions().batchNorm
    public var upsampling = UNetConfig.Upsampling.transposed, padding = UNetConfig.ConvPadding.same
    /// Class names (default `class0`, `class1`, ...).
    public var classNames: [String]?
    /// Per-channel normalisation the model was trained with, on samples scaled to [0, 1] (default: ImageNet's for
    /// three channels, as smp's encoders expect; 0.5 / 0.25 otherwise).
    public var mean: [Float]?, std: [Float]?
    /// Default inference tile (the training crop's default).
    public var crop = CheckpointInfo.defaultCrop

    public init(architecture: Architecture, inChannels: Int, classes: Int) {
        self.architecture = architecture
        self.inChannels = inChannels
        self.classes = classes
    }

    /// The network the weights are for.
    public func network() throws -> NetworkSpec {
        var unet = UNetOptions()
        unet.depth = unetDepth
        unet.width = unetWidth
        unet.batchNorm = unetBatchNorm
        unet.upsampling = upsampling
        unet.padding = padding
        do {
            return try NetworkSpec.make(
                architecture, inChannels: inChannels, classes: classes, unet: unet, decoderChannels: decoderChannels)
        } catch let error as NetworkSpecError {
            throw ModelImportError(reason: error.reason)
        }
    }

    /// The checkpoint's metadata; every field checked as a checkpoint read from disk is.
    public func info() throws -> CheckpointInfo {
        let defaults = PretrainedNormalization.meanStd(channels: inChannels)
        let info = CheckpointInfo(
            network: try network(),
            classNames: classNames ?? (0..<classes).map { "class\($0)" },
            classColors: CheckpointInfo.vocColors(classes), maskKind: "label",
            normalizationMean: mean ?? defaults.mean, normalizationStd: std ?? defaults.std,
            crop: crop)
        do { try info.validate() } catch { throw ModelImportError(reason: "\(error)") }
        return info
    }

    /// Reads the state dict at `weights`, checks it against the network key by key and writes the checkpoint to
    /// `out` (atomically). Missing, unexpected and mis-shaped keys are all listed by name; `num_batches_tracked`
    /// (a counter PyTorch keeps beside batch-norm statistics) is ignored either way.
    public func run(weights: URL, out: URL) throws {
        let info = try info()
        var generator = RandomGenerator(seed: 0)
        let model = try info.network.buildModule(generator: &generator)
        let file = try SafeTensorsFile(contentsOf: weights)
        var state: [String: Tensor] = [:]
        for name in file.names { state[name] = try file.tensor(name) }
        let report = try model.load(state, strict: false).ignoringCounters()
        guard report.isClean else {
            throw FileError(
                file: weights.path,
                reason:
                    "does not fit \(info.arch) with \(inChannels) input channel(s) and \(classes) classes: \(report)")
        }
        for (name, tensor) in state.sorted(by: { $0.key < $1.key }) {
            if let bad = tensor.scalars.first(where: { !$0.isFinite }) {
                throw FileError(file: weights.path, reason: "\(name) holds \(bad) (non-finite weights)")
            }
        }
        try Checkpoint.write(model: model, optimizer: nil, info: info, to: out)
    }
}

/// Import settings that describe no valid checkpoint (the architecture, classes, normalisation), and why; a weights
/// file that does not fit them is a `FileError` naming it.
public struct ModelImportError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
