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
        let n = img.width * img.height, ch = img.channels
        var planes = [Float](repeating: 0, count: n * ch)
        planes.withUnsafeMutableBufferPointer { dst in
            switch img.samples {
            case .uint8(let v):
                v.withUnsafeBufferPointer { src in
                    for c in 0..<ch { for p in 0..<n { dst[c * n + p] = Float(src[p * ch + c]) * (1 / 255) } }
                }
            case .uint16(let v):
                v.withUnsafeBufferPointer { src in
                    for c in 0..<ch { for p in 0..<n { dst[c * n + p] = Float(src[p * ch + c]) * (1 / 65535) } }
                }
            }
        }
        self.init(width: img.width, height: img.height, channels: ch, image: planes, labels: sample.labels)
    }

    /// Re-samples at source coordinates (`sx[i]`, `sy[i]`) for each output pixel i of a `width` x `height` result:
    /// the image bilinearly, the labels by nearest neighbour (floor(x + 0.5)), both with mirrored borders.
    mutating func warp(width ow: Int, height oh: Int, sx: [Float], sy: [Float]) {
        let w = width, h = height, n = w * h, outN = ow * oh, channels = channels
        var out = [Float](repeating: 0, count: outN * channels)
        var outLabels = [Int32](repeating: 0, count: outN)
        image.withUnsafeBufferPointer { src in
            labels.withUnsafeBufferPointer { lab in
                out.withUnsafeMutableBufferPointer { dst in
                    outLabels.withUnsafeMutableBufferPointer { dl in
                        sx.withUnsafeBufferPointer { sx in
                            sy.withUnsafeBufferPointer { sy in
                                for i in 0..<outN {
                                    let x = sx[i], y = sy[i]
                                    let x0 = floorToInt(x), y0 = floorToInt(y)
                                    let fx = x - Float(x0), fy = y - Float(y0)
                                    let xa: Int, xb: Int, ya: Int, yb: Int
                                    if x0 >= 0 && x0 < w - 1 && y0 >= 0 && y0 < h - 1 {
                                        (xa, xb, ya, yb) = (x0, x0 + 1, y0, y0 + 1)
                                    } else {
                                        (xa, xb, ya, yb) = (mirrored(x0, w), mirrored(x0 + 1, w), mirrored(y0, h), mirrored(y0 + 1, h))
                                    }
                                    let a = ya * w + xa, b = ya * w + xb, c = yb * w + xa, d = yb * w + xb
                                    for ch in 0..<channels {
                                        let p = src.baseAddress! + ch * n
                                        let top = p[a] + (p[b] - p[a]) * fx
                                        let bottom = p[c] + (p[d] - p[c]) * fx
                                        dst[ch * outN + i] = top + (bottom - top) * fy
                                    }
                                    dl[i] = lab[(fy >= 0.5 ? yb : ya) * w + (fx >= 0.5 ? xb : xa)]
                                }
                            }
                        }
                    }
                }
            }
        }
        width = ow
        height = oh
        image = out
        labels = outLabels
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
                out.replaceSubrange((c * ow * oh + y * ow)..<(c * ow * oh + (y + 1) * ow), with: image[from..<(from + ow)])
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
    mutating func remap(width ow: Int, height oh: Int, origin: (x: Int, y: Int), stepX: (x: Int, y: Int), stepY: (x: Int, y: Int)) {
        let n = width * height, w = width, outN = ow * oh, channels = channels
        let dx = stepX.x + stepX.y * w, dy = stepY.x + stepY.y * w, start = origin.x + origin.y * w
        var out = [Float](repeating: 0, count: outN * channels)
        var outLabels = [Int32](repeating: 0, count: outN)
        func copy<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            for y in 0..<oh {
                var p = start + y * dy
                let row = dst + y * ow
                for x in 0..<ow {
                    row[x] = src[p]
                    p += dx
                }
            }
        }
        image.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels { copy(src.baseAddress! + c * n, dst.baseAddress! + c * outN) }
            }
        }
        labels.withUnsafeBufferPointer { src in
            outLabels.withUnsafeMutableBufferPointer { dst in copy(src.baseAddress!, dst.baseAddress!) }
        }
        width = ow
        height = oh
        image = out
        labels = outLabels
    }
}

/// floor(x) as an integer, without a libm call.
@inline(__always)
func floorToInt(_ x: Float) -> Int {
    let i = Int(x)
    return Float(i) > x ? i - 1 : i
}

/// Index `i` reflected into 0..<size without repeating the edge (numpy's 'reflect', torch's reflection padding).
@inline(__always)
func mirrored(_ i: Int, _ size: Int) -> Int {
    if i >= 0 && i < size { return i }   // the common case, without a division
    if size == 1 { return 0 }
    let period = 2 * (size - 1)
    var m = i % period
    if m < 0 { m += period }
    return m < size ? m : period - m
}
