import Foundation
import TesseraData

/// Renders a label mask over its image: each non-background class tints its pixels (alpha 0.4) and its outline
/// (pixels with a differently labelled 4-neighbour) is drawn in the full class colour.
public enum Overlay {
    public static func render(image: Image, labels: [UInt16], colors: [[Int]], alpha: Float = 0.4) -> Image {
        let w = image.width, h = image.height, ch = image.channels
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        // The image as 8-bit RGB (gray repeated; 16-bit scaled down; alpha dropped).
        for i in 0..<(w * h) {
            for k in 0..<3 {
                let c = min(k, ch - 1)
                switch image.samples {
                case .uint8(let v): rgb[i * 3 + k] = v[i * ch + c]
                case .uint16(let v): rgb[i * 3 + k] = UInt8(v[i * ch + c] >> 8)
                }
            }
        }
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x, l = Int(labels[i])
                guard l > 0 else { continue }
                let color = l < colors.count ? colors[l] : [255, 255, 255]
                let m = labels[i]
                let edge = (x > 0 && labels[i - 1] != m) || (x + 1 < w && labels[i + 1] != m)
                    || (y > 0 && labels[i - w] != m) || (y + 1 < h && labels[i + w] != m)
                let a: Float = edge ? 1 : alpha
                for k in 0..<3 {
                    let v = Float(rgb[i * 3 + k]) * (1 - a) + Float(color[k]) * a
                    rgb[i * 3 + k] = UInt8(max(0, min(255, v.rounded())))
                }
            }
        }
        return Image(width: w, height: h, channels: 3, samples: .uint8(rgb))
    }
}
