import Foundation

extension Functional {
    /// Bilinear resize of [N, C, H, W] to `size`, as torch's interpolate(mode='bilinear').
    public static func resizeBilinear(_ x: Tensor, size: [Int], alignCorners: Bool = false) -> Tensor {
        precondition(x.rank == 4 && size.count == 2, "resizeBilinear expects [N, C, H, W] and a 2-d size")
        let (h, w) = (x.shape[2], x.shape[3])
        let ys = linearTaps(input: h, output: size[0], alignCorners: alignCorners)
        let xs = linearTaps(input: w, output: size[1], alignCorners: alignCorners)
        return separableResample(x, rows: ys, cols: xs)
    }

    /// Nearest-neighbour resize, as torch's interpolate(mode='nearest') (source = floor(dst * in / out)).
    public static func resizeNearest(_ x: Tensor, size: [Int]) -> Tensor {
        precondition(x.rank == 4 && size.count == 2, "resizeNearest expects [N, C, H, W] and a 2-d size")
        let (h, w) = (x.shape[2], x.shape[3])
        func taps(_ i: Int, _ o: Int) -> [Tap] {
            let scale = Double(i) / Double(o)
            return (0..<o).map { Tap(i0: Swift.min(Int(floor(Double($0) * scale)), i - 1), i1: 0, w1: 0) }
        }
        return separableResample(x, rows: taps(h, size[0]), cols: taps(w, size[1]))
    }

    /// A source position: value = (1 - w1) * src[i0] + w1 * src[i1].
    struct Tap { let i0: Int, i1: Int; let w1: Float }

    static func linearTaps(input: Int, output: Int, alignCorners: Bool) -> [Tap] {
        (0..<output).map { o in
            var src: Double
            if alignCorners {
                src = output > 1 ? Double(o) * Double(input - 1) / Double(output - 1) : 0
            } else {
                src = (Double(o) + 0.5) * Double(input) / Double(output) - 0.5
                if src < 0 { src = 0 }
            }
            let i0 = Swift.min(Int(floor(src)), input - 1)
            let i1 = Swift.min(i0 + 1, input - 1)
            return Tap(i0: i0, i1: i1, w1: Float(src - Double(i0)))
        }
    }

    static func separableResample(_ x: Tensor, rows: [Tap], cols: [Tap]) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = rows.count, ow = cols.count
        let xc = x.contiguous()
        let out = Tensor(zeros: [n, c, oh, ow], zeroed: false)
        let src = xc.pointer, dst = out.pointer
        Parallel.forRanges(n * c, grain: 1) { r in
            for plane in r {
                let sp = src + plane * h * w, dp = dst + plane * oh * ow
                for (oy, ty) in rows.enumerated() {
                    let r0 = sp + ty.i0 * w, r1 = sp + ty.i1 * w
                    for (ox, tx) in cols.enumerated() {
                        let top = r0[tx.i0] * (1 - tx.w1) + r0[tx.i1] * tx.w1
                        let bottom = r1[tx.i0] * (1 - tx.w1) + r1[tx.i1] * tx.w1
                        dp[oy * ow + ox] = top * (1 - ty.w1) + bottom * ty.w1
                    }
                }
            }
        }
        return Tensor.record(out, [x]) { g in
            let gc = g.contiguous(), gx = Tensor(zeros: x.shape)
            let gp = gc.pointer, gxp = gx.pointer
            Parallel.forRanges(n * c, grain: 1) { r in
                for plane in r {
                    let sp = gp + plane * oh * ow, dp = gxp + plane * h * w
                    for (oy, ty) in rows.enumerated() {
                        for (ox, tx) in cols.enumerated() {
                            let v = sp[oy * ow + ox]
                            let top = v * (1 - ty.w1), bottom = v * ty.w1
                            dp[ty.i0 * w + tx.i0] += top * (1 - tx.w1)
                            dp[ty.i0 * w + tx.i1] += top * tx.w1
                            dp[ty.i1 * w + tx.i0] += bottom * (1 - tx.w1)
                            dp[ty.i1 * w + tx.i1] += bottom * tx.w1
                        }
                    }
                }
            }
            return [gx]
        }
    }
}
