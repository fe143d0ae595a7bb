import Foundation
import TesseraEngine
import TesseraData
import TesseraModels
import TesseraNN

/// Everything a training run depends on; saved as `config.json` in the run folder and in every checkpoint.
public struct TrainingConfig: Codable, Equatable, Sendable {
    public var images: String
    public var masks: String
    /// `auto` (0/255 masks are binary, others label PNGs), `binary`, `label` or `palette`.
    public var maskKind: String = "auto"
    /// Declared class count; found from the masks when nil.
    public var classes: Int?
    public var model: String = "unet"
    public var depth: Int = 4
    public var width: Int = 32
    public var batchNorm: Bool = true
    /// Training steps; when nil, `epochs` passes over the training pairs.
    public var steps: Int?
    public var epochs: Int?
    public var batch: Int = 4
    public var crop: Int = 256
    public var learningRate: Double = 1e-3
    /// `adam`, `adamw` or `sgd`.
    public var optimizer: String = "adam"
    public var momentum: Double = 0.9
    public var nesterov: Bool = false
    public var weightDecay: Double = 0
    public var schedule: LearningRateSchedule = LearningRateSchedule()
    public var loss: SegmentationLoss = .ce
    public var clipNorm: Double?
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
    public var bestMetric: String = "mean_dice"
    /// Stop after this many validations without improvement.
    public var patience: Int?

    public init(images: String, masks: String) {
        self.images = images
        self.masks = masks
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
        switch optimizer.lowercased() {
        case "adam": return Adam(parameters, learningRate: lr, weightDecay: wd)
        case "adamw": return Adam(parameters, learningRate: lr, weightDecay: wd == 0 ? 0.01 : wd, decoupled: true)
        case "sgd": return SGD(parameters, learningRate: lr, momentum: Float(momentum), weightDecay: wd, nesterov: nesterov)
        default: throw TrainingError(reason: "unknown optimizer '\(optimizer)' (adam, adamw, sgd)")
        }
    }
}

/// A training run that cannot start or go on, and why.
public struct TrainingError: Error, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}
