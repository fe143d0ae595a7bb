import Foundation
import TesseraData
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
    public var unetDepth = TrainingConfig.defaults.depth, unetWidth = TrainingConfig.defaults.width
    public var unetBatchNorm = TrainingConfig.defaults.batchNorm
    public var upsampling = UNetConfig.Upsampling.transposed, padding = UNetConfig.ConvPadding.same
    /// Class names (default `class0`, `class1`, ...).
    public var classNames: [String]?
    /// Per-channel normalisation the model was trained with, on samples scaled to [0, 1] (default: ImageNet's for
    /// three channels, as smp's encoders expect; 0.5 / 0.25 otherwise).
    public var mean: [Float]?, std: [Float]?
    /// Default inference tile (the training crop's default).
    public var crop = TrainingConfig.defaults.crop

    public init(architecture: Architecture, inChannels: Int, classes: Int) {
        self.architecture = architecture
        self.inChannels = inChannels
        self.classes = classes
    }

    /// The network the weights are for.
    public func network() throws -> NetworkSpec {
        func fail(_ reason: String) -> ModelImportError { ModelImportError(file: nil, reason: reason) }
        guard NetworkLimits.inChannels.contains(inChannels) else {
            throw fail("--in-channels must be \(NetworkLimits.inChannels), is \(inChannels)")
        }
        guard NetworkLimits.classes.contains(classes) else {
            throw fail("--classes must be \(NetworkLimits.classes), is \(classes)")
        }
        guard let encoder = architecture.resnetEncoder else {
            guard NetworkLimits.unetDepth.contains(unetDepth), NetworkLimits.unetWidth.contains(unetWidth) else {
                throw fail("U-Net depth must be \(NetworkLimits.unetDepth) and width \(NetworkLimits.unetWidth)")
            }
            return NetworkSpec(
                unet: UNetConfig(
                    inChannels: inChannels, classes: classes, depth: unetDepth,
                    width: unetWidth, batchNorm: unetBatchNorm, upsampling: upsampling,
                    padding: padding))
        }
        guard decoderChannels.count == 5, decoderChannels.allSatisfy({ NetworkLimits.decoderChannels.contains($0) })
        else {
            throw fail(
                "--decoder-channels takes five values 1-4096 (smp's default 256,128,64,32,16), has \(decoderChannels)")
        }
        return NetworkSpec(
            resnetUNet: ResNetUNetConfig(
                encoder: encoder, inChannels: inChannels, classes: classes,
                decoderChannels: decoderChannels))
    }

    /// The checkpoint's metadata; every field checked as a checkpoint read from disk is.
    public func info() throws -> CheckpointInfo {
        let defaults = IntensityNormalization.pretrainedDefaults(channels: inChannels)
        let info = CheckpointInfo(
            network: try network(),
            classNames: classNames ?? (0..<classes).map { "class\($0)" },
            classColors: CheckpointInfo.vocColors(classes), maskKind: MaskEncoding.label.rawValue,
            normalizationMean: mean ?? defaults.mean, normalizationStd: std ?? defaults.std,
            crop: crop)
        do { try info.validate() } catch { throw ModelImportError(file: nil, reason: "\(error)") }
        return info
    }

    /// Reads the state dict at `weights`, checks it against the network key by key and writes the checkpoint to
    /// `out` (atomically). Missing, unexpected and mis-shaped keys are all listed by name; `num_batches_tracked`
    /// (a counter PyTorch keeps beside batch-norm statistics) is ignored either way.
    public func run(weights: URL, out: URL) throws {
        let info = try info()
        var generator = RandomGenerator(seed: 0)
        let model = try info.network.build(generator: &generator)
        let file = try SafeTensorsFile(contentsOf: weights)
        func ignored(_ name: String) -> Bool { name.hasSuffix("num_batches_tracked") }
        let own = model.stateDict().filter { !ignored($0.name) }
        let fileNames = Set(file.names.filter { !ignored($0) })
        let shapes = Dictionary(file.entries.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        let missing = own.map(\.name).filter { !fileNames.contains($0) }
        let unexpected = fileNames.subtracting(own.map(\.name)).sorted()
        let misshaped = own.compactMap { entry -> String? in
            guard let shape = shapes[entry.name], shape != entry.tensor.shape else { return nil }
            return "\(entry.name) (file \(shape), model \(entry.tensor.shape))"
        }
        var problems: [String] = []
        func list(_ what: String, _ names: [String]) {
            guard !names.isEmpty else { return }
            let shown = names.prefix(20).joined(separator: ", ")
            problems.append("\(names.count) \(what): \(shown)" + (names.count > 20 ? ", ..." : ""))
        }
        list("missing", missing)
        list("unexpected", unexpected)
        list("mis-shaped", misshaped)
        guard problems.isEmpty else {
            throw ModelImportError(
                file: weights.path,
                reason: "does not fit \(info.arch) with \(inChannels) input "
                    + "channel(s) and \(classes) classes: " + problems.joined(separator: "; "))
        }
        var state: [String: Tensor] = [:]
        for entry in own {
            let tensor = try file.tensor(entry.name)
            if let bad = tensor.scalars.first(where: { !$0.isFinite }) {
                throw ModelImportError(file: weights.path, reason: "\(entry.name) holds \(bad) (non-finite weights)")
            }
            state[entry.name] = tensor
        }
        _ = try model.load(state, strict: false)
        try Checkpoint.write(model: model, optimizer: nil, info: info, training: nil, to: out)
    }
}

/// Weights that cannot become a checkpoint, and why.
public struct ModelImportError: Error, CustomStringConvertible {
    public let file: String?
    public let reason: String
    public var description: String { (file.map { "\($0): " } ?? "") + reason }
}
