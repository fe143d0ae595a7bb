import Foundation
import TesseraEngine
import TesseraNN

/// A network mapping images [N, C, H, W] to class logits [N, classes]: LeNet-5 and the ResNet classifiers.
public protocol ClassificationNetwork: Module {
    var inChannels: Int { get }
    var classes: Int { get }
    /// The one input edge the network takes (LeNet-5's 32), nil when it takes any edge of at least
    /// `minimumInputSize` (a ResNet pools globally).
    var fixedInputSize: Int? { get }
}

extension ClassificationNetwork {
    /// The smallest input edge: a ResNet's stride-32 stem and stages leave one pixel at 32.
    public var minimumInputSize: Int { fixedInputSize ?? 32 }

    /// Whether the network takes `size` x `size` inputs.
    public func takes(inputSize size: Int) -> Bool {
        fixedInputSize.map { $0 == size } ?? (size >= minimumInputSize)
    }
}

extension ResNet: ClassificationNetwork {
    public var inChannels: Int { config.inChannels }
    public var classes: Int { config.classes }
    public var fixedInputSize: Int? { nil }
}
