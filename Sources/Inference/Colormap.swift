import Foundation
import TesseraData

/// Colour scales for heatmaps: jet (as OpenCV and pytorch-grad-cam show Grad-CAM), turbo, viridis and inferno.
public enum Colormap: String, CaseIterable, Codable, Sendable {
    case jet, turbo, viridis, inferno

    /// The 8-bit RGB colour of `value` in [0, 1] (clamped).
    public func color(_ value: Float) -> [UInt8] {
        let x = value.isFinite ? min(max(value, 0), 1) : 0
        let rgb: (Float, Float, Float)
        switch self {
        case .jet:
            // Piecewise linear: blue -> cyan -> yellow -> red, dark at both ends.
            func ramp(_ c: Float) -> Float { min(max(1.5 - abs(4 * x - c), 0), 1) }
            rgb = (ramp(3), ramp(2), ramp(1))
        case .turbo:
            // Google's published polynomial fit of Turbo (Mikhailov 2019).
            func poly(_ c: [Float]) -> Float { c.reversed().reduce(0) { $0 * x + $1 } }
            rgb = (
                poly([0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943]),
                poly([0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604]),
                poly([0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973])
            )
        case .viridis, .inferno:
            rgb = Colormap.interpolate(self == .viridis ? Colormap.viridisStops : Colormap.infernoStops, x)
        }
        return [rgb.0, rgb.1, rgb.2].map { UInt8(min(max($0, 0), 1) * 255 + 0.5) }
    }

    /// Linear interpolation between equally spaced colours.
    static func interpolate(_ stops: [UInt32], _ x: Float) -> (Float, Float, Float) {
        let t = x * Float(stops.count - 1), i = min(Int(t), stops.count - 2), f = t - Float(i)
        func channel(_ c: UInt32, _ shift: UInt32) -> Float { Float((c >> shift) & 0xFF) / 255 }
        func mix(_ shift: UInt32) -> Float { channel(stops[i], shift) * (1 - f) + channel(stops[i + 1], shift) * f }
        return (mix(16), mix(8), mix(0))
    }

    /// matplotlib's viridis and inferno at 0, 1/8, ..., 1.
    static let viridisStops: [UInt32] = [
        0x440154, 0x472D7B, 0x3B528B, 0x2C728E, 0x21918C, 0x28AE80, 0x5EC962, 0xADDC30, 0xFDE725
    ]
    static let infernoStops: [UInt32] = [
        0x000004, 0x1F0C48, 0x550F6D, 0x88226A, 0xBA3655, 0xE35933, 0xF98E09, 0xF9CB35, 0xFCFFA4
    ]

    /// The heatmap as an 8-bit RGB image.
    public func render(_ heat: [Float], width: Int, height: Int) -> Image {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            let c = color(heat[i])
            rgb[i * 3] = c[0]
            rgb[i * 3 + 1] = c[1]
            rgb[i * 3 + 2] = c[2]
        }
        return Image(width: width, height: height, channels: 3, samples: .uint8(rgb))
    }
}
