import Foundation
import TesseraEngine

/// A generated microscopy-like image: cells with nuclei on a dark background, uneven illumination, blur and
/// noise, with its 3-class mask (0 background, 1 cell, 2 nucleus). The project's own sample data.
public struct CellSample: Sendable {
    public let width: Int, height: Int
    /// 8-bit gray pixels, row by row.
    public let pixels: [UInt8]
    /// Class ids, row by row.
    public let labels: [UInt8]
    /// Which nucleus each pixel shows (1, 2, ...: the cells in the order they were drawn; 0: none): the
    /// generator's own object truth, which a later cell drawn over a nucleus can cut or hide.
    public let nucleusIDs: [UInt32]

    /// Nuclei with at least one pixel in sight.
    public var nuclei: Int { Set(nucleusIDs).subtracting([0]).count }

    public static let classNames = ["background", "cell", "nucleus"]

    /// The `index`-th sample of stream `seed` at `width` x `height` (independent of any other index).
    public init(width: Int, height: Int, seed: UInt64, index: Int) {
        var g = RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9 &+ 1)
        self.width = width
        self.height = height
        let n = width * height
        var intensity = [Float](repeating: 0, count: n)
        var labels = [UInt8](repeating: 0, count: n)
        let background = 0.08 + 0.06 * g.nextFloat()
        for i in 0..<n { intensity[i] = background }

        // Cells: irregular ellipses placed without much overlap, each with an off-centre nucleus.
        struct Cell { var x, y, rx, ry, angle, wobble, phase: Float; var lobes: Int }
        var cells: [Cell] = []
        let wanted = max(2, n / 1100)
        var attempts = 0
        while cells.count < wanted && attempts < wanted * 30 {
            attempts += 1
            let r = 8 + 8 * g.nextFloat()
            let c = Cell(
                x: Float(g.nextInt(width)), y: Float(g.nextInt(height)), rx: r, ry: r * (0.65 + 0.35 * g.nextFloat()),
                angle: Float.pi * g.nextFloat(), wobble: 0.08 + 0.1 * g.nextFloat(), phase: 6.28 * g.nextFloat(),
                lobes: 2 + g.nextInt(4))
            if cells.contains(where: { hypot($0.x - c.x, $0.y - c.y) < 0.85 * ($0.rx + c.rx) }) { continue }
            cells.append(c)
        }
        var nucleusIDs = [UInt32](repeating: 0, count: n)
        for (k, c) in cells.enumerated() {
            let level = 0.32 + 0.16 * g.nextFloat(), nucleusLevel = 0.72 + 0.2 * g.nextFloat()
            let scale = 0.38 + 0.17 * g.nextFloat()
            let nx = (g.nextFloat() - 0.5) * c.rx * 0.5, ny = (g.nextFloat() - 0.5) * c.ry * 0.5
            let (cs, sn) = (cos(c.angle), sin(c.angle))
            let reach = Int(c.rx * (1 + c.wobble)) + 2
            for y in max(0, Int(c.y) - reach)...min(height - 1, Int(c.y) + reach) {
                for x in max(0, Int(c.x) - reach)...min(width - 1, Int(c.x) + reach) {
                    let dx = Float(x) + 0.5 - c.x, dy = Float(y) + 0.5 - c.y
                    let u = dx * cs + dy * sn, v = -dx * sn + dy * cs
                    let phi = atan2(v, u)
                    let edge = 1 + c.wobble * sin(Float(c.lobes) * phi + c.phase)
                    let d = (u * u) / (c.rx * c.rx) + (v * v) / (c.ry * c.ry)
                    guard d <= edge * edge else { continue }
                    let i = y * width + x
                    let nu = u - nx, nv = v - ny
                    let inNucleus =
                        (nu * nu) / (c.rx * c.rx * scale * scale) + (nv * nv) / (c.ry * c.ry * scale * scale) <= 1
                    // Cytoplasm slightly brighter towards the membrane, nucleus uniform.
                    intensity[i] = inNucleus ? nucleusLevel : level * (0.85 + 0.15 * min(1, d))
                    labels[i] = inNucleus ? 2 : 1
                    nucleusIDs[i] = inNucleus ? UInt32(k + 1) : 0
                }
            }
        }

        // Uneven illumination: a smooth radial fall-off from a random bright spot.
        let (lx, ly) = (Float(width) * g.nextFloat(), Float(height) * g.nextFloat())
        let diagonal = Float(width * width + height * height), strength = 0.25 + 0.25 * g.nextFloat()
        for y in 0..<height {
            for x in 0..<width {
                let r2 = (Float(x) - lx) * (Float(x) - lx) + (Float(y) - ly) * (Float(y) - ly)
                intensity[y * width + x] *= 1 - strength * r2 / diagonal
            }
        }
        // Optical blur (binomial 5-tap, separable, mirrored borders), then sensor noise.
        let taps: [Float] = [1, 4, 6, 4, 1].map { $0 / 16 }
        func mirror(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i) }
        var rows = intensity
        for y in 0..<height {
            for x in 0..<width {
                var s: Float = 0
                for k in -2...2 { s += taps[k + 2] * intensity[y * width + mirror(x + k, width)] }
                rows[y * width + x] = s
            }
        }
        let noise = 0.02 + 0.02 * g.nextFloat()
        var pixels = [UInt8](repeating: 0, count: n)
        for y in 0..<height {
            for x in 0..<width {
                var s: Float = 0
                for k in -2...2 { s += taps[k + 2] * rows[mirror(y + k, height) * width + x] }
                let v = s + noise * g.nextNormal() * (0.5 + s)
                pixels[y * width + x] = UInt8(max(0, min(255, (v * 255).rounded())))
            }
        }
        self.pixels = pixels
        self.labels = labels
        self.nucleusIDs = nucleusIDs
    }

    public var image: Image { Image(width: width, height: height, channels: 1, samples: .uint8(pixels)) }
    public var mask: Image { Image(width: width, height: height, channels: 1, samples: .uint8(labels)) }
}

/// The `samples/` folder: `train/` (PNG), `test/` (JPEG images, PNG masks) and `large/` (PNG, for tiled
/// inference), each with `images/` and `masks/`, written deterministically from a seed.
public enum CellSampleSet {
    /// (subfolder, count, width, height, image extension) of each part.
    public static let parts: [(name: String, count: Int, width: Int, height: Int, format: String)] = [
        ("train", 24, 128, 128, "png"), ("test", 8, 128, 128, "jpg"), ("large", 2, 512, 384, "png")
    ]

    /// Writes every part under `folder` and returns the files written.
    @discardableResult
    public static func generate(into folder: URL, seed: UInt64 = 0) throws -> [URL] {
        var written: [URL] = []
        var index = 0
        for part in parts {
            let images = folder.appendingPathComponent("\(part.name)/images")
            let masks = folder.appendingPathComponent("\(part.name)/masks")
            try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: masks, withIntermediateDirectories: true)
            for i in 0..<part.count {
                let sample = CellSample(width: part.width, height: part.height, seed: seed, index: index)
                index += 1
                let name = String(format: "%@%02d", part.name, i)
                let imageURL = images.appendingPathComponent("\(name).\(part.format)")
                let maskURL = masks.appendingPathComponent("\(name).png")
                try ImageCodec.write(sample.image, to: imageURL, quality: 92)
                try ImageCodec.write(sample.mask, to: maskURL)
                written += [imageURL, maskURL]
            }
        }
        return written
    }
}
