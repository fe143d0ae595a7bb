import Foundation
import TesseraEngine

/// How image intensities (already scaled to [0, 1]) are normalised before batching.
public enum IntensityNormalization: Sendable, Equatable {
    case none
    /// Each image to [0, 1] by its own minimum and maximum.
    case minMax
    /// Per channel: (x - mean) / std.
    case meanStd(mean: [Float], std: [Float])

    /// Normalises a sample's image planes in place.
    public func apply(to s: inout AugmentationSample) {
        apply(toPlanes: &s.image, channels: s.channels)
    }

    /// Normalises planes [channel][pixel] in place.
    public func apply(toPlanes image: inout [Float], channels: Int) {
        let n = image.count / max(1, channels)
        switch self {
        case .none: break
        case .minMax:
            let lo = image.min() ?? 0, hi = image.max() ?? 1
            let scale = hi > lo ? 1 / (hi - lo) : 0
            for i in image.indices { image[i] = (image[i] - lo) * scale }
        case .meanStd(let mean, let std):
            for c in 0..<channels {
                let m = mean[min(c, mean.count - 1)], d = std[min(c, std.count - 1)]
                for i in (c * n)..<((c + 1) * n) { image[i] = (image[i] - m) / d }
            }
        }
    }
}

/// A batch of images [N, C, H, W] and class ids [N, H, W] (as floats), with the names of its pairs.
// @unchecked: its tensors are made by the producer thread and handed over once through the queue; the producer
// keeps no reference, so only the consumer ever touches them.
public struct SegmentationBatch: @unchecked Sendable {
    public let images: Tensor
    public let labels: Tensor
    public let names: [String]
    /// Samples of this batch that could not be read and were left out (lenient loaders only).
    public var skipped: [Error] = []
}

/// Decodes, augments and normalises batches on background threads, a bounded number ahead of the consumer.
///
/// Order and augmentation depend only on the seed, the epoch and each sample's index, never on thread timing.
// @unchecked: every stored property is a constant of Sendable values, except the failure log and producer count,
// which lock themselves.
public final class SegmentationLoader: @unchecked Sendable {
    public let dataset: SegmentationDataset
    public let batchSize: Int
    public let augmentation: AugmentationPipeline?
    public let normalization: IntensityNormalization
    public let shuffle: Bool
    public let seed: UInt64
    public let dropLast: Bool
    /// Threads decoding one batch's samples at once.
    public let workers: Int
    /// Batches prepared ahead of the consumer at most.
    public let prefetch: Int
    /// Strict: a sample that cannot be read fails its whole batch. Lenient (default): it is left out, reported
    /// in the batch's `skipped` and in `failures`, and the others go on.
    public let strict: Bool
    /// This process's share of every batch (data-parallel training): part `index` of `count` equal parts of the
    /// batch's samples, in order; the order and each sample's augmentation stay those of the whole batch.
    public let shard: (index: Int, count: Int)
    let failureLog = FailureLog()
    let producers = ProducerCount()

    /// Producer threads of this loader still running (an epoch being prepared, or one whose iterator was dropped
    /// and that has not yet seen the cancellation).
    public var runningProducers: Int { producers.value }

    public init(
        dataset: SegmentationDataset, batchSize: Int, augmentation: AugmentationPipeline? = nil,
        normalization: IntensityNormalization = .none, shuffle: Bool = true, seed: UInt64 = 0,
        dropLast: Bool = false, workers: Int = Parallel.threadCount, prefetch: Int = 2, strict: Bool = false,
        shard: (index: Int, count: Int) = (0, 1)
    ) {
        precondition(batchSize > 0 && prefetch > 0 && workers > 0, "batch size, prefetch and workers must be positive")
        precondition(shard.count > 0 && (0..<shard.count).contains(shard.index), "shard outside its count")
        self.shard = shard
        self.dataset = dataset
        self.batchSize = batchSize
        self.augmentation = augmentation
        self.normalization = normalization
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.workers = workers
        self.prefetch = prefetch
        self.strict = strict
    }

    /// Every sample left out so far (lenient loaders), oldest first, one entry per failed read.
    public var failures: [Error] { failureLog.all }

    /// Dataset indices of `epoch` in batch order.
    public func order(epoch: Int) -> [Int] {
        epochOrder(count: dataset.pairs.count, shuffle: shuffle, seed: seed, epoch: epoch)
    }

    /// Number of batches per epoch.
    public var batchesPerEpoch: Int { batchCount(dataset.pairs.count, batchSize: batchSize, dropLast: dropLast) }

    /// One sample, decoded, augmented (seeded by epoch and index) and normalised.
    public func sample(_ index: Int, epoch: Int) throws -> AugmentationSample {
        var s: AugmentationSample
        if let augmentation {
            s = try augmentation(seed: seed &+ UInt64(epoch) &* 0x1_0000_0001, index: index) { window in
                AugmentationSample(try dataset.load(index, window: window))
            }
        } else {
            s = AugmentationSample(try dataset.load(index))
        }
        normalization.apply(to: &s)
        return s
    }

    /// Assembles samples of equal size into tensors.
    func assemble(_ samples: [AugmentationSample], names: [String]) throws -> SegmentationBatch {
        let first = samples[0]
        for (s, name) in zip(samples, names)
        where s.width != first.width || s.height != first.height || s.channels != first.channels {
            throw FileError(
                file: name,
                reason: "sample is \(s.width)x\(s.height)x\(s.channels) but the batch is "
                    + "\(first.width)x\(first.height)x\(first.channels); crop or resize to a common size")
        }
        let plane = first.width * first.height
        let images = Tensor(zeros: [samples.count, first.channels, first.height, first.width], zeroed: false)
        let labels = Tensor(zeros: [samples.count, first.height, first.width], zeroed: false)
        for (b, s) in samples.enumerated() {
            s.image.withUnsafeBufferPointer {
                (images.pointer + b * plane * first.channels).update(from: $0.baseAddress!, count: $0.count)
            }
            for p in 0..<plane { labels.pointer[b * plane + p] = Float(s.labels[p]) }
        }
        return SegmentationBatch(images: images, labels: labels, names: names)
    }

    /// The batches of `epoch` from batch `start` on (to resume mid-epoch), prepared in the background; each is a
    /// batch or the error of a sample in it.
    public func batches(epoch: Int, from start: Int = 0) -> AnyIterator<Result<SegmentationBatch, Error>> {
        produceBatches(self, epoch: epoch, from: start)
    }

    func name(of index: Int) -> String { dataset.pairs[index].image.path }
}

extension SegmentationBatch: SkippingBatch {}
extension SegmentationLoader: BatchAssembling {}
