import Foundation
import TesseraEngine

/// A generated classification set: one filled shape per image at a random position and size, on a noisy
/// background; used by the model tests and the project's own sample data.
public struct ShapeSample: Sendable {
    public enum Kind: Int, CaseIterable, Sendable {
        case square, disc, triangle, cross
    }
    public let kind: Kind
    /// Gray levels in [0, 1], row by row.
    public let pixels: [Float]
    public let size: Int
    /// The shape's bounding box.
    public let box: PixelWindow

    /// The `index`-th sample of the stream `seed` (independent of any other index).
    public init(size: Int, seed: UInt64, index: Int) {
        var g = RandomGenerator(seed: seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(index))
        let kind = Kind(rawValue: g.nextInt(Kind.allCases.count))!
        let extent = size / 3 + g.nextInt(max(1, size / 4))
        let x0 = g.nextInt(size - extent + 1), y0 = g.nextInt(size - extent + 1)
        let foreground = 0.6 + 0.4 * g.nextFloat(), background = 0.3 * g.nextFloat()
        var pixels = [Float](repeating: 0, count: size * size)
        let e = Float(extent), half = e / 2
        for y in 0..<size {
            for x in 0..<size {
                let u = Float(x - x0) + 0.5, v = Float(y - y0) + 0.5  // position inside the box
                let inside: Bool
                if u < 0 || v < 0 || u > e || v > e {
                    inside = false
                } else {
                    switch kind {
                    case .square: inside = true
                    case .disc: inside = (u - half) * (u - half) + (v - half) * (v - half) <= half * half
                    case .triangle: inside = abs(u - half) <= v / 2
                    case .cross: inside = abs(u - half) <= e / 6 || abs(v - half) <= e / 6
                    }
                }
                pixels[y * size + x] = (inside ? foreground : background) + 0.1 * (g.nextFloat() - 0.5)
            }
        }
        self.kind = kind
        self.pixels = pixels
        self.size = size
        box = PixelWindow(x: x0, y: y0, width: extent, height: extent)
    }

    /// Samples `range` of stream `seed` as images [N, 1, size, size] and class ids [N].
    public static func batch(size: Int, seed: UInt64, range: Range<Int>) -> (images: Tensor, labels: Tensor) {
        let samples = range.map { ShapeSample(size: size, seed: seed, index: $0) }
        return (
            Tensor(samples.flatMap(\.pixels), shape: [samples.count, 1, size, size]),
            Tensor(samples.map { Float($0.kind.rawValue) }, shape: [samples.count])
        )
    }
}

extension ShapeSample.Kind {
    /// The class folder's name: `square`, `disc`, `triangle`, `cross`.
    public var name: String { "\(self)" }
}

/// The `samples/shapes` folder: a classification set in torchvision's ImageFolder layout, `train/<class>/` and
/// `test/<class>/` of 40x40 gray PNGs (one shape each, random size 13-22 px, position, contrast and noise), written
/// deterministically from a seed; `tessera train --task classify --model lenet5` learns it.
public enum ShapeSampleSet {
    /// (subfolder, images) of each part; the edge of every image.
    public static let parts: [(name: String, count: Int)] = [("train", 800), ("test", 200)]
    public static let size = 40

    /// Writes every part under `folder` and returns the files written.
    @discardableResult
    public static func generate(into folder: URL, seed: UInt64 = 0) throws -> [URL] {
        var written: [URL] = []
        var index = 0
        for part in parts {
            for kind in ShapeSample.Kind.allCases {
                try FileManager.default.createDirectory(
                    at: folder.appendingPathComponent("\(part.name)/\(kind.name)"), withIntermediateDirectories: true)
            }
            for i in 0..<part.count {
                let sample = ShapeSample(size: size, seed: seed &+ 0x5A5E, index: index)
                index += 1
                let gray = sample.pixels.map { UInt8((min(max($0, 0), 1) * 255).rounded()) }
                let url = folder.appendingPathComponent(
                    String(format: "%@/%@/%@%03d.png", part.name, sample.kind.name, part.name, i))
                try ImageCodec.write(Image(width: size, height: size, channels: 1, samples: .uint8(gray)), to: url)
                written.append(url)
            }
        }
        return written
    }
}
