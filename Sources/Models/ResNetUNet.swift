import Foundation
import TesseraEngine
import TesseraNN

/// Configuration of a U-Net with a ResNet encoder, as segmentation_models_pytorch's `Unet(encoder_name="resnetN")`.
public struct ResNetUNetConfig: Codable, Equatable, Sendable {
    /// Encoder depth: 18, 34, 50, 101 or 152.
    public var encoder: Int
    public var inChannels: Int
    public var classes: Int
    /// Output channels of the five decoder blocks, deepest first (smp's default).
    public var decoderChannels: [Int]
    /// smp's `decoder_channels` default.
    public static let defaultDecoderChannels = [256, 128, 64, 32, 16]

    public init(
        encoder: Int = 34, inChannels: Int = 3, classes: Int = 2, decoderChannels: [Int] = defaultDecoderChannels
    ) {
        precondition(ResNetConfig.blocks[encoder] != nil, "ResNet encoder depth must be 18, 34, 50, 101 or 152")
        precondition(decoderChannels.count == 5, "a ResNet U-Net has five decoder blocks")
        self.encoder = encoder
        self.inChannels = inChannels
        self.classes = classes
        self.decoderChannels = decoderChannels
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let encoder = try c.decode(Int.self, forKey: .encoder),
            channels = try c.decode([Int].self, forKey: .decoderChannels)
        let inChannels = try c.decode(Int.self, forKey: .inChannels), classes = try c.decode(Int.self, forKey: .classes)
        guard ResNetConfig.blocks[encoder] != nil, channels.count == 5,
            channels.allSatisfy({ NetworkLimits.decoderChannels.contains($0) }),
            NetworkLimits.inChannels.contains(inChannels), NetworkLimits.classes.contains(classes)
        else {
            throw DecodingError.dataCorruptedError(
                forKey: .encoder, in: c, debugDescription: "ResNet U-Net configuration out of range")
        }
        self.init(encoder: encoder, inChannels: inChannels, classes: classes, decoderChannels: channels)
    }
}

/// U-Net with a torchvision ResNet encoder and smp's names: `encoder.*` (torchvision's keys without `fc`),
/// `decoder.blocks.i.conv{1,2}.{0: conv, 1: batch norm}`, `segmentation_head.0`. Each decoder block doubles
/// the resolution (nearest), joins the encoder feature of that stride, and applies two 3x3 conv + BN + ReLU;
/// the head is a 3x3 convolution at full resolution. Inputs must be multiples of 32.
public final class ResNetUNet: Module, SegmentationNetwork {
    public let config: ResNetUNetConfig
    public let encoder: ResNet
    public let blocks: [ResNetUNetDecoderBlock]
    public let head: Conv

    public var inChannels: Int { config.inChannels }
    public var classes: Int { config.classes }

    /// Encoder as torchvision initialises it; decoder convolutions Kaiming uniform (fan in, ReLU), head Xavier
    /// uniform, biases zero (smp's initialisation).
    public init(_ config: ResNetUNetConfig, generator: inout RandomGenerator) {
        self.config = config
        encoder = ResNet(
            ResNetConfig(depth: config.encoder, inChannels: config.inChannels, classes: 0), generator: &generator)
        // Encoder outputs at strides 2, 4, 8, 16, 32; the decoder starts at the deepest and skips to the others.
        let encoderChannels = Array(encoder.config.stageChannels.reversed())
        let inputs = [encoderChannels[0]] + config.decoderChannels.dropLast()
        let skips = Array(encoderChannels.dropFirst()) + [0]
        blocks = (0..<5).map { i in
            ResNetUNetDecoderBlock(
                inChannels: inputs[i] + skips[i], outChannels: config.decoderChannels[i], generator: &generator)
        }
        head = Conv(
            config.decoderChannels[4], config.classes, kernelSize: [3, 3], padding: .same, generator: &generator)
        head.weight.assign(Initialization.xavierUniform(head.weight.shape, generator: &generator))
        head.bias!.assign(Tensor.zeros(head.bias!.shape))
        super.init()
        registerModule("encoder", encoder)
        let decoder = Module()
        decoder.registerModule("blocks", Sequential(blocks))
        registerModule("decoder", decoder)
        registerModule("segmentation_head", Sequential([head]))
    }

    public func outputSize(forInput size: Int) -> Int? { size > 0 && size % 32 == 0 ? size : nil }

    public override func forward(_ x: Tensor) -> Tensor {
        precondition(
            outputSize(forInput: x.shape[2]) != nil && outputSize(forInput: x.shape[3]) != nil,
            "a ResNet U-Net takes sizes divisible by 32, got \(x.shape[2])x\(x.shape[3])")
        var features = encoder.features(x)
        var y = features.removeLast()
        for block in blocks {
            y = block.forward(y, skip: features.popLast())
        }
        return head(y)
    }

    /// Loads ImageNet (or any torchvision-named) ResNet weights into the encoder; `fc.*` is ignored. A first
    /// convolution with other input channels is adapted as smp does (`ResNet.adaptingStem`).
    public func loadEncoder(_ state: [String: Tensor]) throws {
        let own = ResNet.adaptingStem(state.filter { !$0.key.hasPrefix("fc.") }, to: config.inChannels)
        _ = try encoder.load(own)
    }
}

/// One decoder block of a ResNet U-Net: nearest 2x up-sampling, optional skip, `conv1` and `conv2` (each
/// conv + batch norm + ReLU).
public final class ResNetUNetDecoderBlock: Module {
    public let conv1: Sequential, conv2: Sequential

    init(inChannels: Int, outChannels: Int, generator: inout RandomGenerator) {
        func convBNReLU(_ a: Int, _ b: Int) -> Sequential {
            let conv = Conv(a, b, kernelSize: [3, 3], padding: .same, bias: false, generator: &generator)
            conv.weight.assign(Initialization.kaimingUniform(conv.weight.shape, generator: &generator))
            return Sequential([conv, BatchNorm(b), ReLU()])
        }
        conv1 = convBNReLU(inChannels, outChannels)
        conv2 = convBNReLU(outChannels, outChannels)
        super.init()
        registerModule("conv1", conv1)
        registerModule("conv2", conv2)
    }

    /// Up-samples `x`, joins `skip` when there is one, and runs the forward hooks on the result.
    func forward(_ x: Tensor, skip: Tensor?) -> Tensor {
        let up = Functional.resizeNearest(x, size: [2 * x.shape[2], 2 * x.shape[3]])
        let y = conv2(skip.map { conv1(concatenating: [up, $0]) } ?? conv1(up))
        return runForwardHooks(input: x, output: y)
    }
}
