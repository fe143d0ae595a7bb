import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN

/// The reference models benchmark: the U-Net's inference forward and full train step (forward, cross-entropy,
/// backward, Adam) at three sizes, and the ResNet classifiers' forward as `explain` runs them.
public struct UNetBenchmark {
    /// One benchmark case: a U-Net (width) or a ResNet classifier (depth), batch and square image size.
    public struct Case: Sendable {
        public let name: String
        public let width: Int, batch: Int, size: Int
        /// ResNet depth (18, 50); 0 for the U-Net.
        public var resNetDepth = 0
        /// LeNet-5 (classic: tanh, average pooling; 1x32x32, 10 classes) instead of a U-Net.
        public var lenet = false
        /// Modes the case runs in by default: the classifiers `tessera train --task classify` trains are timed
        /// training too.
        public var modes: [String] {
            resNetDepth > 0 && name != "resnet18-b8-224" ? ["forward"] : ["forward", "train"]
        }
    }

    /// One measured result, in the JSON schema shared with the PyTorch reference script.
    public struct Result: Codable, Sendable {
        public let `case`: String
        public let mode: String
        public let ms: Double
        public let gflops: Double
        public let peak_rss_mb: Double
    }

    public static let cases: [Case] = [
        Case(name: "unet-w64-b1-512", width: 64, batch: 1, size: 512),
        Case(name: "unet-w32-b4-256", width: 32, batch: 4, size: 256),
        Case(name: "unet-w16-b1-512", width: 16, batch: 1, size: 512),
        Case(name: "resnet18-b1-224", width: 64, batch: 1, size: 224, resNetDepth: 18),
        Case(name: "resnet18-b8-224", width: 64, batch: 8, size: 224, resNetDepth: 18),
        Case(name: "resnet50-b1-224", width: 64, batch: 1, size: 224, resNetDepth: 50),
        Case(name: "resnet50-b8-224", width: 64, batch: 8, size: 224, resNetDepth: 50),
        Case(name: "lenet5-b64-32", width: 0, batch: 64, size: 32, lenet: true)
    ]

    /// Multiply-adds of one LeNet-5 forward: conv 6x25x28x28 + 16x150x10x10, fc 400x120 + 120x84 + 84x10.
    static let leNetMultiplyAdds = 117_600.0 + 240_000 + 48_000 + 10_080 + 840

    /// Multiply-adds of one 224x224 ResNet forward (torchvision's published counts: 1.81 and 4.09 G).
    static let resNetMultiplyAdds: [Int: Double] = [18: 1.814e9, 50: 4.089e9]

    public init() {}

    /// Times `mode` ("forward" or "train") of `c`: `warmup` untimed runs, then the median of `repeats`.
    public func run(_ c: Case, mode: String, warmup: Int = 1, repeats: Int = 5) -> Result {
        var generator = RandomGenerator(seed: 0)
        let model: Module
        let flops: Double
        let input: Tensor
        if c.lenet {
            model = LeNet5(classes: 10, generator: &generator)
            input = Tensor.randn([c.batch, 1, c.size, c.size], generator: &generator)
            flops = 2 * Self.leNetMultiplyAdds * Double(c.batch)
        } else if c.resNetDepth > 0 {
            model = ResNet(ResNetConfig(depth: c.resNetDepth, inChannels: 3, classes: 1000), generator: &generator)
            input = Tensor.randn([c.batch, 3, c.size, c.size], generator: &generator)
            flops = 2 * (Self.resNetMultiplyAdds[c.resNetDepth] ?? 0) * Double(c.batch)
        } else {
            let unet = UNet(UNetConfig(inChannels: 1, classes: 2, depth: 4, width: c.width), generator: &generator)
            model = unet
            input = Tensor.randn([c.batch, 1, c.size, c.size], generator: &generator)
            flops = unet.forwardFlops(batch: c.batch, height: c.size, width: c.size)
        }
        let target = Tensor(zeros: c.resNetDepth > 0 || c.lenet ? [c.batch] : [c.batch, c.size, c.size])
        for i in 0..<target.count { target.pointer[i] = Float(generator.nextInt(2)) }
        var times: [Double] = []
        let body: () -> Void
        var work = flops
        if mode == "train" {
            model.train()
            let optimizer = Adam(model.parameters, learningRate: 1e-3)
            work = 3 * flops
            body = {
                optimizer.zeroGrad()
                let loss = Functional.crossEntropy(model(input), target: target)
                loss.backward()
                optimizer.step()
            }
        } else {
            model.eval()
            body = { withNoGrad { _ = model(input) } }
        }
        for i in 0..<(warmup + repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            if i >= warmup { times.append(ms) }
        }
        times.sort()
        let median = times[times.count / 2]
        return Result(
            case: c.name, mode: mode, ms: median, gflops: work / (median * 1e6),
            peak_rss_mb: ResourceUsage.peakRSSMegabytes)
    }
}

/// Process resource figures.
public enum ResourceUsage {
    /// Peak resident set size of this process so far, in MB (VmHWM).
    public static var peakRSSMegabytes: Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }
}
