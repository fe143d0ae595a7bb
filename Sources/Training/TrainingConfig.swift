import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN
import TesseraSettings

/// Everything a training run depends on; saved as `config.json` in the run folder and in every checkpoint.
public struct TrainingConfig: Codable, Equatable, Sendable {
    /// Segmentation (nil, the default) or classification.
    public var task: NetworkTask?
    /// Images: beside `masks` for segmentation; class sub-folders or a `path,label` CSV for classification.
    public var images: String
    /// Masks named like the images (segmentation only).
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
    /// `unet` or `resnetN-unet` (N = 18, 34, 50, 101, 152) for segmentation, `lenet5` or `resnetN` for
    /// classification.
    public var model: Architecture = .unet
    public var depth: Int = UNetOptions().depth
    public var width: Int = UNetOptions().width
    public var batchNorm: Bool = UNetOptions().batchNorm
    /// U-Net options (nil: the defaults, no dropout, transposed up-sampling, same padding).
    public var dropout: Double?
    public var upsampling: UNetConfig.Upsampling?
    public var padding: UNetConfig.ConvPadding?
    /// torchvision ResNet weights (safetensors) to start a ResNet U-Net's encoder, or a ResNet classifier, from.
    public var encoderWeights: String?
    /// Train only what the weights did not give: the decoder of a ResNet U-Net, the `fc` layer of a classifier.
    public var freezeEncoder: Bool?
    /// Training steps; when nil, `epochs` passes over the training pairs.
    public var steps: Int?
    public var epochs: Int?
    public var batch: Int = 4
    /// The random crop (segmentation) or the input edge (classification); nil: the model's default
    /// (`Architecture.defaultInputSize`).
    public var crop: Int?
    public var learningRate: Double = 1e-3
    public var optimizer: OptimizerKind = .adam
    public var momentum: Double = 0.9
    public var nesterov: Bool = false
    public var weightDecay: Double = 0
    public var schedule: LearningRateSchedule = LearningRateSchedule()
    public var loss: SegmentationLoss = .ce
    /// Cross-entropy label smoothing (torch's `label_smoothing`, classification).
    public var labelSmoothing: Double?
    public var clipNorm: Double?
    /// Weight each pixel's loss with the U-Net paper's map (class balance + w0 = 10, sigma = 5 px at borders
    /// between touching objects).
    public var borderWeights: Bool?
    /// Cross-entropy weight per class (torch's `weight=`), e.g. to favour a rare class.
    public var classWeights: [Double]?
    /// Horizontal/vertical flips and rot90 after the crop.
    public var flips: Bool = true
    public var elastic: Bool = false
    /// Brightness, contrast and gamma jitter of the image (nnU-Net's intensity augmentation; masks untouched).
    public var intensity: Bool?
    public var validationFraction: Double = 0.2
    /// Validation file stems; chosen by `seed` and `validationFraction` when empty.
    public var validationNames: [String] = []
    /// File stems kept out of training and validation alike (a test set, scored by `segment`/`eval` only).
    public var testNames: [String]?
    public var seed: UInt64 = 0
    /// Validate (and checkpoint) every this many steps; 0 = every epoch, or every few epochs so that at least 50
    /// steps pass between validations.
    public var validateEvery: Int = 0
    /// nil: `mean_dice` for segmentation, `accuracy` for classification.
    public var bestMetric: ValidationMetric?
    /// Stop after this many validations without improvement.
    public var patience: Int?

    /// The defaults of every setting, which the command line's options start from too (no second copy).
    public static let defaults = TrainingConfig(images: "", masks: "")

    /// The classification view of training images: torchvision's RandomResizedCrop (scale 0.35-1 rather than
    /// 0.08-1: small sets of small images lose their object in a 8% crop) with horizontal flips when `flips`.
    public var classificationView: ClassificationView { .randomResizedCrop(minScale: 0.8, flip: flips) }

    public init(images: String, masks: String) {
        self.images = images
        self.masks = masks
    }

