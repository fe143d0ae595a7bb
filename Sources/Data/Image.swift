import Foundation

/// A rectangle of pixels: top-left corner and size.
public struct PixelWindow: Equatable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// A decoded raster: interleaved 8- or 16-bit unsigned or 32-bit float samples, row by row.
public struct Image: Equatable, Sendable {
    /// Sample storage; 16-bit data stays 16-bit until normalised to float; float samples (TIFF) are kept as read.
    public enum Samples: Equatable, Sendable {
        case uint8([UInt8])
        case uint16([UInt16])
        case float32([Float])
    }

    public let width: Int
    public let height: Int
    public let channels: Int
    public var samples: Samples

    public init(width: Int, height: Int, channels: Int, samples: Samples) {
        self.width = width
        self.height = height
        self.channels = channels
        self.samples = samples
        precondition(
            sampleCount == width * height * channels, "sample count does not match \(width)x\(height)x\(channels)")
    }

    public var bitDepth: Int {
        switch samples {
        case .uint8: return 8
        case .uint16: return 16
        case .float32: return 32
        }
    }

    var sampleCount: Int {
        switch samples {
        case .uint8(let v): return v.count
        case .uint16(let v): return v.count
        case .float32(let v): return v.count
        }
    }

    /// Sample `c` of pixel (x, y) as an integer (a float sample rounded towards zero, clamped to Int).
    public func sample(x: Int, y: Int, channel c: Int) -> Int {
        let i = (y * width + x) * channels + c
        switch samples {
        case .uint8(let v): return Int(v[i])
        case .uint16(let v): return Int(v[i])
        case .float32(let v): return v[i].isFinite ? Int(clamping: Int64(max(-9e18, min(9e18, v[i])))) : 0
        }
    }

    /// The `width` x `height` window whose top-left pixel is (x, y).
    public func cropped(x: Int, y: Int, width ow: Int, height oh: Int) -> Image {
        precondition(
            x >= 0 && y >= 0 && ow >= 0 && oh >= 0 && x + ow <= width && y + oh <= height, "crop outside the image")
        if x == 0 && y == 0 && ow == width && oh == height { return self }
        func crop<T>(_ v: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(ow * oh * channels)
            for row in y..<(y + oh) {
                let from = (row * width + x) * channels
                out.append(contentsOf: v[from..<(from + ow * channels)])
            }
            return out
        }
        switch samples {
        case .uint8(let v): return Image(width: ow, height: oh, channels: channels, samples: .uint8(crop(v)))
        case .uint16(let v): return Image(width: ow, height: oh, channels: channels, samples: .uint16(crop(v)))
        case .float32(let v): return Image(width: ow, height: oh, channels: channels, samples: .float32(crop(v)))
        }
    }

    /// The image with an EXIF orientation (1-8) applied, so it displays upright.
    public func oriented(_ orientation: Int) -> Image {
        guard (2...8).contains(orientation) else { return self }
        let swapAxes = orientation >= 5
        let ow = swapAxes ? height : width, oh = swapAxes ? width : height
        let w = width, h = height
        func source(_ ox: Int, _ oy: Int) -> (Int, Int) {
            switch orientation {
            case 2: return (w - 1 - ox, oy)
            case 3: return (w - 1 - ox, h - 1 - oy)
            case 4: return (ox, h - 1 - oy)
            case 5: return (oy, ox)
            case 6: return (oy, h - 1 - ox)
            case 7: return (w - 1 - oy, h - 1 - ox)
            default: return (w - 1 - oy, ox)
            }
        }
        func remap<T>(_ v: [T]) -> [T] {
            var out = v
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let (ix, iy) = source(ox, oy)
                    for c in 0..<channels { out[(oy * ow + ox) * channels + c] = v[(iy * w + ix) * channels + c] }
                }
            }
            return out
        }
        switch samples {
        case .uint8(let v): return Image(width: ow, height: oh, channels: channels, samples: .uint8(remap(v)))
        case .uint16(let v): return Image(width: ow, height: oh, channels: channels, samples: .uint16(remap(v)))
        case .float32(let v): return Image(width: ow, height: oh, channels: channels, samples: .float32(remap(v)))
        }
    }
}
