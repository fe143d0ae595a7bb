import Foundation
import TesseraEngine

/// Times one 3x3 same-padded convolution layer: forward, input gradient and weight gradient separately.
public struct ConvBenchmark {
    public let inChannels: Int, outChannels: Int, size: Int, batch: Int

    public init(inChannels: Int, outChannels: Int, size: Int, batch: Int = 1) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.size = size
        self.batch = batch
    }

    /// Median milliseconds and GFLOP/s of (forward, input gradient, weight gradient).
    public func run(repeats: Int = 5) -> [(pass: String, ms: Double, gflops: Double)] {
        var g = RandomGenerator(seed: 0)
        let x = Tensor.randn([batch, inChannels, size, size], generator: &g)
        let w = Tensor.randn([outChannels, inChannels, 3, 3], generator: &g)
        let flops = 2.0 * Double(batch * inChannels * outChannels * 9 * size * size)
        let upstream = Tensor.randn([batch, outChannels, size, size], generator: &g)
        func time(_ body: () -> Void) -> Double {
            var t: [Double] = []
            for i in 0...repeats {
                let s = DispatchTime.now().uptimeNanoseconds
                body()
                if i > 0 { t.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6) }
            }
            return t.sorted()[t.count / 2]
        }
        let fwd = time { _ = withNoGrad { Functional.conv(x, weight: w, padding: .same) } }
        // Each gradient pass is timed alone: the graph is recorded once, outside the timed region.
        x.requiresGrad = true
        let yx = Functional.conv(x, weight: w, padding: .same)
        let dx = time {
            x.grad = nil
            yx.backward(upstream, retainGraph: true)
        }
        x.requiresGrad = false
        w.requiresGrad = true
        let yw = Functional.conv(x, weight: w, padding: .same)
        let dw = time {
            w.grad = nil
            yw.backward(upstream, retainGraph: true)
        }
        return [("forward", fwd, flops / (fwd * 1e6)), ("grad_input", dx, flops / (dx * 1e6)),
                ("grad_weight", dw, flops / (dw * 1e6))]
    }
}
