import Foundation
import TesseraEngine
import TesseraNN

/// Configuration of a U-Net (Ronneberger et al. 2015).
public struct UNetConfig: Codable, Equatable, Sendable {
    /// How a decoder level doubles the resolution.
    public enum Upsampling: String, Codable, Sendable, CaseIterable {
        /// 2x2 stride-2 transposed convolution (the paper's up-convolution).
        case transposed
        /// Bilinear interpolation then a 3x3 convolution that halves the channels.
        case bilinear
    }
    /// Convolution padding: `same` keeps the size; `valid` is the paper's unpadded convolutions, with each skip
    /// centre-cropped to the decoder's size (the output is smaller than the input).
    public enum ConvPadding: String, Codable, Sendable, CaseIterable { case same, valid }

    public var inChannels: Int
    public var classes: Int
    /// Number of 2x down-sampling steps (the reference U-Net has 4).
    public var depth: Int
    /// Channels of the first level; each level doubles it.
    public var width: Int
    public var batchNorm: Bool
    /// Dropout probability at the end of the contracting path (the paper's placement); 0 turns it off.
    public var dropout: Float
    public var upsampling: Upsampling
    public var padding: ConvPadding

    public init(
        inChannels: Int = 1, classes: Int = 2, depth: Int = 4, width: Int = 64, batchNorm: Bool = true,
        dropout: Float = 0, upsampling: Upsampling = .transposed, padding: ConvPadding = .same
    ) {
        self.inChannels = inChannels
        self.classes = classes
        self.depth = depth
        self.width = width
        self.batchNorm = batchNorm
        self.dropout = dropout
        self.upsampling = upsampling
        self.padding = padding
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            inChannels: try c.decode(Int.self, forKey: .inChannels), classes: try c.decode(Int.self, forKey: .classes),
            depth: try c.decode(Int.self, forKey: .depth), width: try c.decode(Int.self, forKey: .width),
            batchNorm: try c.decode(Bool.self, forKey: .batchNorm),
            dropout: try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0,
            upsampling: try c.decodeIfPresent(Upsampling.self, forKey: .upsampling) ?? .transposed,
            padding: try c.decodeIfPresent(ConvPadding.self, forKey: .padding) ?? .same)
        guard NetworkLimits.unetDepth.contains(depth), NetworkLimits.unetWidth.contains(width),
            NetworkLimits.inChannels.contains(inChannels), NetworkLimits.classes.contains(classes),
            (0..<1).contains(dropout)
        else {
            throw DecodingError.dataCorruptedError(
                forKey: .depth, in: c, debugDescription: "U-Net configuration out of range")
        }
    }

    /// Output size for an input of `size` per axis, or nil when the size does not fit.
    public func outputSize(forInput size: Int) -> Int? {
        let loss = padding == .valid ? 4 : 0  // two 3x3 convolutions
        var s = size
        for _ in 0..<depth {
            s -= loss
            guard s > 0, s % 2 == 0 else { return nil }
            s /= 2
        }
        s -= loss
        guard s > 0 else { return nil }
        for _ in 0..<depth {
            s = 2 * s - loss
            guard s > 0 else { return nil }
        }
        return s
    }
}

/// U-Net: `encoder.i` double convs with 2x2 max pooling, `decoder.i.up` (transposed conv, or bilinear + conv as
/// `up.1`), skip concatenation, `decoder.i.conv` double convs, and a 1x1 `head`.
public final class UNet: Module, SegmentationNetwork {
    public let config: UNetConfig
    public let encoder: [Sequential]
    public let decoder: [UNetUpBlock]
    public let head: Conv
    public let dropout: Dropout?
    private let pool = MaxPool2d(kernel: [2, 2])

    public var inChannels: Int { config.inChannels }
    public var classes: Int { config.classes }

