import Foundation
import TesseraEngine

/// One convolution layer as `tessera bench --conv` times it.
public struct ConvLayerCase: Sendable, Codable {
    public var name: String
    public var inChannels: Int, outChannels: Int
    public var kernel: Int, stride: Int, padding: Int
    public var size: Int, batch: Int
    /// A transposed convolution (up-sampling), whose output is `stride` times larger.
    public var transposed: Bool

    public init(
        name: String, inChannels: Int, outChannels: Int, kernel: Int = 3, stride: Int = 1, padding: Int? = nil,
        size: Int, batch: Int = 1, transposed: Bool = false
    ) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding ?? (transposed ? 0 : kernel / 2)
        self.size = size
        self.batch = batch
        self.transposed = transposed
    }

    /// The layers a U-Net, a ResNet and their first layers are made of: 3x3 same at each U-Net level, 1x1 (U-Net
    /// head, ResNet bottlenecks), 2x2 stride-2 transposed (U-Net up-sampling), strided 3x3 and the 7x7 stem of
    /// ResNet, and first layers with 1 and 3 input channels.
    public static let matrix: [ConvLayerCase] = [
        ConvLayerCase(name: "3x3 16->16 @512", inChannels: 16, outChannels: 16, size: 512),
        ConvLayerCase(name: "3x3 32->32 @256 x4", inChannels: 32, outChannels: 32, size: 256, batch: 4),
        ConvLayerCase(name: "3x3 64->64 @128", inChannels: 64, outChannels: 64, size: 128),
        ConvLayerCase(name: "3x3 64->64 @512", inChannels: 64, outChannels: 64, size: 512),
        ConvLayerCase(name: "3x3 256->256 @32", inChannels: 256, outChannels: 256, size: 32),
        ConvLayerCase(name: "3x3 512->512 @64", inChannels: 512, outChannels: 512, size: 64),
        ConvLayerCase(name: "1x1 64->2 @512 (head)", inChannels: 64, outChannels: 2, kernel: 1, size: 512),
        ConvLayerCase(name: "1x1 256->64 @56 x8", inChannels: 256, outChannels: 64, kernel: 1, size: 56, batch: 8),
        ConvLayerCase(name: "1x1 64->256 @56 x8", inChannels: 64, outChannels: 256, kernel: 1, size: 56, batch: 8),
        ConvLayerCase(
            name: "2x2 up 128->64 @128", inChannels: 128, outChannels: 64, kernel: 2, stride: 2, size: 128,
            transposed: true),
        ConvLayerCase(name: "3x3/2 64->128 @56 x8", inChannels: 64, outChannels: 128, stride: 2, size: 56, batch: 8),
        ConvLayerCase(
            name: "7x7/2 3->64 @224 x8 (stem)", inChannels: 3, outChannels: 64, kernel: 7, stride: 2,
            size: 224, batch: 8),
        ConvLayerCase(name: "3x3 1->16 @512 (first)", inChannels: 1, outChannels: 16, size: 512),
        ConvLayerCase(name: "3x3 3->32 @512 (first)", inChannels: 3, outChannels: 32, size: 512)
    ]

    var outputSize: Int {
        transposed ? (size - 1) * stride - 2 * padding + kernel : (size + 2 * padding - kernel) / stride + 1
    }

    /// 2 x multiply-adds of the forward pass.
    var flops: Double {
        let taps = Double(kernel * kernel * inChannels * outChannels * batch)
        return 2 * taps * Double(transposed ? size * size : outputSize * outputSize)
    }
}

/// Times each pass of one convolution layer alone: forward (no autodiff), input gradient and weight gradient
/// (the graph is recorded once, outside the timed region).
public struct ConvBenchmark {
    public struct Result: Codable, Sendable {
        public let layer: String
        public let pass: String
        public let ms: Double
        public let gflops: Double
    }

    public let layer: ConvLayerCase

    /// Largest tensor a benchmarked layer may need (4 GiB of floats); `--layer` refuses larger ones.
    public static let maximumTensorFloats = 1 << 30

    public init(_ layer: ConvLayerCase) { self.layer = layer }

