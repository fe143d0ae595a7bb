import CKernels
import Foundation

extension Functional {
    /// Mean cross-entropy of logits [N, C, ...] against class ids [N, ...], as torch's cross_entropy.
    ///
    /// - Parameters:
    ///   - classWeights: per-class weights; the mean divides by the summed weights of counted targets.
    ///   - ignoreIndex: targets with this id add nothing and are not counted.
    ///   - labelSmoothing: mixes the one-hot target with the uniform distribution.
    public static func crossEntropy(
        _ logits: Tensor, target: Tensor, classWeights: [Float]? = nil,
        ignoreIndex: Int? = -100, labelSmoothing: Float = 0
    ) -> Tensor {
        precondition(logits.rank >= 2, "cross_entropy expects logits [N, C, ...], got \(logits.shape)")
        let c = logits.shape[1]
        var expected = logits.shape
        expected.remove(at: 1)
        precondition(target.shape == expected, "target shape \(target.shape) does not match logits \(logits.shape)")
        if let classWeights { precondition(classWeights.count == c, "need \(c) class weights") }
        let n = logits.shape[0], inner = logits.shape[2...].reduce(1, *)
        let logp = softmaxKernel(logits, axis: 1, log: true)
        let tc = target.contiguous()
        let lp = logp.pointer, tp = tc.pointer
        let weights = classWeights ?? [Float](repeating: 1, count: c)
        let weightTotal = weights.reduce(0, +)
        let eps = labelSmoothing
        var nll: Double = 0, smooth: Double = 0, denom: Double = 0
        for b in 0..<n {
            for i in 0..<inner {
                let y = Int(tp[b * inner + i])
                if let ignoreIndex, y == ignoreIndex { continue }
                precondition(y >= 0 && y < c, "target \(y) out of range for \(c) classes")
                let base = b * c * inner + i
                nll -= Double(weights[y] * lp[base + y * inner])
                if eps > 0 {
                    var s: Double = 0
                    for k in 0..<c { s -= Double(weights[k] * lp[base + k * inner]) }
                    smooth += s
                }
                denom += Double(weights[y])
            }
        }
        let loss = Float(((1 - Double(eps)) * nll + Double(eps) / Double(c) * smooth) / denom)
        let out = Tensor([denom > 0 ? loss : .nan], shape: [])
        return Tensor.record(out, [logits]) { g in
            let lp = logp.pointer, tp = tc.pointer
            let scale = g.item / Float(denom)
            let grad = Tensor(zeros: logits.shape, zeroed: false)
            let gp = grad.pointer
            weights.withUnsafeBufferPointer { w in
                let hyper = tk_cross_entropy_grad_params(
                    weights: w.baseAddress, weight_total: weightTotal, smoothing: eps, scale: scale,
                    ignore_index: Float(ignoreIndex ?? 0), has_ignore: ignoreIndex == nil ? 0 : 1)
                withUnsafePointer(to: hyper) { h in
                    Parallel.forPixelRuns(outer: n, inner: inner) { b, i, count in
                        let base = b * c * inner + i
                        tk_cross_entropy_grad(lp + base, tp + b * inner + i, gp + base, c, inner, count, h)
                    }
                }
            }
            return [grad]
        }
    }

    /// Mean binary cross-entropy on logits, in the numerically stable form.
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, target: Tensor, positiveWeight: Float? = nil)
        -> Tensor
    {
        precondition(logits.shape == target.shape, "bce: logits \(logits.shape) vs target \(target.shape)")
        let x = logits.contiguous(), y = target.contiguous()
        let count = x.count
        let pw = positiveWeight ?? 1
        var total: Double = 0
        for i in 0..<count {
            let v = x.pointer[i], t = y.pointer[i]
            // (1 - t) * v + (1 + (pw - 1) * t) * softplus(-v)
            let softplusNeg = Swift.max(-v, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(v)))
            total += Double((1 - t) * v + (1 + (pw - 1) * t) * softplusNeg)
        }
        let out = Tensor([Float(total / Double(count))], shape: [])
        return Tensor.record(out, [logits]) { g in
            let scale = g.item / Float(count)
            let grad = Tensor(zeros: logits.shape, zeroed: false)
            for i in 0..<count {
                let v = x.pointer[i], t = y.pointer[i]
                let s = 1 / (1 + Foundation.exp(-v))
                grad.pointer[i] = scale * ((1 - t) - (1 + (pw - 1) * t) * (1 - s))
            }
            return [grad]
        }
    }

    /// One-hot encoding of class ids [N, ...] into [N, C, ...] (ids outside 0..<C give all zeros).
    public static func oneHot(_ target: Tensor, classes: Int) -> Tensor {
        let n = target.shape[0], inner = target.shape[1...].reduce(1, *)
        let out = Tensor(zeros: [n, classes] + Array(target.shape[1...]))
        let tc = target.contiguous()
        for b in 0..<n {
            for i in 0..<inner {
                let y = Int(tc.pointer[b * inner + i])
                if y >= 0 && y < classes { out.pointer[(b * classes + y) * inner + i] = 1 }
            }
        }
        return out
    }

    /// Soft Dice loss: 1 - mean_c (2 sum(p*y) + s) / (sum(p) + sum(y) + s), p = softmax over classes,
    /// sums over batch and pixels.
    public static func diceLoss(_ logits: Tensor, target: Tensor, smooth: Float = 1) -> Tensor {
        let c = logits.shape[1]
        let p = softmax(logits, axis: 1)
        let y = oneHot(target, classes: c)
        let axes = [0] + Array(2..<logits.rank)
        let intersection = (p * y).sum(axes: axes)
        let denominator = p.sum(axes: axes) + y.sum(axes: axes)
        let dice = (intersection * 2 + smooth) / (denominator + smooth)
        return 1 - dice.mean()
    }
}
