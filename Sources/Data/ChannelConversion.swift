import Foundation
import TesseraEngine

/// The one conversion every command uses to bring a decoded image to the channel count a model takes, so a
/// folder that mixes layouts (a scanner's RGB export among gray microscope files, an RGBA screenshot, a palette
/// PNG) reaches the network in its layout instead of stopping the run.
///
/// The codecs already expand palettes to RGB(A) and CMYK JPEGs to RGB and apply the EXIF orientation, so the
/// layouts met here are gray, gray+alpha, RGB and RGBA, 8- or 16-bit:
/// - alpha is dropped (a model never sees transparency; nnU-Net and Cellpose read only the colour planes);
/// - RGB to gray by luminance with ITU-R BT.601 weights, L = (299 R + 587 G + 114 B) / 1000 rounded to nearest,
///   as PIL's `convert("L")` and the JPEG decoder's own gray output;
/// - gray to RGB by replication;
/// - the bit depth is kept (16-bit samples stay 16-bit until normalisation).
public extension Image {
    /// Colour channels, alpha not counted: 1 for gray and gray+alpha, 3 for RGB and RGBA.
    var colorChannels: Int { Image.colorChannels(of: channels) }

    /// The colour channels of a layout of `channels` samples a pixel (2 and 4 carry alpha).
    static func colorChannels(of channels: Int) -> Int { channels == 2 || channels == 4 ? channels - 1 : channels }

    /// The image with `wanted` channels (see `ChannelConversion` above).
    /// - Throws: an `FileError` naming `file` and both channel counts when no conversion makes sense
    ///   (a 2-channel image for a 3-channel model, a 5-channel model).
    func converted(toChannels wanted: Int, file: String) throws -> Image {
        if channels == wanted { return self }
        switch (colorChannels, wanted) {
        case (1, 1), (3, 3):
            return mapped(to: wanted) { src, dst in
                for c in 0..<wanted { dst[c] = src[c] }
            }
        case (3, 1):
            return mapped(to: 1) { src, dst in
                dst[0] = (299 * src[0] + 587 * src[1] + 114 * src[2] + 500) / 1000
            }
        case (1, 3):
            return mapped(to: 3) { src, dst in
                for c in 0..<3 { dst[c] = src[0] }
            }
        default:
            throw FileError(
                file: file,
                reason: "the image has \(channels) channels (\(layoutName)) and the model "
                    + "takes \(wanted); there is no conversion between them")
        }
    }

    /// A name for the layout of `channels` channels, for error messages.
    var layoutName: String {
        switch channels {
        case 1: return "gray"
        case 2: return "gray+alpha"
        case 3: return "RGB"
        case 4: return "RGBA"
        default: return "\(channels)-channel"
        }
    }

    /// Builds an image of `outChannels` channels of the same depth, pixel by pixel, through `body(source,
    /// destination)`: one pixel's samples in and out, widened to UInt64 (weighted sums of 16-bit samples cannot
    /// overflow).
    private func mapped(
        to outChannels: Int,
        _ body: (UnsafeBufferPointer<UInt64>, UnsafeMutableBufferPointer<UInt64>) -> Void
    ) -> Image {
        let n = width * height
        func convert<T: FixedWidthInteger & UnsignedInteger>(_ v: [T]) -> [T] {
            var src = [UInt64](repeating: 0, count: channels), dst = [UInt64](repeating: 0, count: outChannels)
            var out = [T](repeating: 0, count: n * outChannels)
            src.withUnsafeMutableBufferPointer { s in
                dst.withUnsafeMutableBufferPointer { d in
                    for p in 0..<n {
                        for c in 0..<channels { s[c] = UInt64(v[p * channels + c]) }
                        body(UnsafeBufferPointer(s), d)
                        for c in 0..<outChannels { out[p * outChannels + c] = T(truncatingIfNeeded: d[c]) }
                    }
                }
            }
            return out
        }
        switch samples {
        case .uint8(let v):
            return Image(width: width, height: height, channels: outChannels, samples: .uint8(convert(v)))
        case .uint16(let v):
            return Image(width: width, height: height, channels: outChannels, samples: .uint16(convert(v)))
        case .float32(let v):
            // The same rules in float arithmetic (luminance unrounded): float samples may be negative.
            var out = [Float](repeating: 0, count: n * outChannels)
            for p in 0..<n {
                let px = p * channels, o = p * outChannels
                if outChannels == 1 && colorChannels == 3 {
                    out[o] = (299 * v[px] + 587 * v[px + 1] + 114 * v[px + 2]) / 1000
                } else {
                    for c in 0..<outChannels { out[o + c] = v[px + (colorChannels == 1 ? 0 : c)] }
                }
            }
            return Image(width: width, height: height, channels: outChannels, samples: .float32(out))
        }
    }
}

public extension Image {
    /// The image as 8-bit RGBA, as the PNG and JPEG decoders' `rgba8` option gives it: 16-bit samples keep their
    /// high byte, floats are clamped to [0, 1], gray is repeated, a missing alpha is opaque.
    /// - Throws: for layouts other than gray, gray+alpha, RGB and RGBA.
    func rgba8(file: String) throws -> Image {
        guard (1...4).contains(channels) else {
            throw FileError(file: file, reason: "a \(channels)-channel image has no RGBA form")
        }
        let n = width * height, color = colorChannels == 3, alpha = channels == 2 || channels == 4
        var out = [UInt8](repeating: 255, count: n * 4)
        func byte(_ i: Int) -> UInt8 {
            switch samples {
            case .uint8(let v): return v[i]
            case .uint16(let v): return UInt8(v[i] >> 8)
            case .float32(let v): return UInt8((max(0, min(1, v[i])) * 255).rounded())
            }
        }
        for p in 0..<n {
            for k in 0..<3 { out[p * 4 + k] = byte(p * channels + (color ? k : 0)) }
            if alpha { out[p * 4 + 3] = byte(p * channels + channels - 1) }
        }
        return Image(width: width, height: height, channels: 4, samples: .uint8(out))
    }
}
