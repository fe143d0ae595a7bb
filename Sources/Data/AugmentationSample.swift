import CKernels
import Foundation

/// An image as float planes [channel][y][x] with one class id per pixel, the unit augmentations work on.
public struct AugmentationSample: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    /// Planar samples scaled to [0, 1] (8-bit / 255, 16-bit / 65535).
    public var image: [Float]
    /// Class ids, row by row.
    public var labels: [Int32]

    public init(width: Int, height: Int, channels: Int, image: [Float], labels: [Int32]) {
        precondition(
            image.count == width * height * channels && labels.count == width * height, "sample sizes disagree")
        self.width = width
        self.height = height
        self.channels = channels
        self.image = image
        self.labels = labels
    }

    /// Planar floats in [0, 1] from a decoded image and its labels.
    public init(_ sample: LabelledSample) {
        let img = sample.image
        self.init(
            width: img.width, height: img.height, channels: img.channels, image: AugmentationSample.planes(of: img),
            labels: sample.labels)
    }

    /// An image's samples as planes [channel][y][x], integers scaled to [0, 1], floats as they are.
    public static func planes(of img: Image) -> [Float] {
        let n = img.width * img.height, ch = img.channels
        return [Float](unsafeUninitializedCapacity: n * ch) { dst, count in
            switch img.samples {
            case .uint8(let v):
                v.withUnsafeBufferPointer { tk_planar_from_u8($0.baseAddress, n, ch, 1 / 255, dst.baseAddress) }
            case .uint16(let v):
                v.withUnsafeBufferPointer { tk_planar_from_u16($0.baseAddress, n, ch, 1 / 65535, dst.baseAddress) }
            case .float32(let v):
                for c in 0..<ch { for p in 0..<n { dst[c * n + p] = v[p * ch + c] } }
            }
            count = n * ch
        }
    }

    /// Re-samples at source coordinates (`sx[i]`, `sy[i]`) for each output pixel i of a `width` x `height` result:
    /// the image bilinearly, the labels by nearest neighbour (floor(x + 0.5)), both with mirrored borders.
    mutating func warp(width ow: Int, height oh: Int, sx: [Float], sy: [Float]) {
        let w = width, h = height, outN = ow * oh, channels = channels
        let out = [Float](unsafeUninitializedCapacity: outN * channels) { dst, count in
            count = outN * channels
            let outLabels = [Int32](unsafeUninitializedCapacity: outN) { dl, labelCount in
                labelCount = outN
                tk_warp_bilinear(image, labels, w, h, channels, sx, sy, outN, dst.baseAddress, dl.baseAddress)
            }
            labels = outLabels
        }
        width = ow
        height = oh
        image = out
    }

    /// Re-samples through `source(x, y) -> (sx, sy)` (see `warp(width:height:sx:sy:)`).
    mutating func warp(width ow: Int, height oh: Int, _ source: (Int, Int) -> (Float, Float)) {
        var sx = [Float](repeating: 0, count: ow * oh), sy = sx
        for y in 0..<oh { for x in 0..<ow { (sx[y * ow + x], sy[y * ow + x]) = source(x, y) } }
        warp(width: ow, height: oh, sx: sx, sy: sy)
    }

    /// The window at (x0, y0) of size w x h, copied row by row.
    mutating func crop(x0: Int, y0: Int, width ow: Int, height oh: Int) {
        let w = width, n = width * height
        var out = [Float](repeating: 0, count: ow * oh * channels)
        var outLabels = [Int32](repeating: 0, count: ow * oh)
        for y in 0..<oh {
            for c in 0..<channels {
                let from = c * n + (y0 + y) * w + x0
                out.replaceSubrange(
                    (c * ow * oh + y * ow)..<(c * ow * oh + (y + 1) * ow), with: image[from..<(from + ow)])
            }
            let from = (y0 + y) * w + x0
            outLabels.replaceSubrange((y * ow)..<((y + 1) * ow), with: labels[from..<(from + ow)])
        }
        width = ow
        height = oh
        image = out
        labels = outLabels
    }

    /// Exact integer re-indexing (flips, rotations by 90 degrees): output pixel (x, y) takes source pixel
    /// `origin + x * stepX + y * stepY`. No interpolation at all.
    mutating func remap(
        width ow: Int, height oh: Int, origin: (x: Int, y: Int), stepX: (x: Int, y: Int), stepY: (x: Int, y: Int)
    ) {
        let n = width * height, w = width, outN = ow * oh, channels = channels
        let dx = stepX.x + stepX.y * w, dy = stepY.x + stepY.y * w, start = origin.x + origin.y * w
        let out = [Float](unsafeUninitializedCapacity: outN * channels) { dst, count in
            image.withUnsafeBytes { src in
                let s = src.bindMemory(to: UInt32.self).baseAddress!
                let d = UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: UInt32.self)
                for c in 0..<channels { tk_remap32(s + c * n, start, dx, dy, ow, oh, d + c * outN) }
            }
            count = outN * channels
        }
        let outLabels = [Int32](unsafeUninitializedCapacity: outN) { dst, count in
            labels.withUnsafeBytes { src in
                tk_remap32(
                    src.bindMemory(to: UInt32.self).baseAddress!, start, dx, dy, ow, oh,
                    UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: UInt32.self))
            }
            count = outN
        }
        width = ow
        height = oh
        image = out
        labels = outLabels
    }
}

/// Index `i` reflected into 0..<size without repeating the edge (numpy's 'reflect', torch's reflection padding).
@inline(__always)
func mirrored(_ i: Int, _ size: Int) -> Int {
    if i >= 0 && i < size { return i }  // the common case, without a division
    if size == 1 { return 0 }
    let period = 2 * (size - 1)
    var m = i % period
    if m < 0 { m += period }
    return m < size ? m : period - m
}
