import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraNN
import TesseraObjects

/// A checkpoint's metrics on a folder of image/mask pairs.
public enum Evaluation {
    public struct Report {
        public let pairs: Int
        public let metrics: [String: Double]
        public let failures: [Error]
    }

    /// Metrics of the checkpoint's predictions, by default through the sliding window `tessera segment` uses
    /// (tiles of the training crop, 50% overlap, gaussian blending).
    /// With `instances`, the object scores (`rand_error`, `vi_split`, `vi_merge`, `object_f1_50`,
    /// `average_precision`, ...) join the pixel metrics, as means over the pairs.
    public static func run(
        checkpoint: URL, images: URL, masks: URL, inference: TiledInference? = nil,
        instances: InstanceSettings? = nil, truth: TruthKind = .classes
    ) throws -> Report {
        let loaded = try Checkpoint.load(checkpoint)
        let info = loaded.info
        guard let kind = MaskKind(name: info.maskKind) else {
            throw TrainingError(reason: "\(checkpoint.path): unknown mask kind '\(info.maskKind)' in the checkpoint")
        }
        let objectTruth = truth == .objects
        if objectTruth && instances == nil {
            throw TrainingError(reason: "object truth masks score objects: ask for --instances too")
        }
        var dataset = try SegmentationDataset(
            images: images, masks: masks, maskKind: objectTruth ? .label : kind,
            classes: objectTruth ? nil : info.classes)
        dataset.channels = loaded.model.inChannels
        let (matrix, failures, objects) = SegmentationInference.evaluate(
            loaded.model, on: dataset, classes: info.classes,
            mean: info.normalizationMean, std: info.normalizationStd,
            inference: inference ?? TiledInference(tile: info.crop), instances: instances, objectTruth: objectTruth)
        return Report(
            pairs: dataset.pairs.count - failures.count,
            metrics: (objectTruth ? [:] : matrix.summary).merging(SegmentationAgreement.mean(objects)) { $1 },
            failures: failures)
    }
}
