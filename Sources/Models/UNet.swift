import Foundation
import TesseraEngine
import TesseraNN

/// Configuration of a U-Net (Ronneberger et al. 2015) with same-padded convolutions.
public struct UNetConfig: Codable, Equatable, Sendable {
    public var inChannels: Int
    public var classes: Int
    /// Number of 2x down-sampling steps (the reference U-Net has 4).
    public var depth: Int
    /// Channels of the first level; each level doubles it.
    public var width: Int
    public var batchNorm: Bool

    public init(inChannels: Int = 1, classes: Int = 2, depth: Int = 4, width: Int = 64, batchNorm: Bool = true) {
        self.inChannels = inChannels
        self.classes = classes
        self.depth = depth
        self.width = width
        self.batchNorm = batchNorm
    }
}

/// U-Net: `encoder.i` double convs with 2x2 max pooling, `decoder.i.up` 2x2 stride-2 transposed convs,
/// skip concatenation, `decoder.i.conv` double convs, and a 1x1 `head`.
public final class UNet: Module {
    public let config: UNetConfig
    public let encoder: [Sequential]
    public let decoder: [UNetUpBlock]
    public let head: Conv
    private let pool = MaxPool2d(kernel: [2, 2])

    public init(_ config: UNetConfig, generator: inout RandomGenerator) {
        self.config = config
        let widths = (0...config.depth).map { config.width << $0 }
        var enc: [Sequential] = []
        var inC = config.inChannels
        for w in widths {
            enc.append(UNet.doubleConv(inC, w, batchNorm: config.batchNorm, generator: &generator))
            inC = w
        }
        var dec: [UNetUpBlock] = []
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            dec.append(UNetUpBlock(inChannels: widths[level + 1], outChannels: widths[level],
                                   batchNorm: config.batchNorm, generator: &generator))
        }
        encoder = enc
        decoder = dec
        head = Conv(config.width, config.classes, kernelSize: [1, 1], generator: &generator)
        super.init()
        registerModule("encoder", Sequential(enc))
        registerModule("decoder", Sequential(dec))
        registerModule("head", head)
    }

    /// Two 3x3 same-padded convolutions, each followed by batch norm (optional) and ReLU.
    static func doubleConv(_ inC: Int, _ outC: Int, batchNorm: Bool, generator: inout RandomGenerator) -> Sequential {
        var layers: [Module] = []
        for (a, b) in [(inC, outC), (outC, outC)] {
            layers.append(Conv(a, b, kernelSize: [3, 3], padding: .same, bias: !batchNorm, generator: &generator))
            if batchNorm { layers.append(BatchNorm(b)) }
            layers.append(ReLU())
        }
        return Sequential(layers)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        let factor = 1 << config.depth
        precondition(x.shape[2] % factor == 0 && x.shape[3] % factor == 0,
                     "U-Net of depth \(config.depth) needs H and W divisible by \(factor), got \(x.shape)")
        var skips: [Tensor] = []
        var y = x
        for (i, block) in encoder.enumerated() {
            if i > 0 { y = pool(y) }
            y = block(y)
            skips.append(y)
        }
        skips.removeLast()
        for block in decoder {
            y = block.forward(y, skip: skips.removeLast())
        }
        return head(y)
    }

    /// Multiply-add operations x2 of one forward pass on an input of `height` x `width`.
    public func forwardFlops(batch: Int, height: Int, width: Int) -> Double {
        var total = 0.0
        let widths = (0...config.depth).map { config.width << $0 }
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ pixels: Int) -> Double { 2 * Double(cin * cout * k * k * pixels) }
        var inC = config.inChannels
        for (level, w) in widths.enumerated() {
            let pixels = (height >> level) * (width >> level)
            total += conv(inC, w, 3, pixels) + conv(w, w, 3, pixels)
            inC = w
        }
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            let pixels = (height >> level) * (width >> level)
            let w = widths[level]
            total += 2 * Double(widths[level + 1] * w * 4 * (pixels / 4))   // transposed 2x2 stride 2
            total += conv(2 * w, w, 3, pixels) + conv(w, w, 3, pixels)
        }
        total += conv(config.width, config.classes, 1, height * width)
        return total * Double(batch)
    }
}

/// One decoder level: `up` (2x2 stride-2 transposed conv) then `conv` (double conv on [up, skip]).
public final class UNetUpBlock: Module {
    public let up: ConvTranspose
    public let conv: Sequential

    init(inChannels: Int, outChannels: Int, batchNorm: Bool, generator: inout RandomGenerator) {
        up = ConvTranspose(inChannels, outChannels, kernelSize: [2, 2], stride: [2], generator: &generator)
        conv = UNet.doubleConv(2 * outChannels, outChannels, batchNorm: batchNorm, generator: &generator)
        super.init()
        registerModule("up", up)
        registerModule("conv", conv)
    }

    /// Up-samples `x`, joins `skip` on the channel axis, and runs the forward hooks on the result.
    func forward(_ x: Tensor, skip: Tensor) -> Tensor {
        let y = conv(Tensor.concat([up(x), skip], axis: 1))
        runForwardHooks(input: x, output: y)
        return y
    }
}
