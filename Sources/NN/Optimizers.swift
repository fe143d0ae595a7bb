import CKernels
import Foundation
import TesseraEngine

/// Updates parameters from their gradients.
/// The optimizers a training run can use, as `--optimizer` and a pipeline's `optimizer` name them.
public enum OptimizerKind: String, Codable, CaseIterable, Sendable {
    /// Adam (L2 weight decay added to the gradient, as torch.optim.Adam).
    case adam
    /// AdamW (decoupled weight decay, 0.01 when none is given, as torch.optim.AdamW).
    case adamw
    /// SGD with momentum (and Nesterov's variant).
    case sgd
}

public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    func step()
    func zeroGrad()
    /// Named state for checkpoints (moments, buffers, step count), keyed by parameter index.
    func state() -> [(name: String, tensor: Tensor)]
    /// Restores what `state()` returned.
    func loadState(_ state: [String: Tensor]) throws
}

/// Why an optimizer state could not be restored.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// Scales all gradients so their joint L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_); returns the
/// norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters { if let g = p.grad { for v in g.scalars { total += Double(v) * Double(v) } } }
    let norm = Float(total.squareRoot())
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 { for p in parameters { if let g = p.grad { p.grad = g * scale } } }
    return norm
}

/// Copies `source` into `target` after checking the shape.
func restore(_ target: Tensor, from state: [String: Tensor], key: String) throws {
    guard let v = state[key] else { throw OptimizerStateError(reason: "optimizer state has no '\(key)'") }
    guard v.shape == target.shape else {
        throw OptimizerStateError(reason: "optimizer state '\(key)' is \(v.shape), the parameter is \(target.shape)")
    }
    target.assign(v)
}

extension Optimizer {
    func forEachParameter(_ parameters: [Tensor], _ body: (Int, Tensor, Tensor) -> Void) {
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            body(i, p, g.contiguous())
        }
    }
}

/// Adam and AdamW (decoupled weight decay), as torch.optim.Adam / AdamW.
public final class Adam: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool
    public private(set) var stepCount = 0
    /// First and second moment estimates per parameter.
    public private(set) var m: [Tensor], v: [Tensor]

    public init(
        _ parameters: [Tensor], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        eps: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false
    ) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupled = decoupled
        m = parameters.map { Tensor.zeros($0.shape) }
        v = parameters.map { Tensor.zeros($0.shape) }
    }

    public func step() {
        stepCount += 1
        let bc1 = 1 - Foundation.pow(beta1, Float(stepCount)), bc2 = 1 - Foundation.pow(beta2, Float(stepCount))
        var hyper = tk_adam_params(
            lr: learningRate, beta1: beta1, beta2: beta2, eps: eps, weight_decay: weightDecay,
            step_size: learningRate / bc1, bias_correction2_sqrt: bc2.squareRoot(),
            decoupled: decoupled ? 1 : 0)
        forEachParameter(parameters) { i, p, g in
            let pp = p.pointer, gp = g.pointer, mp = m[i].pointer, vp = v[i].pointer
            Parallel.forRanges(p.count, grain: 65_536) { r in
                tk_adam(pp + r.lowerBound, gp + r.lowerBound, mp + r.lowerBound, vp + r.lowerBound, r.count, &hyper)
            }
        }
    }

    public func zeroGrad() { for p in parameters { p.grad = nil } }

    public func state() -> [(name: String, tensor: Tensor)] {
        [("step", Tensor([Float(stepCount)], shape: [1]))]
            + m.enumerated().map { ("exp_avg.\($0.offset)", $0.element) }
            + v.enumerated().map { ("exp_avg_sq.\($0.offset)", $0.element) }
    }

    public func loadState(_ state: [String: Tensor]) throws {
        guard let s = state["step"] else { throw OptimizerStateError(reason: "optimizer state has no 'step'") }
        for i in parameters.indices {
            try restore(m[i], from: state, key: "exp_avg.\(i)")
            try restore(v[i], from: state, key: "exp_avg_sq.\(i)")
        }
        stepCount = Int(s.scalars[0])
    }
}

/// Stochastic gradient descent with momentum, Nesterov and weight decay, as torch.optim.SGD.
public final class SGD: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    public let momentum: Float, weightDecay: Float, nesterov: Bool
    public private(set) var buffers: [Tensor?]

    public init(
        _ parameters: [Tensor], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0,
        nesterov: Bool = false
    ) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        forEachParameter(parameters) { i, p, g in
            var hyper = tk_sgd_params(
                lr: learningRate, momentum: momentum, weight_decay: weightDecay,
                nesterov: nesterov ? 1 : 0, first: 0)
            var buffer: UnsafeMutablePointer<Float>?
            if momentum != 0 {
                if let b = buffers[i] {
                    buffer = b.pointer
                } else {
                    let b = Tensor(zeros: p.shape, zeroed: false)
                    buffers[i] = b
                    buffer = b.pointer
                    hyper.first = 1
                }
            }
            let pp = p.pointer, gp = g.pointer
            withUnsafePointer(to: hyper) { h in
                Parallel.forRanges(p.count, grain: 65_536) { r in
                    tk_sgd(pp + r.lowerBound, gp + r.lowerBound, buffer.map { $0 + r.lowerBound }, r.count, h)
                }
            }
        }
    }

    public func zeroGrad() { for p in parameters { p.grad = nil } }

    public func state() -> [(name: String, tensor: Tensor)] {
        buffers.enumerated().compactMap { i, b in b.map { ("momentum_buffer.\(i)", $0) } }
    }

    public func loadState(_ state: [String: Tensor]) throws {
        for i in parameters.indices {
            guard let b = state["momentum_buffer.\(i)"] else { buffers[i] = nil; continue }
            guard b.shape == parameters[i].shape else {
                throw OptimizerStateError(
                    reason: "momentum buffer \(i) is \(b.shape), the parameter is \(parameters[i].shape)")
            }
            buffers[i] = b.contiguous().copy()
        }
    }
}
