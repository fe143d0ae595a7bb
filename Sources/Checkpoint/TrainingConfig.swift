import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN

/// Everything a training run depends on; saved as `config.json` in the run folder and in every checkpoint.
public struct TrainingConfig: Codable, Equatable, Sendable {
    public var images: String
    public var masks: String
    /// `auto` (0/255 masks are binary, others label PNGs), `binary`, `label` or `palette`.
    public var maskKind: MaskEncoding = .auto
    /// Declared class count; found from the masks when nil.
    public var classes: Int?
    /// Names of the classes (default `class0`, `class1`, ...), kept in checkpoints for reports and `--class`.
    public var classNames: [String]?
    /// Input channels of the model; every image is converted to it (`Image.converted(toChannels:file:)`). When
    /// nil: the first image's colour channels (alpha dropped), and a data set that mixes layouts is refused.
    public var channels: Int?
    /// `unet` or `resnetN-unet` (N = 18, 34, 50, 101, 152).
    public var model: Architecture = .unet
    public var depth: Int = 4
    public var width: Int = 32
    public var batchNorm: Bool = true
    /// U-Net options (nil: the defaults, no dropout, transposed up-sampling, same padding).
    public var dropout: Double?
    public var upsampling: UNetConfig.Upsampling?
    public var padding: UNetConfig.ConvPadding?
    /// torchvision ResNet weights (safetensors) to start a ResNet U-Net's encoder from.
    public var encoderWeights: String?
    /// Training steps; when nil, `epochs` passes over the training pairs.
    public var steps: Int?
    public var epochs: Int?
    public var batch: Int = 4
    public var crop: Int = 256
    public var learningRate: Double = 1e-3
    public var optimizer: OptimizerKind = .adam
    public var momentum: Double = 0.9
    public var nesterov: Bool = false
    public var weightDecay: Double = 0
    public var schedule: LearningRateSchedule = LearningRateSchedule()
    public var loss: SegmentationLoss = .ce
    public var clipNorm: Double?
    /// Weight each pixel's loss with the U-Net paper's map (class balance + w0 = 10, sigma = 5 px at borders
    /// between touching objects).
    public var borderWeights: Bool?
    /// Cross-entropy weight per class (torch's `weight=`), e.g. to favour a rare class.
    public var classWeights: [Double]?
    /// Horizontal/vertical flips and rot90 after the crop.
    public var flips: Bool = true
    public var elastic: Bool = false
    public var validationFraction: Double = 0.2
    /// Validation file stems; chosen by `seed` and `validationFraction` when empty.
    public var validationNames: [String] = []
    public var seed: UInt64 = 0
    /// Validate (and checkpoint) every this many steps; 0 = every epoch, or every few epochs so that at least 50
    /// steps pass between validations.
    public var validateEvery: Int = 0
    public var bestMetric: ValidationMetric = .meanDice
    /// Stop after this many validations without improvement.
    public var patience: Int?

    /// The defaults of every setting, which the command line's options start from too (no second copy).
    public static let defaults = TrainingConfig(images: "", masks: "")

    public init(images: String, masks: String) {
        self.images = images
        self.masks = masks
    }

    /// The accepted range of each whole-number setting, stated once: `validate()`, the pipeline schema and the
    /// network checks use these.
    public enum Ranges {
        public static let batch = 1...4096
        public static let crop = 8...8192
        public static let steps = 1...100_000_000
        public static let epochs = 1...1_000_000
        public static let validateEvery = 0...100_000_000
        public static let warmup = 0...100_000_000
        public static let patience = 1...100_000
        public static let classes = NetworkLimits.classes
        public static let channels = NetworkLimits.inChannels
        public static let depth = NetworkLimits.unetDepth
        public static let width = NetworkLimits.unetWidth
    }