    /// Throws the first value out of its range (`batch must be 1-4096, is 0`, ranges from `table`): values from a
    /// command line, a pipeline file or a saved run never reach an allocation or a division.
    public func validate() throws {
        try Self.table.validate(self)
        let classify = trainedTask == .classify
        guard model.task == trainedTask else {
            throw TrainingError(
                reason:
                    "--model \(model.rawValue) does not \(trainedTask.rawValue): --task \(trainedTask.rawValue) takes "
                    + Architecture.names(of: trainedTask))
        }
        if classify ? !scoredBy.scoresClassification : !scoredBy.scoresSegmentation {
            throw TrainingError(
                reason:
                    "--best-metric \(scoredBy.rawValue) does not score \(classify ? "classification" : "segmentation")")
        }
        if classify {
            guard masks.isEmpty else {
                throw TrainingError(reason: "--masks is for segmentation; classes come from --images")
            }
            let segmentationOnly: [(String, Bool)] = [
                ("--border-weights", borderWeights == true), ("--elastic", elastic), ("--intensity", intensity == true),
                ("--loss \(loss.rawValue)", loss != .ce), ("--mask-kind", maskKind != .auto)
            ]
            if let (name, _) = segmentationOnly.first(where: \.1) {
                throw TrainingError(reason: "\(name) is a segmentation option")
            }
            if model == .lenet5 && cropSize != LeNet5.inputSize {
                throw TrainingError(
                    reason: "LeNet-5 takes \(LeNet5.inputSize)x\(LeNet5.inputSize) images, not --crop \(cropSize)")
            }
            if model.resnetDepth != nil && cropSize < 32 {
                throw TrainingError(reason: "a ResNet takes images of 32 pixels or more, not --crop \(cropSize)")
            }
        } else {
            guard !masks.isEmpty else { throw TrainingError(reason: "segmentation needs --masks (or --task classify)") }
            if labelSmoothing != nil { throw TrainingError(reason: "--label-smoothing is a classification option") }
        }
        if freezeEncoder == true && encoderWeights == nil {
            throw TrainingError(reason: "--freeze-encoder needs --encoder-weights (nothing pretrained to keep)")
        }
    }

    /// The task this configuration trains.
    public var trainedTask: NetworkTask { task ?? .segment }

    /// The crop or input edge, `crop` or the model's default.
    public var cropSize: Int { crop ?? model.defaultInputSize }

    /// The metric that picks `best.safetensors`.
    public var scoredBy: ValidationMetric { bestMetric ?? (trainedTask == .classify ? .accuracy : .meanDice) }

    /// The `model` section's values alone (what the network needs).
    func validateModel() throws {
        let table = Self.table
        try OptionTable(stage: table.stage, table.pipelineKeys(in: "model")).validate(self)
    }

    /// The network this configuration trains, for `channels` input channels and `classes` classes.
    public func network(channels: Int, classes: Int) throws -> NetworkSpec {
        if model.task == .classify {
            guard model.resnetDepth != nil || encoderWeights == nil else {
                throw TrainingError(reason: "--encoder-weights needs a ResNet (torchvision-named weights)")
            }
            guard dropout == nil, upsampling == nil, padding == nil else {
                throw TrainingError(reason: "dropout, up-sampling and padding options apply to the plain unet only")
            }
            do { return try NetworkSpec.make(model, inChannels: channels, classes: classes) } catch {
                throw TrainingError(reason: "\(error)")
            }
        }
        if model.resnetEncoder == nil {
            guard encoderWeights == nil else {
                throw TrainingError(reason: "--encoder-weights needs a resnetN-unet model")
            }
            try validateModel()
        } else {
            guard dropout == nil, upsampling == nil, padding == nil else {
                throw TrainingError(reason: "dropout, up-sampling and padding options apply to the plain unet only")
            }
        }
        var unet = UNetOptions()
        unet.depth = depth
        unet.width = width
        unet.batchNorm = batchNorm
        unet.dropout = dropout ?? 0
        unet.upsampling = upsampling ?? .transposed
        unet.padding = padding ?? .same
        return try NetworkSpec.make(model, inChannels: channels, classes: classes, unet: unet)
    }

    /// Total steps for `batchesPerEpoch`.
    public func totalSteps(batchesPerEpoch: Int) -> Int {
        if let steps { return steps }
        return (epochs ?? 50) * batchesPerEpoch
    }

    /// The augmentation the recipe asks for.
    public var augmentation: AugmentationPipeline {
        var steps: [any Augmentation] = [RandomCrop(size: cropSize)]
        if flips { steps += [HorizontalFlip(), VerticalFlip(), Rotate90()] }
        if elastic { steps.append(ElasticDeformation(gridPoints: 3, sigma: 10, probability: 0.5)) }
        if intensity == true { steps += [Brightness(), Contrast(), Gamma()] }
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
