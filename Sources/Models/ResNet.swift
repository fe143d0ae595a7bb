import Foundation
import TesseraEngine
import TesseraNN

/// Depth and block type of a ResNet (He et al. 2016) in torchvision's layout.
public struct ResNetConfig: Codable, Equatable, Sendable {
    /// 18, 34, 50, 101 or 152.
    public var depth: Int
    public var inChannels: Int
    /// Classifier outputs; 0 builds the feature encoder only (no `fc`).
    public var classes: Int
    /// Channels of the stem and the first stage (torchvision: 64); stage i has `width << i` planes.
    public var width: Int

    public init(depth: Int = 18, inChannels: Int = 3, classes: Int = 1000, width: Int = 64) {
        precondition(ResNetConfig.blocks[depth] != nil, "ResNet depth must be 18, 34, 50, 101 or 152, not \(depth)")
        precondition(width > 0, "ResNet width must be positive")
        self.depth = depth
        self.inChannels = inChannels
        self.classes = classes
        self.width = width
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let depth = try c.decode(Int.self, forKey: .depth),
            width = try c.decodeIfPresent(Int.self, forKey: .width) ?? 64
        guard ResNetConfig.blocks[depth] != nil, (1...4096).contains(width) else {
            throw DecodingError.dataCorruptedError(
                forKey: .depth, in: c,
                debugDescription: "unsupported ResNet depth \(depth) / width \(width)")
        }
        self.init(
            depth: depth, inChannels: try c.decode(Int.self, forKey: .inChannels),
            classes: try c.decode(Int.self, forKey: .classes),
            width: width)
    }

    /// The configuration of a torchvision-named ResNet state dict (depth from its block counts and block type,
    /// width and input channels from `conv1.weight`, classes from `fc.weight`); nil if it is not one.
    public static func inferred(fromShapes shapes: [String: [Int]]) -> ResNetConfig? {
        guard let stem = shapes["conv1.weight"], stem.count == 4 else { return nil }
        let bottleneck = shapes["layer1.0.conv3.weight"] != nil
        let counts = (1...4).map { stage in
            Set(
                shapes.keys.compactMap { key -> Int? in
                    let prefix = "layer\(stage)."
                    guard key.hasPrefix(prefix) else { return nil }
                    return Int(key.dropFirst(prefix.count).prefix { $0.isNumber })
                }
            ).count
        }
        guard let depth = blocks.first(where: { $0.value == counts && ($0.key >= 50) == bottleneck })?.key,
            (1...4096).contains(stem[0])
        else { return nil }
        return ResNetConfig(depth: depth, inChannels: stem[1], classes: shapes["fc.weight"]?.first ?? 0, width: stem[0])
    }

    static let blocks: [Int: [Int]] = [
        18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
        152: [3, 8, 36, 3]
    ]
    /// Bottleneck blocks (expansion 4) from ResNet-50 up, basic blocks below.
    public var bottleneck: Bool { depth >= 50 }
    public var expansion: Int { bottleneck ? 4 : 1 }
    /// Channels of the stem and of each of the four stages' outputs.
    public var stageChannels: [Int] { [width] + (0..<4).map { (width << $0) * expansion } }
}

/// A residual block: basic (two 3x3) or bottleneck (1x1, 3x3, 1x1), with torchvision's names
/// (`conv1`, `bn1`, ..., `downsample.0`, `downsample.1`) and stride on the 3x3 convolution.
public final class ResidualBlock: Module {
    public let convs: [Conv]
    public let norms: [BatchNorm]
    public let downsample: Sequential?

    public init(inChannels: Int, planes: Int, stride: Int, bottleneck: Bool, generator: inout RandomGenerator) {
        let out = planes * (bottleneck ? 4 : 1)
        let shapes: [(Int, Int, Int, Int)] =
            bottleneck
            ? [(inChannels, planes, 1, 1), (planes, planes, 3, stride), (planes, out, 1, 1)]
            : [(inChannels, planes, 3, stride), (planes, planes, 3, 1)]
        convs = shapes.map { ResNet.conv($0.0, $0.1, kernel: $0.2, stride: $0.3, generator: &generator) }
        norms = shapes.map { BatchNorm($0.1) }
        downsample =
            stride != 1 || inChannels != out
            ? Sequential([
                ResNet.conv(inChannels, out, kernel: 1, stride: stride, generator: &generator), BatchNorm(out)
            ])
            : nil
        super.init()
        for i in convs.indices {
            registerModule("conv\(i + 1)", convs[i])
            registerModule("bn\(i + 1)", norms[i])
        }
        if let downsample { registerModule("downsample", downsample) }
    }

    public override func forward(_ x: Tensor) -> Tensor {
        var y = x
        for i in convs.indices {
            y = convs[i].forward(y, batchNorm: norms[i], relu: i < convs.count - 1)
        }
        return Functional.relu(y + (downsample?(x) ?? x))
    }
}

