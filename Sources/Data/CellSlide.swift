import Foundation
import TesseraEngine

/// A generated whole-slide image of any size: `CellSample` fields of 512 x 512 pixels side by side (each its own
/// sample of the seed, so the slide is the same whatever order it is made in), written band by band as a tiled,
/// deflate-compressed 16-bit (or 8-bit) TIFF, BigTIFF past 2 GiB of samples. Memory: one band of fields.
public enum CellSlide {
    public static let field = 512

    /// Writes a `width` x `height` slide to `url` (atomically) and returns its size in bytes.
    @discardableResult
    public static func write(to url: URL, width: Int, height: Int, bitDepth: Int = 16, seed: UInt64 = 0) throws -> Int {
        guard width > 0, height > 0, width <= 1 << 20, height <= 1 << 20, bitDepth == 8 || bitDepth == 16 else {
            throw FileError(file: url.path, reason: "a slide is 1-1048576 pixels a side, 8 or 16-bit")
        }
        var layout = TIFFLayout(width: width, height: height, channels: 1, bitDepth: bitDepth)
        layout.tile = field
        layout.compression = .deflate
        layout.predictor = true
        try AtomicFile.write(to: url) { temporary in
            let writer = try TIFFWriter(url: temporary, bigTIFF: layout.needsBigTIFF)
            try writer.beginPage(layout, description: "Tessera cell slide \(width)x\(height), seed \(seed)")
            let columns = (width + field - 1) / field
            for y0 in stride(from: 0, to: height, by: field) {
                let rows = min(field, height - y0)
                // The band's fields in parallel (each is independent), then copied into rows.
                var fields = [[UInt8]](repeating: [], count: columns)
                fields.withUnsafeMutableBufferPointer { out in
                    Parallel.forEach(columns) { c in
                        out[c] =
                            CellSample(width: field, height: field, seed: seed, index: (y0 / field) * columns + c)
                            .pixels
                    }
                }
                func band<T>(_ convert: (UInt8) -> T, zero: T) -> [T] {
                    var v = [T](repeating: zero, count: rows * width)
                    for c in 0..<columns {
                        let x0 = c * field, w = min(field, width - x0)
                        for y in 0..<rows {
                            for x in 0..<w { v[y * width + x0 + x] = convert(fields[c][y * field + x]) }
                        }
                    }
                    return v
                }
                let samples: Image.Samples =
                    bitDepth == 16 ? .uint16(band({ UInt16($0) &* 257 }, zero: 0)) : .uint8(band({ $0 }, zero: 0))
                try writer.write(Image(width: width, height: rows, channels: 1, samples: samples))
            }
            try writer.endPage()
            try writer.close()
        }
        return (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    }
}
