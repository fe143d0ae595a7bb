import Foundation
import TesseraEngine
import TesseraNN

/// The CAMs made from forward passes alone (Eigen-CAM, Score-CAM, Ablation-CAM), as pytorch-grad-cam makes them:
/// the layer's activation captured by a forward hook, the channel weights from extra forward passes in batches
/// (16 for Score-CAM, 32 for Ablation-CAM, pytorch-grad-cam's sizes), the map ReLU(sum of weighted channels).
extension GradCAM {
    /// Channel weights, the ReLU'd map [h, w] and the target's value for the unchanged input.
    func gradientFree(model: Module, input: Tensor, target: CAMTarget) throws -> ([Float], Tensor, Float) {
        let module = try layerModule(in: model)
        let (activation, score) = try withNoGrad { try capture(module, model: model, input: input, target: target) }
        let c = activation.shape[1], h = activation.shape[2], w = activation.shape[3]
        let a = activation.scalars
        let weights: [Float]
        switch method {
        case .eigencam:
            let projection = Self.firstPrincipalComponent(a, channels: c, pixels: h * w)
            return ([], Tensor(projection.map { max($0, 0) }, shape: [h, w]), score)
        case .scorecam:
            weights = try withNoGrad {
                try scoreWeights(model: model, input: input, activation: activation, target: target)
            }
        case .ablationcam:
            weights = try withNoGrad {
                try ablationWeights(
                    model: model, module: module, input: input, activation: activation, target: target,
                    score: score)
            }
        default: preconditionFailure("\(method.rawValue) is made from gradients")
        }
        var map = [Float](repeating: 0, count: h * w)
        for k in 0..<c {
            let wk = weights[k], base = k * h * w
            for i in 0..<(h * w) { map[i] += wk * a[base + i] }
        }
        return (weights, Tensor(map.map { max($0, 0) }, shape: [h, w]), score)
    }

    /// The layer's output [1, C, h, w] for `input`, and the target's value.
    func capture(_ module: Module, model: Module, input: Tensor, target: CAMTarget) throws -> (Tensor, Float) {
        let (activation, score) = try capturing(module) { target.values(model(input)).scalars[0] }
        return (activation.contiguous(), score)
    }

    /// Score-CAM: each channel upsampled to the input (bilinear, align corners, as torch's UpsamplingBilinear2d),
    /// scaled to [0, 1] by its own minimum and maximum (+1e-8), multiplied into the input; the weights are the
    /// softmax over channels of the target on those inputs.
    func scoreWeights(model: Module, input: Tensor, activation: Tensor, target: CAMTarget) throws -> [Float] {
        let c = activation.shape[1], inC = input.shape[1], hh = input.shape[2], ww = input.shape[3], plane = hh * ww
        let up = Functional.resizeBilinear(activation, size: [hh, ww], alignCorners: true).scalars
        let x = input.scalars
        var scores = [Float]()
        scores.reserveCapacity(c)
        for start in Swift.stride(from: 0, to: c, by: 16) {
            let channels = start..<min(start + 16, c)
            var batch = [Float]()
            batch.reserveCapacity(channels.count * inC * plane)
            for k in channels {
                let m = up[(k * plane)..<((k + 1) * plane)]
                let lo: Float = m.min() ?? 0, hi: Float = m.max() ?? 0
                let mask = m.map { ($0 - lo) / (hi - lo + 1e-8) }
                for ch in 0..<inC {
                    for i in 0..<plane { batch.append(x[ch * plane + i] * mask[i]) }
                }
            }
            scores += target.values(model(Tensor(batch, shape: [channels.count, inC, hh, ww]))).scalars
        }
        let top = scores.max() ?? 0
        let e = scores.map { Foundation.exp(Double($0 - top)) }
        let total = e.reduce(0, +)
        return e.map { Float($0 / total) }
    }

