import CKernels
import Foundation

extension Functional {
    public static func relu(_ x: Tensor) -> Tensor {
        let out = Elementwise.map(x, ReluOp())
        return Tensor.record(out, [x]) { g in
            let through = Elementwise.zip(g, out, ReluGradOp())
            return [GuidedReLU.isOn ? Elementwise.map(through, ReluOp()) : through]
        }
    }

    public static func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
        Tensor.record(Elementwise.map(x) { $0 > 0 ? $0 : $0 * negativeSlope }, [x]) { g in
            [Elementwise.zip(g, x) { $1 > 0 ? $0 : $0 * negativeSlope }]
        }
    }

    public static func sigmoid(_ x: Tensor) -> Tensor {
        let out = Elementwise.map(x) { 1 / (1 + Foundation.exp(-$0)) }
        return Tensor.record(out, [x]) { g in [Elementwise.zip(g, out) { $0 * $1 * (1 - $1) }] }
    }

    public static func tanh(_ x: Tensor) -> Tensor {
        let out = Elementwise.map(x) { Foundation.tanh($0) }
        return Tensor.record(out, [x]) { g in [Elementwise.zip(g, out) { $0 * (1 - $1 * $1) }] }
    }

    /// GELU with the exact erf form (torch's default approximate='none').
    public static func gelu(_ x: Tensor) -> Tensor {
        let out = Elementwise.map(x) { 0.5 * $0 * (1 + Foundation.erf($0 * 0.70710678118654752)) }
        return Tensor.record(out, [x]) { g in
            [
                Elementwise.zip(g, x) { gv, v in
                    let cdf = 0.5 * (1 + Foundation.erf(v * 0.70710678118654752))
                    let pdf = Foundation.exp(-0.5 * v * v) * 0.39894228040143268
                    return gv * (cdf + v * pdf)
                }
            ]
        }
    }

    public static func silu(_ x: Tensor) -> Tensor {
        let out = Elementwise.map(x) { $0 / (1 + Foundation.exp(-$0)) }
        return Tensor.record(out, [x]) { g in
            [
                Elementwise.zip(g, x) { gv, v in
                    let s = 1 / (1 + Foundation.exp(-v))
                    return gv * s * (1 + v * (1 - s))
                }
            ]
        }
    }

    /// Softmax along `axis`.
    public static func softmax(_ x: Tensor, axis: Int = 1) -> Tensor {
        let a = x.axis(axis)
        let out = softmaxKernel(x, axis: a, log: false)
        return Tensor.record(out, [x]) { g in
            let dot = (g * out).sum(axes: [a], keepDims: true)
            return [(g - dot) * out]
        }
    }

    /// Log-softmax along `axis`.
    public static func logSoftmax(_ x: Tensor, axis: Int = 1) -> Tensor {
        let a = x.axis(axis)
        let out = softmaxKernel(x, axis: a, log: true)
        return Tensor.record(out, [x]) { g in
            let total = g.sum(axes: [a], keepDims: true)
            return [g - out.exp() * total]
        }
    }

    /// Numerically stable (log-)softmax over one axis with no history.
    static func softmaxKernel(_ x: Tensor, axis a: Int, log: Bool) -> Tensor {
        let xc = x.contiguous()
        let (outer, n, inner) = xc.around(a)
        let out = Tensor(zeros: x.shape, zeroed: false)
        let src = xc.pointer, dst = out.pointer
        Parallel.forPixelRuns(outer: outer, inner: inner) { o, i, count in
            let base = o * n * inner + i
            tk_softmax_channels(src + base, dst + base, n, inner, count, log ? 1 : 0)
        }
        return out
    }

    /// Fully connected layer: x [..., in] times weight [out, in] transposed, plus bias [out].
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        let lead = Array(x.shape.dropLast())
        let flat = x.rank == 2 ? x : x.reshaped([-1, x.shape[x.rank - 1]])
        var y = flat.matmul(weight.transposed())
        if let bias { y = y + bias }
        return x.rank == 2 ? y : y.reshaped(lead + [weight.shape[0]])
    }

    /// Zeroes elements with probability `p` and scales the rest by 1/(1-p) in training; identity otherwise.
    public static func dropout(_ x: Tensor, p: Float, training: Bool, generator: inout RandomGenerator) -> Tensor {
        guard training && p > 0 else { return x }
        precondition(p < 1, "dropout probability must be < 1")
        let mask = Tensor(zeros: x.shape, zeroed: false)
        let scale = 1 / (1 - p)
        for i in 0..<mask.count { mask.pointer[i] = generator.nextFloat() < p ? 0 : scale }
        return x * mask
    }
}
