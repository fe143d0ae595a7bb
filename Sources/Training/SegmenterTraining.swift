import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN

/// Training a U-Net or a ResNet U-Net on image/mask pairs: random crops with the recipe's augmentation, the
/// recipe's segmentation loss, and validation through the sliding window `tessera segment` uses.
struct SegmenterTraining: TrainingTask {
    let config: TrainingConfig
    let data: TrainingData
    let network: any SegmentationNetwork
    let loader: SegmentationLoader
    let info: CheckpointInfo
    let trainable: [Tensor]
    let usesBatchNorm: Bool
    /// Values per channel at the network's deepest level for one crop.
    let deepest: Int
    let rank: Int, size: Int

    init(_ config: TrainingConfig, rank: Int, of size: Int) throws {
        self.config = config
        (self.rank, self.size) = (rank, size)
        let data = try TrainingData(config)
        self.data = data
        if let cw = config.classWeights, cw.count != data.classes || cw.contains(where: { !($0 >= 0 && $0.isFinite) }) {
            throw TrainingError(
                reason: "class weights: \(cw.count) given for \(data.classes) classes; give one per class, each >= 0")
        }
        let crop = config.cropSize
        var generator = RandomGenerator(seed: config.seed)
        let spec = try config.network(channels: data.channels, classes: data.classes)
        do { try spec.checkMemory(tile: crop) } catch { throw TrainingError(reason: "\(error)") }
        // Batch norm in training mode needs more than one value per channel at the deepest level.
        deepest = spec.deepestFeaturePixels(forInput: crop)
        usesBatchNorm = spec.usesBatchNorm
        let smallestBatch = min(config.batch, data.train.pairs.count)
        if usesBatchNorm && smallestBatch * deepest <= 1 {
            throw TrainingError(
                reason: "batch \(smallestBatch) at crop \(crop) leaves \(deepest) value(s) per channel at the "
                    + "network's deepest level; batch norm needs more than one: raise --batch or --crop")
        }
        let model = try spec.build(generator: &generator)
        guard model.outputSize(forInput: crop) != nil else {
            let near = model.validInputSizes(near: crop)
            throw TrainingError(
                reason: "crop \(crop) does not fit this \(spec.arch) (\(config.padding ?? .same) padding); "
                    + "the nearest sizes it takes are \(near.below.map { "\($0) and " } ?? "")\(near.above)")
        }
        var pretrained = false
        if let weights = config.encoderWeights, let resnetUNet = model as? ResNetUNet {
            do {
                let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: weights))
                try resnetUNet.loadEncoder(
                    try Dictionary(uniqueKeysWithValues: file.names.map { ($0, try file.tensor($0)) }))
                pretrained = true
            } catch { throw TrainingError(reason: "\(weights): cannot load encoder weights: \(error)") }
        }
        network = model
        trainable = config.trainableParameters(of: model) { pretrained && $0.hasPrefix("encoder.") }
        loader = SegmentationLoader(
            dataset: data.train, batchSize: config.batch, augmentation: config.augmentation,
            normalization: .meanStd(mean: data.mean, std: data.std), seed: config.seed,
            dropLast: data.train.pairs.count >= config.batch, shard: (rank, size))
        info = CheckpointInfo(
            network: spec, classNames: data.classNames,
            classColors: CheckpointInfo.vocColors(data.classes), maskKind: data.maskKindName,
            normalizationMean: data.mean, normalizationStd: data.std, crop: crop)
    }

    var model: Module { network }
    var classes: Int { data.classes }
    var validationNames: [String] { data.validation.pairs.map(\.name) }
    var trainingSamples: Int { data.train.pairs.count }
    var batchesPerEpoch: Int { loader.batchesPerEpoch }
    var progressKeys: [String] { ["train_loss", "pixel_accuracy"] }

    func batches(epoch: Int, from start: Int) -> AnyIterator<Result<TrainingBatch, Error>> {
        TrainingBatch.stream(loader.batches(epoch: epoch, from: start))
    }

    func loss(_ batch: TrainingBatch) -> Tensor {
        let logits = network(batch.images)
        let labels = batch.targets.centreCropped(to: [logits.shape[2], logits.shape[3]]).contiguous()
        return config.loss(
            logits, labels, classWeights: config.classWeights?.map { Float($0) },
            pixelWeights: config.borderWeights == true ? TrainRun.borderWeights(labels) : nil)
    }

    func validate(_ parallel: DataParallel) throws -> (metrics: [String: Double], failures: [Error]) {
        // Each rank validates every size-th pair; the counts are added up.
        let (share, failures, _) = SegmentationInference.evaluate(
            network, on: data.validation.shard(rank, of: size), classes: data.classes,
            mean: data.mean, std: data.std, inference: TiledInference(tile: config.cropSize))
        let matrix = try parallel.total(share)
        return (data.validation.pairs.isEmpty ? [:] : matrix.summary, failures)
    }
}