    public init(_ config: UNetConfig, generator: inout RandomGenerator) {
        self.config = config
        let widths = (0...config.depth).map { config.width << $0 }
        var enc: [Sequential] = []
        var inC = config.inChannels
        for w in widths {
            enc.append(UNet.doubleConv(inC, w, config: config, generator: &generator))
            inC = w
        }
        var dec: [UNetUpBlock] = []
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            dec.append(
                UNetUpBlock(
                    inChannels: widths[level + 1], outChannels: widths[level], config: config,
                    generator: &generator))
        }
        encoder = enc
        decoder = dec
        head = Conv(config.width, config.classes, kernelSize: [1, 1], generator: &generator)
        dropout = config.dropout > 0 ? Dropout(config.dropout, seed: generator.next()) : nil
        super.init()
        registerModule("encoder", Sequential(enc))
        if let dropout { registerModule("dropout", dropout) }
        registerModule("decoder", Sequential(dec))
        registerModule("head", head)
    }

    /// Two 3x3 convolutions, each followed by batch norm (optional) and ReLU.
    static func doubleConv(_ inC: Int, _ outC: Int, config: UNetConfig, generator: inout RandomGenerator) -> Sequential
    {
        var layers: [Module] = []
        let padding: Padding = config.padding == .same ? .same : .valid
        for (a, b) in [(inC, outC), (outC, outC)] {
            layers.append(
                Conv(a, b, kernelSize: [3, 3], padding: padding, bias: !config.batchNorm, generator: &generator))
            if config.batchNorm { layers.append(BatchNorm(b)) }
            layers.append(ReLU())
        }
        return Sequential(layers)
    }

    public func outputSize(forInput size: Int) -> Int? { config.outputSize(forInput: size) }

    public override func forward(_ x: Tensor) -> Tensor {
        precondition(
            outputSize(forInput: x.shape[2]) != nil && outputSize(forInput: x.shape[3]) != nil,
            "this U-Net (depth \(config.depth), \(config.padding) padding) cannot take \(x.shape[2])x\(x.shape[3])")
        var skips: [Tensor] = []
        var y = x
        for (i, block) in encoder.enumerated() {
            if i > 0 { y = pool(y) }
            y = block(y)
            skips.append(y)
        }
        skips.removeLast()
        if let dropout { y = dropout(y) }
        for block in decoder {
            y = block.forward(y, skip: skips.removeLast())
        }
        return head(y)
    }

    /// Multiply-add operations x2 of one forward pass on an input of `height` x `width` (same padding).
    public func forwardFlops(batch: Int, height: Int, width: Int) -> Double {
        var total = 0.0
        let widths = (0...config.depth).map { config.width << $0 }
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ pixels: Int) -> Double {
            2 * Double(cin * cout * k * k * pixels)
        }
        var inC = config.inChannels
        for (level, w) in widths.enumerated() {
            let pixels = (height >> level) * (width >> level)
            total += conv(inC, w, 3, pixels) + conv(w, w, 3, pixels)
            inC = w
        }
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            let pixels = (height >> level) * (width >> level)
            let w = widths[level]
            if config.upsampling == .transposed {
                total += 2 * Double(widths[level + 1] * w * 4 * (pixels / 4))  // transposed 2x2 stride 2
            } else {
                total += conv(widths[level + 1], w, 3, pixels)
            }
            total += conv(2 * w, w, 3, pixels) + conv(w, w, 3, pixels)
        }
        total += conv(config.width, config.classes, 1, height * width)
        return total * Double(batch)
    }
}

/// One decoder level: `up` (2x2 stride-2 transposed conv, or bilinear + 3x3 conv) then `conv` (double conv on
/// [up, skip], the skip centre-cropped to the up-sampled size for valid padding).
public final class UNetUpBlock: Module {
    public let up: Module
    public let conv: Sequential

    init(inChannels: Int, outChannels: Int, config: UNetConfig, generator: inout RandomGenerator) {
        switch config.upsampling {
        case .transposed:
            up = ConvTranspose(inChannels, outChannels, kernelSize: [2, 2], stride: [2], generator: &generator)
        case .bilinear:
            up = Sequential([
                Upsample(scale: 2, mode: .bilinear),
                Conv(inChannels, outChannels, kernelSize: [3, 3], padding: .same, generator: &generator)
            ])
        }
        conv = UNet.doubleConv(2 * outChannels, outChannels, config: config, generator: &generator)
        super.init()
        registerModule("up", up)
        registerModule("conv", conv)
    }

    /// Up-samples `x`, joins `skip` on the channel axis, and runs the forward hooks on the result.
    func forward(_ x: Tensor, skip: Tensor) -> Tensor {
        let u = up(x)
        let y = conv(concatenating: [u, skip.centreCropped(to: [u.shape[2], u.shape[3]])])
        return runForwardHooks(input: x, output: y)
    }
}