    /// Ablation-CAM: the input run once per channel with that channel of the layer's output replaced (by 0 where
    /// the activation's minimum is 0, else by that minimum - 1e7, as pytorch-grad-cam's AblationLayer); weight =
    /// (score - ablated score) / score.
    func ablationWeights(
        model: Module, module: Module, input: Tensor, activation: Tensor, target: CAMTarget, score: Float
    ) throws -> [Float] {
        let c = activation.shape[1], plane = activation.shape[2] * activation.shape[3]
        let a = activation.scalars
        let floor = a.min() ?? 0
        let value: Float = floor == 0 ? 0 : floor - 1e7
        let saved = module.forwardHooks
        defer { module.forwardHooks = saved }
        var weights = [Float]()
        weights.reserveCapacity(c)
        for start in Swift.stride(from: 0, to: c, by: 32) {
            let n = min(32, c - start)
            module.forwardHooks =
                saved + [
                    { _, _, output in
                        guard output.shape == [n] + Array(activation.shape.dropFirst()) else { return nil }
                        var v = [Float]()
                        v.reserveCapacity(n * a.count)
                        for i in 0..<n {
                            var item = a
                            for j in 0..<plane { item[(start + i) * plane + j] = value }
                            v += item
                        }
                        return Tensor(v, shape: output.shape)
                    }
                ]
            let batch = Tensor(
                Array([[Float]](repeating: input.scalars, count: n).joined()),
                shape: [n] + Array(input.shape.dropFirst()))
            let ablated = target.values(model(batch)).scalars
            weights += ablated.map { (score - $0) / score }
        }
        return weights
    }

    /// The activations' projection on their first principal component (pytorch-grad-cam's `get_2d_projection`:
    /// pixels x channels, each channel centred, times the first right singular vector), its sign set so that the
    /// larger magnitude is positive. Computed from the smaller Gram matrix by power iteration in Double.
    static func firstPrincipalComponent(_ a: [Float], channels c: Int, pixels p: Int) -> [Float] {
        // X[i][k] = a[k * p + i] - mean_k.
        var x = [Double](repeating: 0, count: p * c)
        for k in 0..<c {
            var mean = 0.0
            for i in 0..<p { mean += Double(a[k * p + i]) }
            mean /= Double(max(p, 1))
            for i in 0..<p { x[i * c + k] = Double(a[k * p + i]) - mean }
        }
        // Top eigenvector of the n x n Gram matrix (X X^T when p <= c, else X^T X); the projection X v.
        let byPixels = p <= c, n = byPixels ? p : c
        var gram = [Double](repeating: 0, count: n * n)
        for r in 0..<n {
            for s in r..<n {
                var d = 0.0
                if byPixels {
                    for k in 0..<c { d += x[r * c + k] * x[s * c + k] }
                } else {
                    for i in 0..<p { d += x[i * c + r] * x[i * c + s] }
                }
                gram[r * n + s] = d
                gram[s * n + r] = d
            }
        }
        var v = (0..<n).map { 1.0 + Double($0 % 7) * 1e-3 }
        for _ in 0..<10_000 {
            var next = [Double](repeating: 0, count: n)
            for r in 0..<n {
                var d = 0.0
                for s in 0..<n { d += gram[r * n + s] * v[s] }
                next[r] = d
            }
            let norm = next.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { return [Float](repeating: 0, count: p) }
            next = next.map { $0 / norm }
            let change = zip(next, v).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            v = next
            if change < 1e-24 { break }
        }
        var projection = [Double](repeating: 0, count: p)
        if byPixels {
            // X X^T u = sigma^2 u, and X v = sigma u with sigma = sqrt(u^T X X^T u).
            var quad = 0.0
            for r in 0..<n { for s in 0..<n { quad += v[r] * gram[r * n + s] * v[s] } }
            projection = v.map { $0 * quad.squareRoot() }
        } else {
            for i in 0..<p {
                var d = 0.0
                for k in 0..<c { d += x[i * c + k] * v[k] }
                projection[i] = d
            }
        }
        let lo = projection.min() ?? 0, hi = projection.max() ?? 0
        if abs(lo) > abs(hi) { projection = projection.map { -$0 } }
        return projection.map { Float($0) }
    }
}
