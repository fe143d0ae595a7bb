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
        precondition(image.count == width * height * channels && labels.count == width * height, "sample sizes disagree")
        self.width = width
        self.height = height
        self.channels = channels
        self.image = image
        self.labels = labels
    }

    /// Planar floats in [0, 1] from a decoded image and its labels.
    public init(_ sample: LabelledSample) {
        let img = sample.image
        let n = img.width * img.height
        var planes = [Float](repeating: 0, count: n * img.channels)
        switch img.samples {
        case .uint8(let v):
            for p in 0..<n { for c in 0..<img.channels { planes[c * n + p] = Float(v[p * img.channels + c]) / 255 } }
        case .uint16(let v):
            for p in 0..<n { for c in 0..<img.channels { planes[c * n + p] = Float(v[p * img.channels + c]) / 65535 } }
        }
        self.init(width: img.width, height: img.height, channels: img.channels, image: planes, labels: sample.labels)
    }

    /// Re-samples through `source(x, y) -> (sx, sy)`: the image bilinearly, the labels by nearest neighbour, both
    /// with mirrored borders, into a `width` x `height` result.
    mutating func warp(width ow: Int, height oh: Int, _ source: (Int, Int) -> (Float, Float)) {
        let w = width, h = height, n = w * h
        var out = [Float](repeating: 0, count: ow * oh * channels)
        var outLabels = [Int32](repeating: 0, count: ow * oh)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sx, sy) = source(x, y)
                let x0f = sx.rounded(.down), y0f = sy.rounded(.down)
                let fx = sx - x0f, fy = sy - y0f
                let x0 = Int(x0f), y0 = Int(y0f)
                let xa = mirrored(x0, w), xb = mirrored(x0 + 1, w), ya = mirrored(y0, h), yb = mirrored(y0 + 1, h)
                for c in 0..<channels {
                    let p = c * n
                    let top = image[p + ya * w + xa] * (1 - fx) + image[p + ya * w + xb] * fx
                    let bottom = image[p + yb * w + xa] * (1 - fx) + image[p + yb * w + xb] * fx
                    out[c * ow * oh + y * ow + x] = top * (1 - fy) + bottom * fy
                }
                let nx = mirrored(Int(sx.rounded()), w), ny = mirrored(Int(sy.rounded()), h)
                outLabels[y * ow + x] = labels[ny * w + nx]
            }
        }
        width = ow
        height = oh
        image = out
        labels = outLabels
    }

    /// Exact integer re-indexing (flips, rotations by 90 degrees, crops): no interpolation at all.
    mutating func remap(width ow: Int, height oh: Int, _ source: (Int, Int) -> (Int, Int)) {
        let n = width * height, w = width
        var out = [Float](repeating: 0, count: ow * oh * channels)
        var outLabels = [Int32](repeating: 0, count: ow * oh)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sx, sy) = source(x, y)
                for c in 0..<channels { out[c * ow * oh + y * ow + x] = image[c * n + sy * w + sx] }
                outLabels[y * ow + x] = labels[sy * w + sx]
            }
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
    if size == 1 { return 0 }
    let period = 2 * (size - 1)
    var m = i % period
    if m < 0 { m += period }
    return m < size ? m : period - m
}
