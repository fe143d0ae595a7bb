import CKernels
import Foundation

extension Functional {
    /// Batch normalisation over all axes but 1, as torch's batch_norm.
    ///
    /// In training it normalises with the batch's biased variance and updates `runningMean` / `runningVar`
    /// in place (unbiased variance, `momentum`); in evaluation it uses the running statistics.
    /// With `relu`, the result is ReLU(batch_norm(x)) as one operation (one pass forward, one backward).
    /// With `across` (training only), the statistics are those of every process's batch together, as torch's
    /// SyncBatchNorm: `across` sums its buffer over the processes in place (the per-channel sums, the squared
    /// deviations from the common mean, and in backward the gradient sums the input gradient needs).
    public static func batchNorm(
        _ x: Tensor, runningMean: Tensor?, runningVar: Tensor?, weight: Tensor?,
        bias: Tensor?, training: Bool, momentum: Float = 0.1, eps: Float = 1e-5,
        relu: Bool = false, across: CrossProcessSum? = nil
    ) -> Tensor {
        precondition(x.rank >= 2, "batch_norm expects [N, C, ...], got \(x.shape)")
        let c = x.shape[1], n = x.shape[0], inner = x.shape[2...].reduce(1, *)
        let across = training ? across : nil
        var m = n * inner
        let xc = x.contiguous()
        var mean = [Float](repeating: 0, count: c), invStd = [Float](repeating: 0, count: c)
        let src = xc.pointer
        if training, let across {
            // Two passes over the processes: the sums (and counts) give the common mean, the squared
            // deviations from it the common variance.
            var sums = [Double](repeating: 0, count: c + 1)
            for ch in 0..<c {
                for b in 0..<n { sums[ch] += Double(tk_sum(src + (b * c + ch) * inner, inner)) }
            }
            sums[c] = Double(m)
            sums.withUnsafeMutableBufferPointer { across.sum($0) }
            m = Int(sums[c].rounded())
            precondition(m > 1, "batch_norm in training needs more than one value per channel")
            var deviations = [Double](repeating: 0, count: c)
            for ch in 0..<c {
                let mu = Float(sums[ch] / Double(m))
                for b in 0..<n {
                    deviations[ch] += Double(tk_squared_deviation(src + (b * c + ch) * inner, inner, mu))
                }
            }
            deviations.withUnsafeMutableBufferPointer { across.sum($0) }
            for ch in 0..<c {
                let mu = sums[ch] / Double(m), v = deviations[ch]
                mean[ch] = Float(mu)
                invStd[ch] = Float(1 / (v / Double(m) + Double(eps)).squareRoot())
                if let runningMean, let runningVar {
                    runningMean.pointer[ch] = (1 - momentum) * runningMean.pointer[ch] + momentum * Float(mu)
                    runningVar.pointer[ch] =
                        (1 - momentum) * runningVar.pointer[ch] + momentum * Float(v / Double(m - 1))
                }
            }
        } else if training {
            precondition(m > 1, "batch_norm in training needs more than one value per channel")
            mean.withUnsafeMutableBufferPointer { mp in
                invStd.withUnsafeMutableBufferPointer { ip in
                    Parallel.forRanges(c, grain: 1) { r in
                        for ch in r {
                            var s: Double = 0
                            for b in 0..<n { s += Double(tk_sum(src + (b * c + ch) * inner, inner)) }
                            let mu = s / Double(m)
                            var v: Double = 0
                            for b in 0..<n {
                                v += Double(tk_squared_deviation(src + (b * c + ch) * inner, inner, Float(mu)))
                            }
                            mp[ch] = Float(mu)
                            ip[ch] = Float(1 / (v / Double(m) + Double(eps)).squareRoot())
                            if let runningMean, let runningVar {
                                runningMean.pointer[ch] =
                                    (1 - momentum) * runningMean.pointer[ch] + momentum * Float(mu)
                                runningVar.pointer[ch] =
                                    (1 - momentum) * runningVar.pointer[ch]
                                    + momentum * Float(v / Double(m - 1))
                            }
                        }
                    }
                }
            }
        } else {
            guard let runningMean, let runningVar else {
                preconditionFailure("batch_norm in eval needs running statistics")
            }
            for ch in 0..<c {
                mean[ch] = runningMean.pointer[ch]
                invStd[ch] = 1 / (runningVar.pointer[ch] + eps).squareRoot()
            }
        }
        let wv = weight?.scalars, bv = bias?.scalars
        let out = Tensor(zeros: x.shape, zeroed: false)
        let dst = out.pointer
        Parallel.forRanges(n * c, grain: 1) { r in
            for plane in r {
                let ch = plane % c
                let scale = invStd[ch] * (wv?[ch] ?? 1)
                let shift = (bv?[ch] ?? 0) - mean[ch] * scale
                tk_affine(src + plane * inner, dst + plane * inner, inner, scale, shift, relu ? 1 : 0)
            }
        }
        let inputs = [x] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])
        return Tensor.record(out, inputs) { g in
            let src = xc.pointer
            // Through the fused ReLU the upstream gradient counts only where the output is positive; guided, only
            // its positive part does (masked here, so the kernels see no ReLU).
            let guided = relu && GuidedReLU.isOn
            let gc = guided ? Elementwise.map(Elementwise.zip(g, out, ReluGradOp()), ReluOp()) : g.contiguous()
            let masking = relu && !guided
            let yp = out.pointer
            let gp = gc.pointer
            var sumG = [Float](repeating: 0, count: c), sumGX = [Float](repeating: 0, count: c)
            sumG.withUnsafeMutableBufferPointer { sg in
                sumGX.withUnsafeMutableBufferPointer { sgx in
                    Parallel.forRanges(c, grain: 1) { r in
                        for ch in r {
                            var a: Double = 0, b: Double = 0
                            let mu = mean[ch], inv = invStd[ch]
                            for bi in 0..<n {
                                let at = (bi * c + ch) * inner
                                var la: Float = 0, lb: Float = 0
                                tk_gradient_moments(gp + at, src + at, masking ? yp + at : nil, inner, mu, &la, &lb)
                                a += Double(la); b += Double(lb)
                            }
                            sg[ch] = Float(a)
                            sgx[ch] = Float(b) * inv
                        }
                    }
                }
            }
            // Synchronised: the input gradient needs every process's sums; the weight and bias gradients stay
            // this process's (averaged with the other gradients afterwards).
            var totalG = sumG, totalGX = sumGX
            if let across {
                var both = (sumG + sumGX).map(Double.init)
                both.withUnsafeMutableBufferPointer { across.sum($0) }
                totalG = both[0..<c].map { Float($0) }
                totalGX = both[c...].map { Float($0) }
            }
            var gx: Tensor?
            if x.requiresGrad {
                let r = Tensor(zeros: x.shape, zeroed: false)
                let rp = r.pointer
                Parallel.forRanges(n * c, grain: 1) { range in
                    for plane in range {
                        let ch = plane % c
                        let w = wv?[ch] ?? 1
                        let at = plane * inner
                        var constants = tk_batchnorm_grad(
                            k: training ? w * invStd[ch] / Float(m) : w * invStd[ch], count: Float(m),
                            mean: mean[ch], inv_std: invStd[ch], sum_g: totalG[ch], sum_gx: totalGX[ch],
                            training: training ? 1 : 0)
                        tk_batchnorm_input_grad(gp + at, src + at, masking ? yp + at : nil, inner, &constants, rp + at)
                    }
                }
                gx = r
            }
            var grads: [Tensor?] = [gx]
            if let weight { grads.append(weight.requiresGrad ? Tensor(sumGX, shape: [c]) : nil) }
            if let bias { grads.append(bias.requiresGrad ? Tensor(sumG, shape: [c]) : nil) }
            return grads
        }
    }

    /// Group normalisation: statistics per sample over each group of C/groups channels.
    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor
    {
        let n = x.shape[0], c = x.shape[1]
        precondition(c % groups == 0, "num_groups (\(groups)) must divide channels (\(c))")
        let grouped = x.reshaped([n, groups, -1])
        let normalized = standardize(grouped, axis: 2, eps: eps).reshaped(x.shape)
        return affine(normalized, weight: weight, bias: bias, channelAxis: 1)
    }

    /// Layer normalisation over the trailing `normalizedShape` axes, with elementwise affine.
    public static func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?, eps: Float = 1e-5)
        -> Tensor
    {
        let k = normalizedShape.count
        precondition(
            Array(x.shape.suffix(k)) == normalizedShape, "layer_norm shape \(normalizedShape) vs input \(x.shape)")
        let flat = x.reshaped(Array(x.shape.dropLast(k)) + [-1])
        var y = standardize(flat, axis: flat.rank - 1, eps: eps).reshaped(x.shape)
        if let weight { y = y * weight }
        if let bias { y = y + bias }
        return y
    }

    /// (x - mean) / sqrt(biased var + eps) along `axis`.
    static func standardize(_ x: Tensor, axis: Int, eps: Float) -> Tensor {
        let mu = x.mean(axes: [axis], keepDims: true)
        let centered = x - mu
        let variance = (centered * centered).mean(axes: [axis], keepDims: true)
        return centered / (variance + eps).sqrt()
    }

    /// y = x * weight[c] + bias[c] along `channelAxis`.
    static func affine(_ x: Tensor, weight: Tensor?, bias: Tensor?, channelAxis: Int) -> Tensor {
        var shape = [Int](repeating: 1, count: x.rank)
        shape[channelAxis] = x.shape[channelAxis]
        var y = x
        if let weight { y = y * weight.reshaped(shape) }
        if let bias { y = y + bias.reshaped(shape) }
        return y
    }
}

/// Sums a buffer over the processes of a data-parallel job, in place (batch norm's synchronised statistics). The
/// engine knows no transport: training hands one in (MPI's all-reduce).
public struct CrossProcessSum: Sendable {
    public let sum: @Sendable (UnsafeMutableBufferPointer<Double>) -> Void

    public init(_ sum: @escaping @Sendable (UnsafeMutableBufferPointer<Double>) -> Void) { self.sum = sum }
}
