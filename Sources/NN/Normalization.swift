import Foundation
import TesseraEngine

/// Batch normalisation over channel axis 1 (any rank), with `running_mean`, `running_var` and
/// `num_batches_tracked` buffers as torch's BatchNormNd.
public final class BatchNorm: Module {
    public let weight: Tensor, bias: Tensor
    public let runningMean: Tensor, runningVar: Tensor, numBatchesTracked: Tensor
    public let eps: Float, momentum: Float
    /// Set: statistics over every process's batch in training (SyncBatchNorm); nil: this process's batch.
    public var synchronized: CrossProcessSum?

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        weight = Tensor.ones([channels])
        bias = Tensor.zeros([channels])
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        numBatchesTracked = Tensor.zeros([])
        self.eps = eps
        self.momentum = momentum
        super.init()
        registerParameter("weight", weight)
        registerParameter("bias", bias)
        registerBuffer("running_mean", runningMean)
        registerBuffer("running_var", runningVar)
        registerBuffer("num_batches_tracked", numBatchesTracked)
    }

    public override func forward(_ x: Tensor) -> Tensor { forward(x, relu: false) }

    /// Batch norm, optionally followed by a ReLU fused into the same operation.
    public func forward(_ x: Tensor, relu: Bool) -> Tensor {
        if isTraining { numBatchesTracked.pointer[0] += 1 }
        return Functional.batchNorm(
            x, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias,
            training: isTraining, momentum: momentum, eps: eps, relu: relu, across: synchronized)
    }

    /// The eval-mode transform as y = x * scale + shift per channel.
    var foldedAffine: (scale: [Float], shift: [Float]) {
        let w = weight.scalars, b = bias.scalars, m = runningMean.scalars, v = runningVar.scalars
        let scale = (0..<w.count).map { w[$0] / (v[$0] + eps).squareRoot() }
        return (scale, (0..<w.count).map { b[$0] - m[$0] * scale[$0] })
    }
}

/// Group normalisation layer.
public final class GroupNorm: Module {
    public let groups: Int, eps: Float
    public let weight: Tensor, bias: Tensor
    public init(groups: Int, channels: Int, eps: Float = 1e-5) {
        self.groups = groups
        self.eps = eps
        weight = Tensor.ones([channels])
        bias = Tensor.zeros([channels])
        super.init()
        registerParameter("weight", weight)
        registerParameter("bias", bias)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        Functional.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// Layer normalisation over the trailing `shape` axes.
public final class LayerNorm: Module {
    public let shape: [Int], eps: Float
    public let weight: Tensor, bias: Tensor
    public init(_ shape: [Int], eps: Float = 1e-5) {
        self.shape = shape
        self.eps = eps
        weight = Tensor.ones(shape)
        bias = Tensor.zeros(shape)
        super.init()
        registerParameter("weight", weight)
        registerParameter("bias", bias)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        Functional.layerNorm(x, normalizedShape: shape, weight: weight, bias: bias, eps: eps)
    }
}
