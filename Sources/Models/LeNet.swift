import Foundation
import TesseraEngine
import TesseraNN

/// What a LeNet-5 is built from (a checkpoint's `lenet5` metadata).
public struct LeNetConfig: Codable, Equatable, Sendable {
    public var inChannels: Int
    public var classes: Int
    public var style: LeNet5.Style

    public init(inChannels: Int = 1, classes: Int = 10, style: LeNet5.Style = .classic) {
        self.inChannels = inChannels
        self.classes = classes
        self.style = style
    }
}

/// LeNet-5 (LeCun et al. 1998): 32x32 input, conv 5x5 (6) - subsample - conv 5x5 (16) - subsample, then fully
/// connected 120 - 84 - classes. Parameter names `conv1`, `conv2`, `fc1`, `fc2`, `fc3`.
public final class LeNet5: Module, ClassificationNetwork {
    /// The one input edge LeNet-5 takes.
    public static let inputSize = 32
    /// The paper's tanh with average-pool subsampling, or the common modern ReLU with max pooling.
    public enum Style: String, Codable, Sendable {
        case classic, modern
    }

    public let style: Style
    public let conv1: Conv, conv2: Conv
    public let fc1: Linear, fc2: Linear, fc3: Linear
    public let inChannels: Int, classes: Int
    public var fixedInputSize: Int? { Self.inputSize }
    public var config: LeNetConfig { LeNetConfig(inChannels: inChannels, classes: classes, style: style) }

    public convenience init(_ config: LeNetConfig, generator: inout RandomGenerator) {
        self.init(inChannels: config.inChannels, classes: config.classes, style: config.style, generator: &generator)
    }

    public init(inChannels: Int = 1, classes: Int = 10, style: Style = .classic, generator: inout RandomGenerator) {
        self.style = style
        self.inChannels = inChannels
        self.classes = classes
        conv1 = Conv(inChannels, 6, kernelSize: 5, generator: &generator)
        conv2 = Conv(6, 16, kernelSize: 5, generator: &generator)
        fc1 = Linear(16 * 5 * 5, 120, generator: &generator)
        fc2 = Linear(120, 84, generator: &generator)
        fc3 = Linear(84, classes, generator: &generator)
        super.init()
        registerModule("conv1", conv1)
        registerModule("conv2", conv2)
        registerModule("fc1", fc1)
        registerModule("fc2", fc2)
        registerModule("fc3", fc3)
    }

    func activation(_ x: Tensor) -> Tensor { style == .classic ? Functional.tanh(x) : Functional.relu(x) }

    func subsample(_ x: Tensor) -> Tensor {
        style == .classic ? Functional.avgPool2d(x, kernel: [2, 2]) : Functional.maxPool2d(x, kernel: [2, 2])
    }

    /// Logits [N, classes] for images [N, C, 32, 32].
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(
            x.rank == 4 && x.shape[2] == 32 && x.shape[3] == 32, "LeNet-5 takes [N, C, 32, 32], got \(x.shape)")
        var y = subsample(activation(conv1(x)))
        y = subsample(activation(conv2(y)))
        y = y.reshaped([y.shape[0], 16 * 5 * 5])
        return fc3(activation(fc2(activation(fc1(y)))))
    }
}
