import Foundation
import TesseraEngine

/// How a classification image becomes the network's `size` x `size` input.
public enum ClassificationView: Sendable, Equatable {
    /// torchvision's `RandomResizedCrop(size, scale: (minScale, 1), ratio: (3/4, 4/3))`, then a horizontal flip
    /// half the time when `flip`.
    case randomResizedCrop(minScale: Double, flip: Bool)
    /// The shorter side resized to `size` and the centre cropped (the whole object kept: timm's crop_pct 1.0).
    case centre

    /// The source window (x, y, width, height) in pixels of a `width` x `height` image, drawn from `g`.
    func window(width: Int, height: Int, generator g: inout RandomGenerator) -> (Double, Double, Double, Double, Bool) {
        let w = Double(width), h = Double(height)
        switch self {
        case .centre:
            let side = min(w, h)
            return ((w - side) / 2, (h - side) / 2, side, side, false)
        case .randomResizedCrop(let minScale, let flip):
            // torchvision's ten tries at an area and aspect ratio that fit, then the centre crop at a clamped ratio.
            let area = w * h, logRatio = (log(3.0 / 4), log(4.0 / 3))
            for _ in 0..<10 {
                let target = area * (minScale + (1 - minScale) * Double(g.nextFloat()))
                let ratio = exp(logRatio.0 + (logRatio.1 - logRatio.0) * Double(g.nextFloat()))
                let cw = (target * ratio).squareRoot(), ch = (target / ratio).squareRoot()
                if cw <= w && ch <= h && cw >= 1 && ch >= 1 {
                    let x = Double(g.nextFloat()) * (w - cw), y = Double(g.nextFloat()) * (h - ch)
                    return (x, y, cw, ch, flip && g.nextFloat() < 0.5)
                }
            }
            let side = min(w, h)
            return ((w - side) / 2, (h - side) / 2, side, side, flip && g.nextFloat() < 0.5)
        }
    }
}

/// Resamples planes [channel][y][x] of a `width` x `height` image: the window (x, y, w, h) to `size` x `size`,
/// bilinear at pixel centres with clamped borders; a window twice the output or more is first averaged over
/// whole pixel blocks (PIL's and torchvision's antialiased resize keep fine shapes the same way; point samples
/// alias a 512-pixel digit into noise at 32).
public func resampledWindow(
    _ planes: [Float], width: Int, height: Int, channels: Int,
    window: (x: Double, y: Double, width: Double, height: Double), size: Int, mirrored: Bool = false
) -> [Float] {
    var source = planes, sw = width, sh = height
    var (wx, wy, ww, wh) = window
    let factor = Int(min(ww, wh) / Double(2 * size)) + 1
    if factor >= 2 {
        let bw = max(1, width / factor), bh = max(1, height / factor)
        var reduced = [Float](repeating: 0, count: bw * bh * channels)
        for c in 0..<channels {
            for y in 0..<bh {
                for x in 0..<bw {
                    var sum: Float = 0, n: Float = 0
                    for dy in 0..<factor where y * factor + dy < height {
                        for dx in 0..<factor where x * factor + dx < width {
                            sum += planes[(c * height + y * factor + dy) * width + x * factor + dx]
                            n += 1
                        }
                    }
                    reduced[(c * bh + y) * bw + x] = sum / max(1, n)
                }
            }
        }
        source = reduced
        (sw, sh) = (bw, bh)
        let f = Double(factor)
        (wx, wy, ww, wh) = (wx / f, wy / f, ww / f, wh / f)
    }
    var out = [Float](repeating: 0, count: size * size * channels)
    let sx = ww / Double(size), sy = wh / Double(size)
    for oy in 0..<size {
        let fy = min(max(wy + (Double(oy) + 0.5) * sy - 0.5, 0), Double(sh - 1))
        let y0 = Int(fy), y1 = min(y0 + 1, sh - 1), ty = Float(fy - Double(y0))
        for ox in 0..<size {
            let fx = min(max(wx + (Double(ox) + 0.5) * sx - 0.5, 0), Double(sw - 1))
            let x0 = Int(fx), x1 = min(x0 + 1, sw - 1), tx = Float(fx - Double(x0))
            let dst = mirrored ? size - 1 - ox : ox
            for c in 0..<channels {
                let base = c * sh * sw
                let top = source[base + y0 * sw + x0] * (1 - tx) + source[base + y0 * sw + x1] * tx
                let bottom = source[base + y1 * sw + x0] * (1 - tx) + source[base + y1 * sw + x1] * tx
                out[(c * size + oy) * size + dst] = top * (1 - ty) + bottom * ty
            }
        }
    }
    return out
}

/// A batch of images [N, C, size, size] and class ids [N] (as floats), with the images' paths.
// @unchecked: made by the producer thread and handed over once through the queue (as SegmentationBatch).
public struct ClassificationBatch: @unchecked Sendable, SkippingBatch {
    public let images: Tensor
    public let labels: Tensor
    public let names: [String]
    public var skipped: [Error] = []
}

