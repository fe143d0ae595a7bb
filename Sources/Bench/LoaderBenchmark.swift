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
        RandomCrop(size: 256), HorizontalFlip(), VerticalFlip(), Rotate90(),
        ElasticDeformation(gridPoints: 3, sigma: 10, probability: 1)
    ])

    /// Throughput of one run: overall, per pass, and per second of process CPU time (which a busy host's stolen
    /// cycles do not inflate).
    public struct Result: Sendable {
        public let pairs: Int
        public let seconds: Double, cpuSeconds: Double
        public let passRates: [Double]
        public var pairsPerSecond: Double { Double(pairs) / seconds }
        public var pairsPerCPUSecond: Double { Double(pairs) / cpuSeconds }
        public var medianPassRate: Double { passRates.sorted()[passRates.count / 2] }
        public var bestPassRate: Double { passRates.max() ?? 0 }
    }

    /// Runs `workers` threads over `passes` passes of the dataset (after one warm-up pass).
    public func run(workers: Int, passes: Int = 10) throws -> Result {
        let dataset = try SegmentationDataset(images: images, masks: masks, maskKind: .binary, classes: 2)
        let loader = SegmentationLoader(
            dataset: dataset, batchSize: 4, augmentation: Self.pipeline, seed: 0,
            workers: workers, prefetch: 2)
        for r in loader.batches(epoch: 0) { _ = try r.get() }
        let cpuStart = Self.processCPUSeconds()
        let start = DispatchTime.now().uptimeNanoseconds
        var pairs = 0
        var rates: [Double] = []
        for epoch in 1...max(1, passes) {
            let passStart = DispatchTime.now().uptimeNanoseconds
            var passPairs = 0
            for r in loader.batches(epoch: epoch) { passPairs += try r.get().names.count }
            rates.append(Double(passPairs) / (Double(DispatchTime.now().uptimeNanoseconds - passStart) / 1e9))
            pairs += passPairs
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Result(pairs: pairs, seconds: seconds, cpuSeconds: Self.processCPUSeconds() - cpuStart, passRates: rates)
    }

    /// User + system CPU time of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
