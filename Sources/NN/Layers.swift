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
    public override func forward(_ x: Tensor) -> Tensor {
        Functional.dropout(x, p: p, training: isTraining, generator: &generator)
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

    public override func forward(_ x: Tensor) -> Tensor {
        var y = x
        var i = 0
        let fuse = !GradMode.isEnabled
        while i < layers.count {
            if fuse, let conv = layers[i] as? Conv, conv.forwardHooks.isEmpty {
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
                if j > i + 1 {
                    y = conv.fusedForward(y, scale: affine?.scale, shift: affine?.shift, relu: relu)
                    i = j
                    continue
                }
            }
            if i + 1 < layers.count, let bn = layers[i] as? BatchNorm, layers[i + 1] is ReLU,
               bn.forwardHooks.isEmpty, layers[i + 1].forwardHooks.isEmpty {
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