/// Decodes, resizes, augments and normalises classification batches in the background, as `SegmentationLoader`
/// does for segmentation (the same producer, order and lenient handling of unreadable images).
// @unchecked: constants of Sendable values, and the failure log and producer count, which lock themselves.
public final class ClassificationLoader: @unchecked Sendable, BatchAssembling {
    public let dataset: ClassificationDataset
    public let batchSize: Int
    public let size: Int
    public let view: ClassificationView
    public let normalization: IntensityNormalization
    public let shuffle: Bool
    public let seed: UInt64
    public let dropLast: Bool
    public let workers: Int
    public let prefetch: Int
    public let strict: Bool
    public let shard: (index: Int, count: Int)
    let failureLog = FailureLog()
    let producers = ProducerCount()

    public init(
        dataset: ClassificationDataset, batchSize: Int, size: Int, view: ClassificationView = .centre,
        normalization: IntensityNormalization = .none, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false,
        workers: Int = Parallel.threadCount, prefetch: Int = 2, strict: Bool = false,
        shard: (index: Int, count: Int) = (0, 1)
    ) {
        precondition(batchSize > 0 && size > 0 && prefetch > 0 && workers > 0, "sizes must be positive")
        precondition(shard.count > 0 && (0..<shard.count).contains(shard.index), "shard outside its count")
        self.dataset = dataset
        self.batchSize = batchSize
        self.size = size
        self.view = view
        self.normalization = normalization
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.workers = workers
        self.prefetch = prefetch
        self.strict = strict
        self.shard = shard
    }

    /// Every image left out so far (lenient loaders), oldest first.
    public var failures: [Error] { failureLog.all }

    public var batchesPerEpoch: Int { batchCount(dataset.samples.count, batchSize: batchSize, dropLast: dropLast) }

    public func order(epoch: Int) -> [Int] {
        epochOrder(count: dataset.samples.count, shuffle: shuffle, seed: seed, epoch: epoch)
    }

    /// Sample `index` as normalised planes [C][size][size] and its class id; the view drawn from the seed, the
    /// epoch and the index alone.
    public func sample(_ index: Int, epoch: Int) throws -> (planes: [Float], channels: Int, label: Int) {
        let image = try dataset.load(index)
        var g = RandomGenerator(seed: seed &+ UInt64(epoch) &* 0x1_0000_0001 &+ UInt64(index) &* 0x9E37_79B9)
        let (x, y, w, h, flip) = view.window(width: image.width, height: image.height, generator: &g)
        var planes = resampledWindow(
            AugmentationSample.planes(of: image), width: image.width, height: image.height, channels: image.channels,
            window: (x, y, w, h), size: size, mirrored: flip)
        normalization.apply(toPlanes: &planes, channels: image.channels)
        return (planes, image.channels, dataset.samples[index].label)
    }

    func name(of index: Int) -> String { dataset.samples[index].image.path }

    func assemble(_ samples: [(planes: [Float], channels: Int, label: Int)], names: [String]) throws
        -> ClassificationBatch
    {
        let channels = samples[0].channels
        for (s, name) in zip(samples, names) where s.channels != channels {
            throw FileError(
                file: name, reason: "has \(s.channels) channel(s) but the batch \(channels); set the model's channels")
        }
        let plane = size * size * channels
        let images = Tensor(zeros: [samples.count, channels, size, size], zeroed: false)
        for (b, s) in samples.enumerated() {
            s.planes.withUnsafeBufferPointer {
                (images.pointer + b * plane).update(from: $0.baseAddress!, count: plane)
            }
        }
        return ClassificationBatch(
            images: images, labels: Tensor(samples.map { Float($0.label) }, shape: [samples.count]), names: names)
    }

    /// The batches of `epoch` from batch `start` on, prepared in the background.
    public func batches(epoch: Int, from start: Int = 0) -> AnyIterator<Result<ClassificationBatch, Error>> {
        produceBatches(self, epoch: epoch, from: start)
    }
}

extension Image {
    /// The image as a classifier sees it at inference: the shorter side resized to `size` and the centre cropped
    /// (`ClassificationView.centre`), samples as floats in [0, 1] (integers scaled, as `AugmentationSample.planes`).
    public func classifierView(size: Int) -> Image {
        var g = RandomGenerator(seed: 0)  // the centre view draws nothing
        let (x, y, w, h, _) = ClassificationView.centre.window(width: width, height: height, generator: &g)
        let planes = resampledWindow(
            AugmentationSample.planes(of: self), width: width, height: height, channels: channels,
            window: (x, y, w, h), size: size)
        let n = size * size
        var interleaved = [Float](repeating: 0, count: n * channels)
        for c in 0..<channels { for p in 0..<n { interleaved[p * channels + c] = planes[c * n + p] } }
        return Image(width: size, height: size, channels: channels, samples: .float32(interleaved))
    }
}
