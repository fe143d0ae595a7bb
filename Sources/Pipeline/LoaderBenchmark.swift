import Foundation
import TesseraData
import TesseraEngine

/// Pairs per second of decode + augmentation (flip, rot90, crop 256, elastic) over a dataset folder.
public struct LoaderBenchmark {
    public let images: URL, masks: URL

    public init(images: URL, masks: URL) {
        self.images = images
        self.masks = masks
    }

    /// The reference augmentation (crop first, so the other steps work on 256 x 256).
    public static let pipeline = AugmentationPipeline([
        RandomCrop(size: 256), HorizontalFlip(), VerticalFlip(), Rotate90(), ElasticDeformation(gridPoints: 3, sigma: 10, probability: 1),
    ])

    /// Pairs per second with `workers` threads over `passes` passes of the dataset (after one warm-up pass).
    public func run(workers: Int, passes: Int = 10) throws -> (pairsPerSecond: Double, pairs: Int) {
        let dataset = try SegmentationDataset(images: images, masks: masks, maskKind: .binary, classes: 2)
        let loader = SegmentationLoader(dataset: dataset, batchSize: 4, augmentation: Self.pipeline, seed: 0,
                                        workers: workers, prefetch: 2)
        for r in loader.batches(epoch: 0) { _ = try r.get() }
        let start = DispatchTime.now().uptimeNanoseconds
        var pairs = 0
        for epoch in 1...passes {
            for r in loader.batches(epoch: epoch) { pairs += try r.get().names.count }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (Double(pairs) / seconds, pairs)
    }
}