    /// Throws the first value out of range, named as the command-line option (`--batch must be 1-4096, is 0`):
    /// values from a command line, a pipeline file or a saved run never reach an allocation or a division.
    public func validate() throws {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw TrainingError(reason: message()) }
        }
        func check(_ value: Int?, in range: ClosedRange<Int>, _ option: String) throws {
            guard let value, !range.contains(value) else { return }
            throw TrainingError(reason: "\(option) must be \(range.lowerBound)-\(range.upperBound), is \(value)")
        }
        try check(batch, in: Ranges.batch, "--batch")
        try check(crop, in: Ranges.crop, "--crop")
        try check(steps, in: Ranges.steps, "--steps")
        try check(epochs, in: Ranges.epochs, "--epochs")
        try check(depth, in: Ranges.depth, "--depth")
        try check(width, in: Ranges.width, "--width")
        try check(
            learningRate.isFinite && learningRate > 0 && learningRate <= 10,
            "--lr must be in (0, 10], is \(learningRate)")
        try check(momentum.isFinite && (0..<1).contains(momentum), "--momentum must be in [0, 1), is \(momentum)")
        try check(
            weightDecay.isFinite && (0...1).contains(weightDecay), "--weight-decay must be in [0, 1], is \(weightDecay)"
        )
        try check(
            validationFraction.isFinite && (0..<1).contains(validationFraction),
            "--val-split must be in [0, 1), is \(validationFraction)")
        try check(validateEvery, in: Ranges.validateEvery, "--val-every")
        try check(patience, in: Ranges.patience, "--patience")
        try check(clipNorm.map { $0.isFinite && $0 > 0 } ?? true, "--clip-norm must be positive, is \(clipNorm ?? 0)")
        try check(schedule.warmupSteps, in: Ranges.warmup, "--warmup")
        try check(classes, in: Ranges.classes, "--classes")
        try check(channels, in: Ranges.channels, "--channels")
        try check(
            classWeights?.allSatisfy { $0.isFinite && $0 >= 0 } ?? true, "--class-weights must be finite and >= 0")
    }

    /// The network this configuration trains, for `channels` input channels and `classes` classes.
    public func network(channels: Int, classes: Int) throws -> NetworkSpec {
        guard let encoder = model.resnetEncoder else {
            guard encoderWeights == nil else {
                throw TrainingError(reason: "--encoder-weights needs a resnetN-unet model")
            }
            guard (0..<1).contains(dropout ?? 0) else { throw TrainingError(reason: "dropout must be in [0, 1)") }
            guard Ranges.depth.contains(depth), Ranges.width.contains(width) else {
                throw TrainingError(reason: "U-Net depth must be \(Ranges.depth) and width \(Ranges.width)")
            }
            return NetworkSpec(
                unet: UNetConfig(
                    inChannels: channels, classes: classes, depth: depth, width: width,
                    batchNorm: batchNorm, dropout: Float(dropout ?? 0),
                    upsampling: upsampling ?? .transposed, padding: padding ?? .same))
        }
        guard dropout == nil, upsampling == nil, padding == nil else {
            throw TrainingError(reason: "dropout, up-sampling and padding options apply to the plain unet only")
        }
        return NetworkSpec(resnetUNet: ResNetUNetConfig(encoder: encoder, inChannels: channels, classes: classes))
    }

    /// Total steps for `batchesPerEpoch`.
    public func totalSteps(batchesPerEpoch: Int) -> Int {
        if let steps { return steps }
        return (epochs ?? 50) * batchesPerEpoch
    }

    /// The augmentation the recipe asks for.
    public var augmentation: AugmentationPipeline {
        var steps: [any Augmentation] = [RandomCrop(size: crop)]
        if flips { steps += [HorizontalFlip(), VerticalFlip(), Rotate90()] }
        if elastic { steps.append(ElasticDeformation(gridPoints: 3, sigma: 10, probability: 0.5)) }
        return AugmentationPipeline(steps)
    }

    /// The optimizer over `parameters`.
    public func makeOptimizer(_ parameters: [Tensor]) throws -> Optimizer {
        let lr = Float(learningRate), wd = Float(weightDecay)
        switch optimizer {
        case .adam: return Adam(parameters, learningRate: lr, weightDecay: wd)
        case .adamw: return Adam(parameters, learningRate: lr, weightDecay: wd == 0 ? 0.01 : wd, decoupled: true)
        case .sgd:
            return SGD(parameters, learningRate: lr, momentum: Float(momentum), weightDecay: wd, nesterov: nesterov)
        }
    }
}

/// A training run that cannot start or go on, and why.
public struct TrainingError: Error, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}
