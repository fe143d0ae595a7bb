import CKernels
import Foundation

/// Transposed convolutions whose stride equals their kernel (no overlap, no padding, one group), such as
/// U-Net's 2x2 stride-2 up-sampling: a plain GEMM followed by depth-to-space, with no zero-stuffing.
enum NonOverlappingTransposedConv {
    static func applies(
        kernel: [Int], stride: [Int], padding: [Int], outputPadding: [Int], dilation: [Int],
        groups: Int, spatialRank: Int
    ) -> Bool {
        spatialRank == 2 && groups == 1 && kernel == stride && padding.allSatisfy { $0 == 0 }
            && outputPadding.allSatisfy { $0 == 0 } && dilation.allSatisfy { $0 == 1 }
    }

    /// y = conv_transpose(x, w) + bias for x [N, Cin, H, W], w [Cin, Cout, kh, kw].
    static func forward(_ x: Tensor, _ w: Tensor, bias: [Float]?) -> Tensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
        let ck = cout * kh * kw, hw = h * wd
        let out = Tensor(zeros: [n, cout, h * kh, wd * kw], zeroed: false)
        let cols = ScratchBuffer(count: ck * hw)
        for img in 0..<n {
            GEMM.matmul(
                m: ck, n: hw, k: cin, a: w.pointer, aRowStride: 1, aColStride: ck,
                b: x.pointer + img * cin * hw, bRowStride: hw, bColStride: 1, c: cols.pointer, ldc: hw)
            depthToSpace(
                cols.pointer, into: out.pointer + img * cout * hw * kh * kw, channels: cout, h: h, w: wd,
                kh: kh, kw: kw, bias: bias)
        }
        return out
    }

    /// Gradients of the input and weight given the output gradient g.
    static func backward(_ g: Tensor, x: Tensor, w: Tensor, needInput: Bool, needWeight: Bool) -> (Tensor?, Tensor?) {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
        let ck = cout * kh * kw, hw = h * wd
        let gx = needInput ? Tensor(zeros: x.shape, zeroed: false) : nil
        let gw = needWeight ? Tensor(zeros: w.shape) : nil
        let cols = ScratchBuffer(count: ck * hw)
        let offsets = (0..<ck).map { $0 * hw }
        for img in 0..<n {
            spaceToDepth(
                g.pointer + img * cout * hw * kh * kw, into: cols.pointer, channels: cout, h: h, w: wd,
                kh: kh, kw: kw)
            if let gx {
                GEMM.matmul(
                    m: cin, n: hw, k: ck, a: w.pointer, aRowStride: ck, aColStride: 1,
                    b: cols.pointer, bRowStride: hw, bColStride: 1, c: gx.pointer + img * cin * hw, ldc: hw)
            }
            if let gw {
                let xs = x.pointer + img * cin * hw, cp = cols.pointer, gp = gw.pointer
                let chunk = (cin + Parallel.threadCount - 1) / Parallel.threadCount
                offsets.withUnsafeBufferPointer { ob in
                    Parallel.forEach(Parallel.threadCount) { t in
                        let r0 = t * chunk, rows = min(chunk, cin - r0)
                        if rows > 0 {
                            tk_gemm_dot(
                                Int32(rows), Int32(ck), hw, xs + r0 * hw, hw, cp, ob.baseAddress!,
                                gp + r0 * ck, ck, 1)
                        }
                    }
                }
            }
        }
        return (gx, gw)
    }

    /// out[c][y*kh+ky][x*kw+kx] = cols[(c*kh+ky)*kw+kx][y*w+x] + bias[c].
    static func depthToSpace(
        _ cols: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, channels: Int,
        h: Int, w: Int, kh: Int, kw: Int, bias: [Float]?
    ) {
        let ow = w * kw, hw = h * w
        Parallel.forRanges(channels, grain: 1) { r in
            for c in r {
                let b = bias?[c] ?? 0
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let src = cols + ((c * kh + ky) * kw + kx) * hw
                        for y in 0..<h {
                            let dst = out + (c * h * kh + y * kh + ky) * ow + kx
                            let s = src + y * w
                            for x in 0..<w { dst[x * kw] = s[x] + b }
                        }
                    }
                }
            }
        }
    }

    /// cols[(c*kh+ky)*kw+kx][y*w+x] = g[c][y*kh+ky][x*kw+kx].
    static func spaceToDepth(
        _ g: UnsafePointer<Float>, into cols: UnsafeMutablePointer<Float>, channels: Int,
        h: Int, w: Int, kh: Int, kw: Int
    ) {
        let ow = w * kw, hw = h * w
        Parallel.forRanges(channels, grain: 1) { r in
            for c in r {
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let dst = cols + ((c * kh + ky) * kw + kx) * hw
                        for y in 0..<h {
                            let s = g + (c * h * kh + y * kh + ky) * ow + kx
                            let d = dst + y * w
                            for x in 0..<w { d[x] = s[x * kw] }
                        }
                    }
                }
            }
        }
    }
}
