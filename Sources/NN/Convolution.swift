import Foundation
import TesseraEngine

/// N-d convolution layer (1-3 spatial axes) with PyTorch's parameter names `weight` and `bias`.
public final class Conv: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: [Int], padding: Padding, dilation: [Int], groups: Int
    public let paddingMode: PaddingMode

    /// - Parameters:
    ///   - kernelSize: one value per spatial axis; its count sets the dimensionality.
    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: [Int], stride: [Int] = [1],
        padding: Padding = .valid, dilation: [Int] = [1], groups: Int = 1, bias: Bool = true,
        paddingMode: PaddingMode = .zeros, generator: inout RandomGenerator
    ) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "groups must divide both channel counts")
        let init0 = Initialization.torchDefault(
            weight: [outChannels, inChannels / groups] + kernelSize, generator: &generator)
        weight = init0.weight
        self.bias = bias ? init0.bias : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.paddingMode = paddingMode
        super.init()
        registerParameter("weight", weight)
        if let b = self.bias { registerParameter("bias", b) }
    }

    /// A 2-d convolution with square kernel and padding.
    public convenience init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        groups: Int = 1, bias: Bool = true, generator: inout RandomGenerator
    ) {
        self.init(
            inChannels, outChannels, kernelSize: [kernelSize, kernelSize], stride: [stride],
            padding: .explicit([padding]), groups: groups, bias: bias, generator: &generator)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        Functional.conv(
            x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
            groups: groups, paddingMode: paddingMode)
    }

    /// This convolution, then `norm` and optionally a ReLU. In inference (no autodiff, the batch norm in eval mode,
    /// no hooks on either) one fused pass: the folded batch norm and ReLU applied to each output tile in cache.
    public func forward(_ x: Tensor, batchNorm norm: BatchNorm, relu: Bool) -> Tensor {
        if !GradMode.isEnabled, !norm.isTraining, forwardHooks.isEmpty, norm.forwardHooks.isEmpty {
            let affine = norm.foldedAffine
            return fusedForward(x, scale: affine.scale, shift: affine.shift, relu: relu)
        }
        return norm.forward(self(x), relu: relu)
    }

    /// Inference on the channel concatenation of `parts` without building it, the affine and ReLU fused in;
    /// nil when this layer is not a plain 2-d stride-1 convolution (the caller concatenates).
    func fusedForward(concatenating parts: [Tensor], scale: [Float]?, shift: [Float]?, relu: Bool) -> Tensor? {
        guard weight.rank == 4, groups == 1, paddingMode == .zeros, stride.allSatisfy({ $0 == 1 }),
            dilation.allSatisfy({ $0 == 1 })
        else { return nil }
        return Functional.conv(
            concatenating: parts, weight: weight, padding: padding,
            epilogue: epilogue(scale: scale, shift: shift, relu: relu))
    }

    /// The fused epilogue of `scale`, `shift` and ReLU with this layer's bias folded into the shift.
    func epilogue(scale: [Float]?, shift: [Float]?, relu: Bool) -> ConvEpilogue {
        var shiftAll = shift
        if let b = bias?.scalars {
            shiftAll = (0..<b.count).map { c in (shift?[c] ?? 0) + b[c] * (scale?[c] ?? 1) }
        }
        return ConvEpilogue(scale: scale, shift: shiftAll, relu: relu)
    }

    /// Inference with a per-channel affine (folded batch norm, bias included) and optional ReLU fused in.
    func fusedForward(_ x: Tensor, scale: [Float]?, shift: [Float]?, relu: Bool) -> Tensor {
        Functional.conv(
            x, weight: weight, stride: stride, padding: padding, dilation: dilation, groups: groups,
            paddingMode: paddingMode, epilogue: epilogue(scale: scale, shift: shift, relu: relu))
    }
}

/// N-d transposed convolution layer; weight is [in, out/groups, k...].
public final class ConvTranspose: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: [Int], padding: [Int], outputPadding: [Int], dilation: [Int], groups: Int

    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: [Int], stride: [Int] = [1], padding: [Int] = [0],
        outputPadding: [Int] = [0], groups: Int = 1, dilation: [Int] = [1], bias: Bool = true,
        generator: inout RandomGenerator
    ) {
        let init0 = Initialization.torchDefault(
            weight: [inChannels, outChannels / groups] + kernelSize,
            transposed: true, generator: &generator)
        weight = init0.weight
        self.bias = bias ? init0.bias : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.dilation = dilation
        self.groups = groups
        super.init()
        registerParameter("weight", weight)
        if let b = self.bias { registerParameter("bias", b) }
    }

    public override func forward(_ x: Tensor) -> Tensor {
        Functional.convTranspose(
            x, weight: weight, bias: bias, stride: stride, padding: padding,
            outputPadding: outputPadding, groups: groups, dilation: dilation)
    }
}
