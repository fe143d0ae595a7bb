import CKernels
import Foundation

/// How a convolution pads its input: none, PyTorch's 'same', 'full', or explicit per spatial axis.
public enum Padding: Equatable, Sendable {
    case valid
    case same
    case full
    case explicit([Int])

    /// Front padding and total padding per axis for the given kernel and dilation.
    func amounts(kernel: [Int], dilation: [Int]) -> [(front: Int, total: Int)] {
        kernel.indices.map { i in
            let span = dilation[i] * (kernel[i] - 1)
            switch self {
            case .valid: return (0, 0)
            case .same: return (span / 2, span)
            case .full: return (span, 2 * span)
            case .explicit(let p):
                let v = p.count == 1 ? p[0] : p[i]
                return (v, 2 * v)
            }
        }
    }
}

/// Shapes and hyper-parameters of one N-d convolution, spatial axes padded to three (D, H, W).
struct ConvGeometry {
    let spatialRank: Int
    let batch: Int
    let inChannels: Int, outChannels: Int, groups: Int
    let input: [Int]  // 3 spatial sizes
    let output: [Int]
    let kernel: [Int]
    let stride: [Int]
    let padFront: [Int]
    let dilation: [Int]

    var inGroup: Int { inChannels / groups }
    var outGroup: Int { outChannels / groups }
    var kernelVolume: Int { kernel.reduce(1, *) }

    /// A 1x1 stride-1 unpadded layer over the whole source: its im2col rows are the source planes themselves.
    func isPointwise(sourceSize: [Int], columns: [Int]) -> Bool {
        kernelVolume == 1 && stride.allSatisfy { $0 == 1 } && padFront.allSatisfy { $0 == 0 } && sourceSize == columns
    }
    var inputVolume: Int { input.reduce(1, *) }
    var outputVolume: Int { output.reduce(1, *) }

    static func lift(_ v: [Int], fill: Int) -> [Int] { Array(repeating: fill, count: 3 - v.count) + v }

    /// Arithmetic cost (2 x multiply-adds) of the forward pass.
    var flops: Double { 2 * Double(batch * outChannels * outputVolume) * Double(inGroup * kernelVolume) }

    /// The im2col view over `source` (one image, one group) whose columns span `columns`.
    func im2col(
        source: UnsafePointer<Float>, channels: Int, sourceSize: [Int], columns: [Int],
        transposed: Bool
    ) -> tk_conv_geom {
        tk_conv_geom(
            x: source, channels: Int32(channels),
            id: Int32(sourceSize[0]), ih: Int32(sourceSize[1]), iw: Int32(sourceSize[2]),
            od: Int32(columns[0]), oh: Int32(columns[1]), ow: Int32(columns[2]),
            kd: Int32(kernel[0]), kh: Int32(kernel[1]), kw: Int32(kernel[2]),
            sd: Int32(stride[0]), sh: Int32(stride[1]), sw: Int32(stride[2]),
            pd: Int32(padFront[0]), ph: Int32(padFront[1]), pw: Int32(padFront[2]),
            dd: Int32(dilation[0]), dh: Int32(dilation[1]), dw: Int32(dilation[2]),
            transposed: transposed ? 1 : 0)
    }
}
