import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraNN

/// What a training run does differently for a segmenter and a classifier: its data, its network, the loss of a
/// batch and the validation scores. `TrainRun` keeps the rest (steps, schedule, data parallelism, checkpoints,
/// best and patience, resume) for both, once.
protocol TrainingTask {
    /// The network, built from the run's seed and started from its pretrained weights, if any.
    var model: Module { get }
    /// The parameters the optimizer steps (all but a frozen encoder's).
    var trainable: [Tensor] { get }
    /// The checkpoint metadata at step 0.
    var info: CheckpointInfo { get }
    /// What the data resolved to, saved in the run's configuration.
    var classes: Int { get }
    var validationNames: [String] { get }
    var trainingSamples: Int { get }
    var batchesPerEpoch: Int { get }
    /// The metrics the progress line shows beside the best metric.
    var progressKeys: [String] { get }

    func batches(epoch: Int, from start: Int) -> AnyIterator<Result<TrainingBatch, Error>>
    /// Whether the network normalises with batch statistics, and the values per channel one image leaves at its
    /// deepest level (batch norm needs more than one in a batch).
    var usesBatchNorm: Bool { get }
    var deepest: Int { get }
    /// The forward pass and the loss of `batch`, ready for `backward()`.
    func loss(_ batch: TrainingBatch) -> Tensor
    /// The validation scores of this rank's share, added up over the ranks, and the samples that failed.
    func validate(_ parallel: DataParallel) throws -> (metrics: [String: Double], failures: [Error])
}

extension TrainingTask {
    /// Whether `batch` can train the network (batch norm needs more than one value per channel).
    func canTrain(_ batch: TrainingBatch) -> Bool { !(usesBatchNorm && batch.images.shape[0] * deepest <= 1) }
}

/// One step's samples, whichever the task: images [N, C, S, S] and their targets (label maps [N, H, W] or class
/// ids [N]), with the samples that could not be read.
struct TrainingBatch {
    let images: Tensor
    let targets: Tensor
    let skipped: [Error]

    /// A loader's batches as training batches.
    static func stream<B: LabelledBatch>(_ batches: AnyIterator<Result<B, Error>>) -> AnyIterator<Result<Self, Error>> {
        AnyIterator {
            batches.next().map { $0.map { TrainingBatch(images: $0.images, targets: $0.labels, skipped: $0.skipped) } }
        }
    }
}

/// A loader's batch: images, their labels (maps or class ids) and the samples left out.
protocol LabelledBatch {
    var images: Tensor { get }
    var labels: Tensor { get }
    var skipped: [Error] { get }
}

extension SegmentationBatch: LabelledBatch {}
extension ClassificationBatch: LabelledBatch {}

extension TrainingConfig {
    /// The task object that trains this configuration on this rank.
    func makeTask(rank: Int, of size: Int) throws -> any TrainingTask {
        switch trainedTask {
        case .segment: return try SegmenterTraining(self, rank: rank, of: size)
        case .classify: return try ClassifierTraining(self, rank: rank, of: size)
        }
    }
}

extension TrainingConfig {
    /// The parameters of `model` the optimizer steps: with `freezeEncoder`, those the pretrained weights did not
    /// give (`isPretrained` false), the others taken out of the gradient (`requiresGrad` off).
    func trainableParameters(of model: Module, isPretrained: (String) -> Bool) -> [Tensor] {
        guard freezeEncoder == true else { return model.parameters }
        var trainable: [Tensor] = []
        for (name, tensor) in model.namedParameters() {
            if isPretrained(name) { tensor.requiresGrad = false } else { trainable.append(tensor) }
        }
        return trainable
    }
}
