import Foundation
import TesseraEngine

/// Rectified linear unit.
public final class ReLU: Module {
    public override func forward(_ x: Tensor) -> Tensor { Functional.relu(x) }
}

/// 2-d max pooling.
public final class MaxPool2d: Module {
    public let kernel: [Int], stride: [Int]?, padding: [Int], ceilMode: Bool
    public init(kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0], ceilMode: Bool = false) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.ceilMode = ceilMode
    }
    public override func forward(_ x: Tensor) -> Tensor {
        Functional.maxPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    }
}

/// Adaptive average pooling to a fixed output size.
public final class AdaptiveAvgPool2d: Module {
    public let outputSize: [Int]
    public init(_ outputSize: [Int]) { self.outputSize = outputSize }
    public override func forward(_ x: Tensor) -> Tensor { Functional.adaptiveAvgPool2d(x, outputSize: outputSize) }
}

/// Fully connected layer with `weight` [out, in] and `bias` [out].
public final class Linear: Module {
    public let weight: Tensor, bias: Tensor?
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout RandomGenerator) {
        let init0 = Initialization.torchDefault(weight: [outFeatures, inFeatures], generator: &generator)
        weight = init0.weight
        self.bias = bias ? init0.bias : nil
        super.init()
        registerParameter("weight", weight)
        if let b = self.bias { registerParameter("bias", b) }
    }
    public override func forward(_ x: Tensor) -> Tensor { Functional.linear(x, weight: weight, bias: bias) }
}

/// Dropout with its own seeded stream; active only in training mode.
public final class Dropout: Module {
    public let p: Float
    private var generator: RandomGenerator
    public init(_ p: Float, seed: UInt64 = 0) {
        self.p = p
        generator = RandomGenerator(seed: seed)
    }
    /// Restarts the stream, e.g. from the training step, so a resumed run draws the masks an uninterrupted one would.
    public func reseed(_ seed: UInt64) { generator = RandomGenerator(seed: seed) }
    public override func forward(_ x: Tensor) -> Tensor {
        Functional.dropout(x, p: p, training: isTraining, generator: &generator)
    }
}

extension Module {
    /// Reseeds every dropout layer below this module from `seed` and the layer's name.
    public func reseedDropout(_ seed: UInt64) {
        for (name, m) in namedModules() {
            guard let d = m as? Dropout else { continue }
            var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the name keeps layers' streams apart
            for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            d.reseed(seed ^ h)
        }
    }
}

/// Spatial up-sampling by an integer factor, as torch's nn.Upsample (nearest, or bilinear without aligned corners).
public final class Upsample: Module {
    public enum Mode: String, Codable, Sendable { case nearest, bilinear }
    public let scale: Int, mode: Mode
    public init(scale: Int = 2, mode: Mode = .nearest) {
        self.scale = scale
        self.mode = mode
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let size = [x.shape[2] * scale, x.shape[3] * scale]
        return mode == .nearest ? Functional.resizeNearest(x, size: size) : Functional.resizeBilinear(x, size: size)
    }
}

/// Modules applied in order, keyed "0", "1", ...; in inference it fuses Conv [+ BatchNorm] [+ ReLU] runs into the
/// convolution, and otherwise BatchNorm + ReLU into one operation (unless a hook watches either).
public final class Sequential: Module {
    public let layers: [Module]
    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
        for (i, m) in layers.enumerated() { registerModule(String(i), m) }
    }

    public override func forward(_ x: Tensor) -> Tensor { run(x, from: 0) }

    /// `self(Tensor.concat(parts, axis: 1))`, where in inference a leading convolution (with its batch norm and
    /// ReLU) reads the parts in place instead of their concatenation. Runs this module's forward hooks either way.
    public func callAsFunction(concatenating parts: [Tensor]) -> Tensor {
        if !GradMode.isEnabled, forwardHooks.isEmpty, let conv = layers.first as? Conv, conv.forwardHooks.isEmpty {
            let (affine, relu, next) = fusable(after: 0)
            if let y = conv.fusedForward(concatenating: parts, scale: affine?.scale, shift: affine?.shift, relu: relu) {
                return run(y, from: next)
            }
        }
        return self(Tensor.concat(parts, axis: 1))
    }

    /// What an inference convolution at `i` can take into its epilogue: an eval-mode batch norm (folded), then a
    /// ReLU, each only without hooks; `next` is the first layer after them.
    func fusable(after i: Int) -> (affine: (scale: [Float], shift: [Float])?, relu: Bool, next: Int) {
        var j = i + 1
        var affine: (scale: [Float], shift: [Float])?
        if j < layers.count, let bn = layers[j] as? BatchNorm, !bn.isTraining, bn.forwardHooks.isEmpty {
            affine = bn.foldedAffine
            j += 1
        }
        var relu = false
        if j < layers.count, let r = layers[j] as? ReLU, r.forwardHooks.isEmpty {
            relu = true
            j += 1
        }
        return (affine, relu, j)
    }

    /// Layers `from...` applied to `x`, fusing as `forward` does.
    func run(_ x: Tensor, from start: Int) -> Tensor {
        var y = x
        var i = start
        let fuse = !GradMode.isEnabled
        while i < layers.count {
            if fuse, let conv = layers[i] as? Conv, conv.forwardHooks.isEmpty {
                let (affine, relu, j) = fusable(after: i)
                if j > i + 1 {
                    y = conv.fusedForward(y, scale: affine?.scale, shift: affine?.shift, relu: relu)
                    i = j
                    continue
                }
            }
            if i + 1 < layers.count, let bn = layers[i] as? BatchNorm, layers[i + 1] is ReLU,
                bn.forwardHooks.isEmpty, layers[i + 1].forwardHooks.isEmpty
            {
                y = bn.forward(y, relu: true)
                i += 2
                continue
            }
            y = layers[i](y)
            i += 1
        }
        return y
    }
}