/// torchvision's ResNet: `conv1`, `bn1`, 3x3 max pool, `layer1`...`layer4`, global average pool and `fc`.
public final class ResNet: Module {
    public let config: ResNetConfig
    public let conv1: Conv
    public let bn1: BatchNorm
    public let layers: [Sequential]
    public let fc: Linear?
    private let pool = MaxPool2d(kernel: [3, 3], stride: [2, 2], padding: [1])

    /// Weights initialised as torchvision does: Kaiming normal (fan out) convolutions, unit batch norms, default
    /// linear layer.
    public init(_ config: ResNetConfig, generator: inout RandomGenerator) {
        self.config = config
        conv1 = ResNet.conv(config.inChannels, config.width, kernel: 7, stride: 2, generator: &generator)
        bn1 = BatchNorm(config.width)
        var inC = config.width
        var stages: [Sequential] = []
        for (stage, count) in ResNetConfig.blocks[config.depth]!.enumerated() {
            let planes = config.width << stage
            var blocks: [Module] = []
            for b in 0..<count {
                blocks.append(
                    ResidualBlock(
                        inChannels: inC, planes: planes, stride: b == 0 && stage > 0 ? 2 : 1,
                        bottleneck: config.bottleneck, generator: &generator))
                inC = planes * config.expansion
            }
            stages.append(Sequential(blocks))
        }
        layers = stages
        fc = config.classes > 0 ? Linear(inC, config.classes, generator: &generator) : nil
        super.init()
        registerModule("conv1", conv1)
        registerModule("bn1", bn1)
        for (i, s) in layers.enumerated() { registerModule("layer\(i + 1)", s) }
        if let fc { registerModule("fc", fc) }
    }

    /// A bias-free convolution with "same"-style padding k/2 and Kaiming normal (fan out) weights.
    static func conv(_ inC: Int, _ outC: Int, kernel: Int, stride: Int, generator: inout RandomGenerator) -> Conv {
        let c = Conv(
            inC, outC, kernelSize: kernel, stride: stride, padding: kernel / 2, bias: false, generator: &generator)
        c.weight.assign(Initialization.kaimingNormal(c.weight.shape, fanOut: true, generator: &generator))
        return c
    }

    /// The stem and stage outputs: strides 2 (after `bn1` + ReLU), 4, 8, 16 and 32.
    public func features(_ x: Tensor) -> [Tensor] {
        var out = [conv1.forward(x, batchNorm: bn1, relu: true)]
        var y = pool(out[0])
        for layer in layers {
            y = layer(y)
            out.append(y)
        }
        return out
    }

    public override func forward(_ x: Tensor) -> Tensor {
        guard let fc else { return features(x).last! }
        let f = Functional.globalAvgPool2d(features(x).last!)
        return fc(f.reshaped([f.shape[0], f.shape[1]]))
    }

    /// torchvision-named weights (ImageNet's, say) as the start of fine-tuning: every layer but `fc` must fit;
    /// `fc` is kept from the file only when it has this network's class count (otherwise it stays freshly
    /// initialised, as a fine-tuning script replaces `model.fc`). A first convolution with other input channels is
    /// adapted as smp does. Returns whether `fc` came from the file.
    @discardableResult
    public func loadPretrained(_ state: [String: Tensor]) throws -> Bool {
        var own = ResNet.adaptingStem(state, to: config.inChannels)
        let fcFits = fc.map { own["fc.weight"]?.shape == $0.weight.shape } ?? false
        if !fcFits { own = own.filter { !$0.key.hasPrefix("fc.") } }
        let report = try load(own, strict: false).ignoringCounters()
        let missing = report.missing.filter { !$0.hasPrefix("fc.") }
        guard missing.isEmpty, report.unexpected.filter({ !$0.hasPrefix("fc.") }).isEmpty, report.misshaped.isEmpty
        else { throw ModuleLoadError(report: report) }
        return fcFits
    }

    /// `state` with `conv1.weight` made to take `inChannels` channels, as smp adapts a pretrained stem: summed
    /// over the colour channels for one channel, or cycled over them and scaled by old/new for others.
    public static func adaptingStem(_ state: [String: Tensor], to inChannels: Int) -> [String: Tensor] {
        guard let w = state["conv1.weight"], w.rank == 4, w.shape[1] != inChannels, w.shape[1] > 0 else { return state }
        let (o, i, k) = (w.shape[0], w.shape[1], w.shape[2] * w.shape[3])
        let n = inChannels, src = w.contiguous().scalars
        var dst = [Float](repeating: 0, count: o * n * k)
        for a in 0..<o {
            for c in 0..<n {
                for q in 0..<k {
                    if n == 1 {
                        dst[a * k + q] = (0..<i).reduce(0) { $0 + src[(a * i + $1) * k + q] }
                    } else {
                        dst[(a * n + c) * k + q] = src[(a * i + c % i) * k + q] * Float(i) / Float(n)
                    }
                }
            }
        }
        var out = state
        out["conv1.weight"] = Tensor(dst, shape: [o, n, w.shape[2], w.shape[3]])
        return out
    }
}
