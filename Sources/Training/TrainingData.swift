import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine

/// The datasets, classes, channels and normalisation a training configuration resolves to.
struct TrainingData {
    let train: SegmentationDataset
    let validation: SegmentationDataset
    let classes: Int
    let classNames: [String]
    let channels: Int
    let maskKindName: String
    let mean: [Float]
    let std: [Float]

    init(_ config: TrainingConfig) throws {
        let images = URL(fileURLWithPath: config.images), masks = URL(fileURLWithPath: config.masks)
        let probe = try SegmentationDataset(images: images, masks: masks, maskKind: .label)
        var encoding = config.maskKind
        var classes = config.classes
        if encoding == .auto {
            // 0/255 masks are binary (255 -> class 1); anything else is a label PNG.
            var values = Set<Int32>()
            for pair in probe.pairs {
                values.formUnion(try MaskDecoder(kind: .label).labels(of: pair.mask).ids)
                if !values.isSubset(of: [0, 255]) { break }
            }
            encoding = values.isSubset(of: [0, 255]) && values.contains(255) ? .binary : .label
        }
        let kindName = encoding.rawValue
        let kind = encoding.kind ?? .label  // auto was resolved to binary or label above
        if kind == .binary { classes = classes ?? 2 }
        let resolvedClasses =
            try classes ?? SegmentationDataset(images: images, masks: masks, maskKind: kind).foundClasses()
        guard resolvedClasses >= 2 else {
            throw TrainingError(reason: "the masks hold a single class; nothing to learn")
        }
        var dataset = try SegmentationDataset(images: images, masks: masks, maskKind: kind, classes: resolvedClasses)
        if let test = config.testNames, !test.isEmpty {
            let names = Set(dataset.pairs.map(\.name))
            if let missing = test.first(where: { !names.contains($0) }) {
                throw TrainingError(reason: "test_names: no image named '\(missing)' in \(images)")
            }
            dataset = dataset.split(validationNames: Set(test)).train
        }
        var split =
            config.validationNames.isEmpty
            ? dataset.split(validationFraction: config.validationFraction, seed: config.seed)
            : dataset.split(validationNames: Set(config.validationNames))
        guard !split.train.pairs.isEmpty else {
            throw TrainingError(reason: "no training pairs left after the validation split")
        }
        self.classes = resolvedClasses
        if let names = config.classNames {
            guard names.count == resolvedClasses else {
                throw TrainingError(reason: "\(names.count) class names for \(resolvedClasses) classes")
            }
            classNames = names
        } else {
            classNames = (0..<resolvedClasses).map { "class\($0)" }
        }
        maskKindName = kindName
        channels = try TrainingData.inputChannels(
            (split.train.pairs + split.validation.pairs).map(\.image), declared: config.channels)
        split.train.channels = channels
        split.validation.channels = channels
        train = split.train
        validation = split.validation
        let train = self.train
        (mean, std) = try TrainingData.statistics(count: train.pairs.count, channels: channels) {
            AugmentationSample(try train.load($0)).image
        }
    }

    /// The model's input channels: `declared` (range-checked by `TrainingConfig.validate`), or the colour channels
    /// (alpha not counted) of the first image, which every image must then share: a data set that mixes gray and
    /// colour is more often a mistake than a wish, so converting it is asked for with `--channels`. Read from the
    /// headers, before any pixel is decoded.
    static func inputChannels(_ images: [URL], declared: Int?) throws -> Int {
        if let declared { return declared }
        let first = try ImageCodec.info(of: images[0]).colorChannels
        for image in images.dropFirst() {
            let these = try ImageCodec.info(of: image).colorChannels
            guard these == first else {
                throw TrainingError(
                    reason: "\(image.path) has \(these) colour channel(s) but \(images[0].path) "
                        + "has \(first): the data set mixes layouts (--channels \(first) converts every image)")
            }
        }
        return first
    }

    /// Per-channel mean and standard deviation of the training images (in [0, 1] units), as the model sees them.
    /// `planes(i)` gives image i's planes [C][H][W].
    static func statistics(count images: Int, channels: Int, planes: (Int) throws -> [Float]) throws -> (
        [Float], [Float]
    ) {
        var sum = [Double](repeating: 0, count: channels), squares = sum, count = 0.0
        for i in 0..<images {
            let image = try planes(i)
            let n = image.count / channels
            for c in 0..<channels {
                for v in image[(c * n)..<((c + 1) * n)] { sum[c] += Double(v); squares[c] += Double(v) * Double(v) }
            }
            count += Double(n)
        }
        let mean = sum.map { $0 / count }
        let std = zip(squares, mean).map { max(($0 / count - $1 * $1).squareRoot(), 1e-6) }
        return (mean.map(Float.init), std.map(Float.init))
    }
}
