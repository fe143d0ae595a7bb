import CKernels
import Foundation

extension Functional {
    /// Output length of a pooling window sweep, with torch's ceil_mode rule.
    static func pooledSize(_ input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1, ceilMode: Bool)
        -> Int
    {
        let span = input + 2 * padding - dilation * (kernel - 1) - 1
        var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
        if ceilMode && (out - 1) * stride >= input + padding { out -= 1 }
        return out
    }

    /// 2-d max pooling over [N, C, H, W]; the gradient goes to each window's (first) maximum.
    public static func maxPool2d(
        _ x: Tensor, kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0],
        dilation: [Int] = [1], ceilMode: Bool = false
    ) -> Tensor {
        precondition(x.rank == 4, "maxPool2d expects [N, C, H, W], got \(x.shape)")
        let k = expand(kernel, 2, "kernel_size"), s = expand(stride ?? kernel, 2, "stride")
        let p = expand(padding, 2, "padding"), d = expand(dilation, 2, "dilation")
        precondition(p[0] <= k[0] / 2 && p[1] <= k[1] / 2, "pad should be at most half of kernel size")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = pooledSize(h, kernel: k[0], stride: s[0], padding: p[0], dilation: d[0], ceilMode: ceilMode)
        let ow = pooledSize(w, kernel: k[1], stride: s[1], padding: p[1], dilation: d[1], ceilMode: ceilMode)
        let xc = x.contiguous()
        if k == [2, 2] && s == [2, 2] && p == [0, 0] && d == [1, 1] && !ceilMode {
            return maxPool2x2(xc, oh: oh, ow: ow)
        }
        let out = Tensor(zeros: [n, c, oh, ow], zeroed: false)
        let recording = GradMode.isEnabled && x.requiresGrad
        var argmax = [Int32](repeating: 0, count: recording ? n * c * oh * ow : 0)
        let src = xc.pointer, dst = out.pointer
        let geometry = tk_pool_geom(
            h: Int32(h), w: Int32(w), oh: Int32(oh), ow: Int32(ow), kh: Int32(k[0]),
            kw: Int32(k[1]), sh: Int32(s[0]), sw: Int32(s[1]), ph: Int32(p[0]),
            pw: Int32(p[1]), dh: Int32(d[0]), dw: Int32(d[1]))
        argmax.withUnsafeMutableBufferPointer { am in
            let amp = am.baseAddress
            withUnsafePointer(to: geometry) { gp in
                Parallel.forRanges(n * c, grain: 4) { r in
                    for plane in r {
                        tk_maxpool2d_plane(
                            src + plane * h * w, gp, dst + plane * oh * ow,
                            recording ? amp! + plane * oh * ow : nil)
                    }
                }
            }
        }
        return Tensor.record(out, [x]) { g in
            let gc = g.contiguous()
            let gx = Tensor(zeros: x.shape)
            let gp = gc.pointer, gxp = gx.pointer
            argmax.withUnsafeBufferPointer { am in
                Parallel.forRanges(n * c, grain: 4) { r in
                    for plane in r {
                        for o in 0..<(oh * ow) {
                            let i = Int(am[plane * oh * ow + o])
                            if i >= 0 { gxp[plane * h * w + i] += gp[plane * oh * ow + o] }
                        }
                    }
                }
            }
            return [gx]
        }
    }

    /// The common 2x2 stride-2 max pool; the arg-max is kept only when a gradient will be needed.
    static func maxPool2x2(_ x: Tensor, oh: Int, ow: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(zeros: [n, c, oh, ow], zeroed: false)
        let recording = GradMode.isEnabled && x.requiresGrad
        let argmax = recording ? TensorStorage(count: out.count, zeroed: false) : nil
        let src = x.pointer, dst = out.pointer
        let am = argmax.map { UnsafeMutableRawPointer($0.base).bindMemory(to: UInt8.self, capacity: out.count) }
        Parallel.forRanges(n * c * oh, grain: 64) { r in
            for row in r {
                let plane = row / oh, oy = row % oh
                let r0 = src + plane * h * w + 2 * oy * w
                // As torch: a later value wins if it is larger or NaN, so NaN propagates.
                tk_maxpool2x2_row(r0, r0 + w, ow, dst + row * ow, am.map { $0 + row * ow })
            }
        }
        return Tensor.record(out, [x]) { g in
            let gc = g.contiguous(), gx = Tensor(zeros: x.shape)
            let gp = gc.pointer, gxp = gx.pointer
            let a = UnsafeMutableRawPointer(argmax!.base).bindMemory(to: UInt8.self, capacity: out.count)
            Parallel.forRanges(n * c * oh, grain: 64) { r in
                for row in r {
                    let plane = row / oh, oy = row % oh
                    let base = gxp + plane * h * w + 2 * oy * w
                    for ox in 0..<ow {
                        let i = Int(a[row * ow + ox])
                        base[(i >> 1) * w + 2 * ox + (i & 1)] = gp[row * ow + ox]
                    }
                }
            }
            return [gx]
        }
    }

    /// 2-d average pooling with torch's padding, ceil_mode and count_include_pad rules.
    public static func avgPool2d(
        _ x: Tensor, kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0],
        ceilMode: Bool = false, countIncludePad: Bool = true
    ) -> Tensor {
        precondition(x.rank == 4, "avgPool2d expects [N, C, H, W], got \(x.shape)")
        let k = expand(kernel, 2, "kernel_size"), s = expand(stride ?? kernel, 2, "stride")
        let p = expand(padding, 2, "padding")
        let (h, w) = (x.shape[2], x.shape[3])
        let oh = pooledSize(h, kernel: k[0], stride: s[0], padding: p[0], ceilMode: ceilMode)
        let ow = pooledSize(w, kernel: k[1], stride: s[1], padding: p[1], ceilMode: ceilMode)
        let windows: [PoolWindow] = (0..<oh).flatMap { oy in
            (0..<ow).map { ox in
                var y0 = oy * s[0] - p[0], x0 = ox * s[1] - p[1]
                var y1 = Swift.min(y0 + k[0], h + p[0]), x1 = Swift.min(x0 + k[1], w + p[1])
                let padded = (y1 - y0) * (x1 - x0)
                y0 = Swift.max(y0, 0); x0 = Swift.max(x0, 0); y1 = Swift.min(y1, h); x1 = Swift.min(x1, w)
                let divisor = countIncludePad ? padded : (y1 - y0) * (x1 - x0)
                return PoolWindow(y0: y0, y1: y1, x0: x0, x1: x1, weight: 1 / Float(divisor))
            }
        }
        return windowPool(x, outSize: (oh, ow), windows: windows)
    }

    /// Adaptive average pooling to `outputSize` (torch's start/end index rule).
    public static func adaptiveAvgPool2d(_ x: Tensor, outputSize: [Int]) -> Tensor {
        precondition(x.rank == 4, "adaptiveAvgPool2d expects [N, C, H, W], got \(x.shape)")
        let o = expand(outputSize, 2, "output_size")
        let windows = adaptiveWindows(h: x.shape[2], w: x.shape[3], oh: o[0], ow: o[1]).map {
            PoolWindow(y0: $0.y0, y1: $0.y1, x0: $0.x0, x1: $0.x1, weight: 1 / Float(($0.y1 - $0.y0) * ($0.x1 - $0.x0)))
        }
        return windowPool(x, outSize: (o[0], o[1]), windows: windows)
    }

    /// Adaptive max pooling to `outputSize`.
    public static func adaptiveMaxPool2d(_ x: Tensor, outputSize: [Int]) -> Tensor {
        precondition(x.rank == 4, "adaptiveMaxPool2d expects [N, C, H, W], got \(x.shape)")
        let o = expand(outputSize, 2, "output_size")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let windows = adaptiveWindows(h: h, w: w, oh: o[0], ow: o[1])
        let xc = x.contiguous()
        let out = Tensor(zeros: [n, c, o[0], o[1]], zeroed: false)
        var argmax = [Int](repeating: 0, count: out.count)
        for plane in 0..<(n * c) {
            let sp = xc.pointer + plane * h * w
            for (wi, win) in windows.enumerated() {
                var best = -Float.infinity, bi = -1
                for y in win.y0..<win.y1 {
                    for xx in win.x0..<win.x1 where sp[y * w + xx] > best || bi < 0 {
                        best = sp[y * w + xx]; bi = y * w + xx
                    }
                }
                out.pointer[plane * windows.count + wi] = best
                argmax[plane * windows.count + wi] = bi
            }
        }
        return Tensor.record(out, [x]) { g in
            let gc = g.contiguous(), gx = Tensor(zeros: x.shape)
            for plane in 0..<(n * c) {
                for wi in 0..<windows.count {
                    gx.pointer[plane * h * w + argmax[plane * windows.count + wi]] +=
                        gc.pointer[plane * windows.count + wi]
                }
            }
            return [gx]
        }
    }

    /// Global average pooling to [N, C, 1, 1].
    public static func globalAvgPool2d(_ x: Tensor) -> Tensor { x.mean(axes: [2, 3], keepDims: true) }

    static func adaptiveWindows(h: Int, w: Int, oh: Int, ow: Int) -> [(y0: Int, y1: Int, x0: Int, x1: Int)] {
        (0..<oh).flatMap { oy in
            (0..<ow).map { ox in
                (oy * h / oh, ((oy + 1) * h + oh - 1) / oh, ox * w / ow, ((ox + 1) * w + ow - 1) / ow)
            }
        }
    }

    struct PoolWindow {
        let y0: Int, y1: Int, x0: Int, x1: Int
        let weight: Float
    }

    /// Weighted window sums per plane: out[o] = weight_o * sum(x over window_o); gradient spreads back.
    static func windowPool(_ x: Tensor, outSize: (Int, Int), windows: [PoolWindow]) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let xc = x.contiguous()
        let out = Tensor(zeros: [n, c, outSize.0, outSize.1], zeroed: false)
        let src = xc.pointer, dst = out.pointer, per = windows.count
        Parallel.forRanges(n * c, grain: 4) { r in
            for plane in r {
                let sp = src + plane * h * w
                for (wi, win) in windows.enumerated() {
                    var acc: Float = 0
                    for y in win.y0..<win.y1 { for xx in win.x0..<win.x1 { acc += sp[y * w + xx] } }
                    dst[plane * per + wi] = acc * win.weight
                }
            }
        }
        return Tensor.record(out, [x]) { g in
            let gc = g.contiguous(), gx = Tensor(zeros: x.shape)
            let gp = gc.pointer, gxp = gx.pointer
            Parallel.forRanges(n * c, grain: 4) { r in
                for plane in r {
                    let dp = gxp + plane * h * w
                    for (wi, win) in windows.enumerated() {
                        let v = gp[plane * per + wi] * win.weight
                        for y in win.y0..<win.y1 { for xx in win.x0..<win.x1 { dp[y * w + xx] += v } }
                    }
                }
            }
            return [gx]
        }
    }
}
