import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN

/// Training LeNet-5 or a ResNet classifier on images with one class each (an ImageFolder or a `path,label` CSV):
/// torchvision's RandomResizedCrop (+ flips) to the input edge, cross-entropy with the recipe's class weights and
/// label smoothing, and validation on centre crops.
struct ClassifierTraining: TrainingTask {
    let config: TrainingConfig
    let train: ClassificationDataset
    let validation: ClassificationDataset
    let network: any ClassificationNetwork
    let loader: ClassificationLoader
    let info: CheckpointInfo
    let trainable: [Tensor]
    let mean: [Float], std: [Float]
    let usesBatchNorm: Bool, deepest: Int
    let rank: Int, size: Int

    init(_ config: TrainingConfig, rank: Int, of size: Int) throws {
        self.config = config
        (self.rank, self.size) = (rank, size)
        var all = try ClassificationDataset(URL(fileURLWithPath: config.images))
        if let test = config.testNames, !test.isEmpty {
            let names = Set(all.samples.map(\.name))
            if let missing = test.first(where: { !names.contains($0) }) {
                throw TrainingError(reason: "test_names: no image named '\(missing)' in \(config.images)")
            }
            all = all.split(validationNames: Set(test)).train
        }
        var split =
            config.validationNames.isEmpty
            ? all.split(validationFraction: config.validationFraction, seed: config.seed)
            : all.split(validationNames: Set(config.validationNames))
        guard !split.train.samples.isEmpty else {
            throw TrainingError(reason: "no training images left after the validation split")
        }
        let classes = all.classNames.count
        if let names = config.classNames, names != all.classNames {
            throw TrainingError(
                reason: "class_names \(names.joined(separator: ",")) differ from the data's classes "
                    + all.classNames.joined(separator: ",") + " (the folder or label names, sorted)")
        }
        if let cw = config.classWeights, cw.count != classes {
            throw TrainingError(reason: "class weights: \(cw.count) given for \(classes) classes; give one per class")
        }
        let channels = try TrainingData.inputChannels(
            (split.train.samples + split.validation.samples).map(\.image), declared: config.channels)
        split.train.channels = channels
        split.validation.channels = channels
        (train, validation) = (split.train, split.validation)
        let train = self.train
        (mean, std) = try TrainingData.statistics(count: train.samples.count, channels: channels) {
            AugmentationSample.planes(of: try train.load($0))
        }
        let spec = try config.network(channels: channels, classes: classes)
        do { try spec.checkMemory(tile: config.cropSize) } catch { throw TrainingError(reason: "\(error)") }
        (usesBatchNorm, deepest) = (spec.usesBatchNorm, spec.deepestFeaturePixels(forInput: config.cropSize))
        if usesBatchNorm && min(config.batch, train.samples.count) * deepest <= 1 {
            throw TrainingError(
                reason: "batch \(min(config.batch, train.samples.count)) at \(config.cropSize)x\(config.cropSize) "
                    + "leaves one value per channel at the ResNet's last stage; batch norm needs more: raise --batch")
        }
        var generator = RandomGenerator(seed: config.seed)
        let model = try spec.buildClassifier(generator: &generator)
        var pretrained: (String) -> Bool = { _ in false }
        if let weights = config.encoderWeights, let resnet = model as? ResNet {
            do {
                let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: weights))
                let fcLoaded = try resnet.loadPretrained(
                    try Dictionary(uniqueKeysWithValues: file.names.map { ($0, try file.tensor($0)) }))
                pretrained = { fcLoaded || !$0.hasPrefix("fc.") }
            } catch { throw TrainingError(reason: "\(weights): cannot load ResNet weights: \(error)") }
        }
        network = model
        trainable = config.trainableParameters(of: model, isPretrained: pretrained)
        if trainable.isEmpty {
            throw TrainingError(reason: "--freeze-encoder leaves nothing to train: the weights gave every layer")
        }
        loader = ClassificationLoader(
            dataset: train, batchSize: config.batch, size: config.cropSize, view: config.classificationView,
            normalization: .meanStd(mean: mean, std: std), seed: config.seed,
            dropLast: train.samples.count >= config.batch, shard: (rank, size))
        info = CheckpointInfo(
            network: spec, classNames: all.classNames, classColors: CheckpointInfo.vocColors(classes),
            maskKind: "label", normalizationMean: mean, normalizationStd: std, crop: config.cropSize)
    }

    var model: Module { network }
    var classes: Int { network.classes }
    var validationNames: [String] { validation.samples.map(\.name) }
    var trainingSamples: Int { train.samples.count }
    var batchesPerEpoch: Int { loader.batchesPerEpoch }
    var progressKeys: [String] { ["train_loss", "loss"] }

    func batches(epoch: Int, from start: Int) -> AnyIterator<Result<TrainingBatch, Error>> {
        TrainingBatch.stream(loader.batches(epoch: epoch, from: start))
    }

    func loss(_ batch: TrainingBatch) -> Tensor {
        Functional.crossEntropy(
            network(batch.images), target: batch.targets, classWeights: config.classWeights?.map { Float($0) },
            labelSmoothing: Float(config.labelSmoothing ?? 0))
    }

    func validate(_ parallel: DataParallel) throws -> (metrics: [String: Double], failures: [Error]) {
        let (share, failures) = ClassificationInference.evaluate(
            network, on: validation.shard(rank, of: size), size: config.cropSize, mean: mean, std: std,
            batch: config.batch)
        guard !validation.samples.isEmpty else { return ([:], failures) }
        let summed = try parallel.sum(share.values)
        return ((ClassificationScores(classes: classes, values: summed) ?? share).summary, failures)
    }
}
