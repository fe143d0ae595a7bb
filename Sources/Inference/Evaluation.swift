import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraNN
import TesseraObjects
import TesseraSettings

/// A checkpoint's metrics on a folder of image/mask pairs.
public enum Evaluation {
    public struct Report {
        public let pairs: Int
        public let metrics: [String: Double]
        public let failures: [Error]
        /// Per `--fgsm` epsilon: the metrics of the perturbed images (`mean_dice`, ...).
        public var attacked: [(epsilon: Double, metrics: [String: Double])] = []
    }

    /// Metrics of the checkpoint's predictions, by default through the sliding window `tessera segment` uses
    /// (tiles of the training crop, 50% overlap, gaussian blending).
    /// With `instances`, the object scores (`rand_error`, `vi_split`, `vi_merge`, `object_f1_50`,
    /// `average_precision`, ...) join the pixel metrics, as means over the pairs.
    public static func run(
        checkpoint: URL, images: URL, masks: URL, inference: TiledInference? = nil,
        instances: InstanceSettings? = nil, truth: TruthKind = .classes
    ) throws -> Report {
        var options = EvalOptions()
        options.objects.settings = instances
        options.objects.truth = truth
        return try run(checkpoint: checkpoint, images: images, masks: masks, options: options, inference: inference)
    }

    /// Metrics of the checkpoint's predictions with `options` (`inference`, when given, in place of the window
    /// options).
    public static func run(
        checkpoint: URL, images: URL, masks: URL, options: EvalOptions, inference: TiledInference? = nil
    ) throws -> Report {
        try options.validate()
        let instances = options.objects.settings, truth = options.objects.truth
        let loaded = try Checkpoint.load(checkpoint)
        let info = loaded.info
        let kind = try info.maskKind(file: checkpoint)
        let objectTruth = truth == .objects
        var dataset = try SegmentationDataset(
            images: images, masks: masks, maskKind: objectTruth ? .label : kind,
            classes: objectTruth ? nil : info.classes)
        dataset.channels = loaded.model.inChannels
        let (matrix, failures, objects) = SegmentationInference.evaluate(
            loaded.model, on: dataset, classes: info.classes,
            mean: info.normalizationMean, std: info.normalizationStd,
            inference: inference ?? options.window.inference(crop: info.crop), instances: instances,
            objectTruth: objectTruth)
        var report = Report(
            pairs: dataset.pairs.count - failures.count,
            metrics: (objectTruth ? [:] : matrix.summary).merging(SegmentationAgreement.mean(objects)) { $1 },
            failures: failures)
        for epsilon in options.fgsm ?? [] {
            guard !objectTruth else {
                throw OptionError(option: "fgsm", reason: "scores class masks, not object truth")
            }
            let attack = FGSM(epsilon: epsilon, mean: info.normalizationMean, std: info.normalizationStd)
            let (matrix, failures, _) = SegmentationInference.evaluate(
                loaded.model, on: dataset, classes: info.classes,
                mean: info.normalizationMean, std: info.normalizationStd,
                inference: inference ?? options.window.inference(crop: info.crop),
                attack: { sample, i in
                    try SegmentationInference.attacked(
                        sample, by: attack, model: loaded.model, file: dataset.pairs[i].image.path)
                })
            if let first = failures.first { throw first }
            report.attacked.append((epsilon, matrix.summary))
        }
        return report
    }
}

/// Settings of `tessera eval`: the sliding window and the object rules `segment` takes, and the FGSM attack,
/// declared once in `EvalOptions.table`.
public struct EvalOptions: Sendable {
    public var window = WindowOptions()
    public var objects = ObjectOptions()
    /// Epsilons (pixel units, images in [0, 1]) of FGSM attacks to score the model under.
    public var fgsm: [Double]?
    /// Folder for the evaluation's files: `metrics.json`, `confusion.csv` (classification) and, with
    /// `writePerturbed`, the FGSM images under `fgsm-<eps>/`.
    public var out: URL?
    public var writePerturbed = false

    public init() {}

    public static let defaults = EvalOptions()

    /// Every option of `tessera eval` past the model, images and masks (a command-line stage: pipelines have none).
    public static var table: OptionTable<EvalOptions> {
        OptionTable(
            stage: "eval",
            (WindowOptions.options.map { $0.lifted(\EvalOptions.window) }
                + ObjectOptions.options.map { $0.lifted(\EvalOptions.objects) } + [
                    .numbers(
                        "fgsm", \.fgsm, .closed(0, 1),
                        help:
                            "FGSM epsilons, comma-separated (pixel units, images in [0, 1]): the metrics under each attack."
                    ),
                    .path(
                        "out", \.out,
                        help:
                            "Folder for metrics.json, confusion.csv (classification) and the perturbed images (--write-perturbed)."
                    ),
                    .flag(
                        "write_perturbed", \.writePerturbed,
                        help: "Write the FGSM images of a classifier's inputs to OUT/fgsm-<eps>/ (needs --out).")
                ]).map(\.commandLineOnly))
    }

    public func validate() throws {
        try Self.table.validate(self)
        try objects.validate()
        if writePerturbed && (out == nil || fgsm == nil) {
            throw OptionError(option: "write_perturbed", reason: "needs --out and --fgsm")
        }
    }
}
