import Foundation
import TesseraData

/// The file format of overlays (`--overlay-format`, `overlay_format`): lossless PNG or smaller JPEG.
public enum OverlayFormat: String, Codable, CaseIterable, Sendable {
    case png, jpg

    /// The overlay file's extension.
    public var fileExtension: String { rawValue }
}

/// Images drawn over their inputs: label masks (class tints and outlines) and attribution heatmaps.
public enum Overlay {
    /// The image as 8-bit RGB: gray repeated, 16-bit scaled down, float clamped to [0, 1], alpha dropped.
    public static func rgb(of image: Image) -> [UInt8] {
        let n = image.width * image.height, ch = image.channels, colour = ch >= 3
        var rgb = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n {
            for k in 0..<3 {
                let c = colour ? k : 0
                switch image.samples {
                case .uint8(let v): rgb[i * 3 + k] = v[i * ch + c]
                case .uint16(let v): rgb[i * 3 + k] = UInt8(v[i * ch + c] >> 8)
                case .float32(let v): rgb[i * 3 + k] = UInt8((max(0, min(1, v[i * ch + c])) * 255).rounded())
                }
            }
        }
        return rgb
    }

    /// Each non-background class tints its pixels (`alpha`) and its outline (pixels with a differently labelled
    /// 4-neighbour) is drawn in the full class colour; with `instances` (object id per pixel), each object's
    /// outline instead, in a colour of its own.
    public static func render(
        image: Image, labels: [UInt16], colors: [[Int]], alpha: Float = 0.4, instances: [UInt32]? = nil
    ) -> Image {
        let whole = PixelWindow(x: 0, y: 0, width: image.width, height: image.height)
        return render(
            image: image, region: whole, labels: labels, instances: instances, around: whole, colors: colors,
            alpha: alpha)
    }

    /// The overlay of `region` of a larger image (`image` holds the region's pixels) from labels and object ids
    /// over `around` (the region grown by a pixel where the image goes on), so outlines at the region's edge are
    /// those of the whole image: rendered window by window, a streamed overlay equals the whole-image one.
    public static func render(
        image: Image, region: PixelWindow, labels: [UInt16], instances: [UInt32]?, around: PixelWindow,
        colors: [[Int]], alpha: Float = 0.4
    ) -> Image {
        let w = region.width, h = region.height, aw = around.width, ah = around.height
        var rgb = rgb(of: image)
        for y in 0..<h {
            for x in 0..<w {
                let ax = x + region.x - around.x, ay = y + region.y - around.y, j = ay * aw + ax
                let i = y * w + x, l = Int(labels[j])
                guard l > 0 else { continue }
                var color = l < colors.count ? colors[l] : [255, 255, 255]
                let edge: Bool
                if let ids = instances {
                    let m = ids[j]
                    edge =
                        m != 0
                        && ((ax > 0 && ids[j - 1] != m) || (ax + 1 < aw && ids[j + 1] != m)
                            || (ay > 0 && ids[j - aw] != m) || (ay + 1 < ah && ids[j + aw] != m))
                    if edge { color = instanceColor(m) }
                } else {
                    let m = labels[j]
                    edge =
                        (ax > 0 && labels[j - 1] != m) || (ax + 1 < aw && labels[j + 1] != m)
                        || (ay > 0 && labels[j - aw] != m) || (ay + 1 < ah && labels[j + aw] != m)
                }
                let a: Float = edge ? 1 : alpha
                for k in 0..<3 {
                    let v = Float(rgb[i * 3 + k]) * (1 - a) + Float(color[k]) * a
                    rgb[i * 3 + k] = UInt8(max(0, min(255, v.rounded())))
                }
            }
        }
        return Image(width: w, height: h, channels: 3, samples: .uint8(rgb))
    }

    /// A bright colour for object `id`: hues a golden angle apart, so neighbouring ids differ.
    static func instanceColor(_ id: UInt32) -> [Int] {
        let hue = (Double(id) * 0.618_033_988_749_895).truncatingRemainder(dividingBy: 1) * 6
        let f = hue - hue.rounded(.down), q = Int((1 - f) * 255), t = Int(f * 255)
        switch Int(hue) {
        case 0: return [255, t, 0]
        case 1: return [q, 255, 0]
        case 2: return [0, 255, t]
        case 3: return [0, q, 255]
        case 4: return [t, 0, 255]
        default: return [255, 0, q]
        }
    }

    /// A heatmap in [0, 1] (row-major, the image's size) coloured by `colormap` and blended over the image:
    /// alpha x colour + (1 - alpha) x image.
    public static func heatmap(_ heat: [Float], over image: Image, colormap: Colormap, alpha: Float = 0.5) -> Image {
        var rgb = rgb(of: image)
        for i in 0..<(image.width * image.height) {
            let c = colormap.color(heat[i])
            for k in 0..<3 {
                rgb[i * 3 + k] = UInt8(
                    max(0, min(255, (alpha * Float(c[k]) + (1 - alpha) * Float(rgb[i * 3 + k])).rounded())))
            }
        }
        return Image(width: image.width, height: image.height, channels: 3, samples: .uint8(rgb))
    }
}
