import Foundation

/// How much memory a network takes, computed from its configuration alone, so a checkpoint or a command line that
/// asks for an absurd network (a U-Net of depth 8 and width 1024 has 2 x 10^12 parameters) is refused before
/// anything is allocated instead of ending the process.
extension NetworkSpec {
    /// The most memory a network may need for its parameters plus the activations of one inference tile (16 GiB:
    /// the largest U-Net the recipes use, width 64 at 1024 x 1024, needs about 2.3 GiB).
    public static let memoryBudget = 16 << 30

    /// Learnable parameters (weights, biases, batch-norm scales and shifts), exactly as the built model has them.
    public var parameterCount: Int {
        if let u = unet, arch == "unet" { return Self.parameters(of: u) }
        if let r = resnetUNet { return Self.parameters(of: r) }
        if let c = lenet5 {
            return 25 * c.inChannels * 6 + 6 + 25 * 6 * 16 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * c.classes
                + c.classes
        }
        if let r = resnet {
            let total = Self.parameters(ofEncoder: r) + Double(r.stageChannels[4] + 1) * Double(r.classes)
            return total >= Double(Int.max / 8) ? Int.max / 8 : Int(total)
        }
        return 0
    }

    /// An upper estimate of the floats alive at once during one inference forward pass on a `tile` x `tile` input.
    public func activationFloats(tile: Int) -> Int {
        let pixels = Double(tile) * Double(tile)
        var floats: Double
        if let c = lenet5 {
            return 1024 * (c.inChannels + 12)
        } else if let r = resnet {
            // Every stage's output kept for the backward pass (the stem's at stride 2) and the stem's input.
            floats = zip(r.stageChannels, 1...5).reduce(pixels * Double(r.inChannels)) {
                $0 + 2 * pixels * Double($1.0) / Double(1 << (2 * $1.1))
            }
        } else if let u = unet, arch == "unet" {
            // The skips (width x pixels, halving per level: at most twice the first) and, at the first level, the
            // up-sampled map, the concatenation (twice the width) and two convolution outputs.
            floats = pixels * Double(u.width) * 7 + pixels * Double(u.inChannels + u.classes)
        } else if let r = resnetUNet {
            let encoder = ResNetConfig(depth: r.encoder, inChannels: r.inChannels, classes: 0)
            // Encoder features at strides 2, 4, ..., 32 (all kept as skips) and each decoder block's input and output.
            floats = zip(encoder.stageChannels, 1...5).reduce(0) {
                $0 + pixels * Double($1.0) / Double(1 << (2 * $1.1))
            }
            for (i, c) in r.decoderChannels.enumerated() {
                floats += 4 * pixels * Double(c) / Double(1 << (2 * (4 - i)))
            }
            floats += pixels * Double(r.inChannels + r.classes)
        } else {
            return 0
        }
        return floats >= Double(Int.max / 8) ? Int.max / 8 : Int(floats)
    }

    /// Values per channel, per sample, at the network's deepest batch-normalised level for a `size` x `size` input:
    /// training-mode batch norm needs more than one over the batch (PyTorch refuses the same case).
    public func deepestFeaturePixels(forInput size: Int) -> Int {
        if let u = unet, arch == "unet" {
            let loss = u.padding == .valid ? 4 : 0
            var s = size
            for _ in 0..<u.depth { s = (s - loss) / 2 }
            s -= loss
            return max(0, s) * max(0, s)
        }
        let s = size / 32
        return s * s
    }

    /// Whether the network normalises with batch statistics when it trains.
    public var usesBatchNorm: Bool { lenet5 == nil && (unet.map(\.batchNorm) ?? true) }

    /// Throws unless parameters and the activations of a `tile` x `tile` inference fit `memoryBudget`.
    public func checkMemory(tile: Int) throws {
        let parameters = parameterCount, activations = activationFloats(tile: tile)
        let (bytes, overflow) = (parameters &+ activations).multipliedReportingOverflow(by: 4)
        guard !overflow, parameters >= 0, bytes <= Self.memoryBudget else {
            let gib = { (n: Int) in String(format: "%.1f GiB", Double(n) * 4 / Double(1 << 30)) }
            throw NetworkSpecError(
                reason: "this \(arch) needs \(gib(parameters)) of parameters and \(gib(activations)) of "
                    + "activations for a \(tile)x\(tile) tile, over the \(Self.memoryBudget >> 30) GiB budget")
        }
    }

    static func parameters(of c: UNetConfig) -> Int {
        // Work in Double: a hostile configuration must not overflow Int before it is refused.
        let bn = c.batchNorm
        func doubleConv(_ a: Double, _ b: Double) -> Double { 9 * a * b + 9 * b * b + (bn ? 4 * b : 2 * b) }
        let widths = (0...max(0, c.depth)).map { Double(c.width) * pow(2, Double($0)) }
        var total = 0.0, input = Double(c.inChannels)
        for w in widths {
            total += doubleConv(input, w)
            input = w
        }
        for level in stride(from: c.depth - 1, through: 0, by: -1) {
            let inner = widths[level + 1], outer = widths[level]
            total += (c.upsampling == .transposed ? 4 : 9) * inner * outer + outer + doubleConv(2 * outer, outer)
        }
        total += Double(c.width) * Double(c.classes) + Double(c.classes)
        return total >= Double(Int.max / 8) ? Int.max / 8 : Int(total)
    }

    /// A ResNet's parameters without its `fc`.
    static func parameters(ofEncoder encoder: ResNetConfig) -> Double {
        let counts = ResNetConfig.blocks[encoder.depth] ?? []
        let width = Double(encoder.width)
        var total = 49 * Double(encoder.inChannels) * width + 2 * width  // stem: 7x7 convolution and batch norm
        var input = width
        for (stage, blocks) in counts.enumerated() {
            let planes = width * Double(1 << stage), out = planes * Double(encoder.expansion)
            for b in 0..<blocks {
                let strided = b == 0 && stage > 0
                if encoder.bottleneck {
                    total += input * planes + 2 * planes + 9 * planes * planes + 2 * planes + planes * out + 2 * out
                } else {
                    total += 9 * input * planes + 2 * planes + 9 * planes * planes + 2 * planes
                }
                if b == 0 && (strided || input != out) { total += input * out + 2 * out }
                input = out
            }
        }
        return total
    }

    static func parameters(of c: ResNetUNetConfig) -> Int {
        let encoder = ResNetConfig(depth: c.encoder, inChannels: c.inChannels, classes: 0)
        var total = parameters(ofEncoder: encoder)
        let channels = encoder.stageChannels.reversed().map(Double.init)
        let inputs = [channels[0]] + c.decoderChannels.dropLast().map(Double.init)
        let skips = Array(channels.dropFirst()) + [0]
        for i in 0..<5 {
            let a = inputs[i] + skips[i], b = Double(c.decoderChannels[i])
            total += 9 * a * b + 2 * b + 9 * b * b + 2 * b
        }
        total += 9 * Double(c.decoderChannels[4]) * Double(c.classes) + Double(c.classes)
        return total >= Double(Int.max / 8) ? Int.max / 8 : Int(total)
    }
}