    /// A 3x3 same-padded layer from `IN,OUT,SIZE[,BATCH]` (`--layer`): whole numbers 1...65536 whose tensors each
    /// fit `maximumTensorFloats`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3 || parts.count == 4, parts.allSatisfy({ (1...65_536).contains($0 ?? 0) }) else {
            throw ConvBenchmarkError(reason: "takes IN,OUT,SIZE[,BATCH], whole numbers 1...65536, got '\(text)'")
        }
        let v = parts.compactMap { $0 }, batch = v.count == 4 ? v[3] : 1
        // Input, weight and output tensors, counted in Double so that no product overflows.
        let area = Double(v[2]) * Double(v[2])
        let floats = [
            Double(v[0]) * area * Double(batch), Double(v[0]) * Double(v[1]) * 9, Double(v[1]) * area * Double(batch)
        ]
        guard floats.allSatisfy({ $0 <= Double(Self.maximumTensorFloats) }) else {
            throw ConvBenchmarkError(
                reason: "\(text): a tensor of the layer would exceed \(Self.maximumTensorFloats) floats (4 GiB)")
        }
        self.init(inChannels: v[0], outChannels: v[1], size: v[2], batch: batch)
    }

    /// A 3x3 same-padded layer, as `--layer IN,OUT,SIZE[,BATCH]` names it.
    public init(inChannels: Int, outChannels: Int, size: Int, batch: Int = 1) {
        layer = ConvLayerCase(
            name: "3x3 \(inChannels)->\(outChannels) @\(size)" + (batch > 1 ? " x\(batch)" : ""),
            inChannels: inChannels, outChannels: outChannels, size: size, batch: batch)
    }

    /// Median milliseconds and GFLOP/s of (forward, input gradient, weight gradient).
    public func run(repeats: Int = 5) -> [Result] {
        var g = RandomGenerator(seed: 0)
        let l = layer
        let x = Tensor.randn([l.batch, l.inChannels, l.size, l.size], generator: &g)
        let w =
            l.transposed
            ? Tensor.randn([l.inChannels, l.outChannels, l.kernel, l.kernel], generator: &g)
            : Tensor.randn([l.outChannels, l.inChannels, l.kernel, l.kernel], generator: &g)
        let apply = { (x: Tensor, w: Tensor) -> Tensor in
            l.transposed
                ? Functional.convTranspose(x, weight: w, stride: [l.stride], padding: [l.padding])
                : Functional.conv(x, weight: w, stride: [l.stride], padding: .explicit([l.padding]))
        }
        let upstream = Tensor.randn([l.batch, l.outChannels, l.outputSize, l.outputSize], generator: &g)
        let xg = x.detached(), wg = w.detached()
        xg.requiresGrad = true
        wg.requiresGrad = true
        let yx = apply(xg, w), yw = apply(x, wg)
        // The three passes alternate round by round, so that the host's drift in speed (up to 2x between minutes on
        // shared machines) falls on all three alike and the ratios between them hold; the first round is warm-up
        // (plan choice, page faults) and is not counted.
        let passes: [() -> Void] = [
            { _ = withNoGrad { apply(x, w) } },
            {
                xg.grad = nil; yx.backward(upstream, retainGraph: true)
            },
            {
                wg.grad = nil; yw.backward(upstream, retainGraph: true)
            }
        ]
        var times = [[Double]](repeating: [], count: passes.count)
        for round in 0...max(1, repeats) {
            for (i, pass) in passes.enumerated() {
                let s = DispatchTime.now().uptimeNanoseconds
                pass()
                if round > 0 { times[i].append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6) }
            }
        }
        let (fwd, dx, dw) = (median(times[0]), median(times[1]), median(times[2]))
        return [("forward", fwd), ("grad_input", dx), ("grad_weight", dw)].map {
            Result(layer: l.name, pass: $0.0, ms: $0.1, gflops: l.flops / ($0.1 * 1e6))
        }
    }
}

private func median(_ values: [Double]) -> Double {
    let v = values.sorted()
    return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}

/// A benchmark layer that cannot be made, and why.
public struct ConvBenchmarkError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
