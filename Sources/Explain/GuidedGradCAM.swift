import Foundation
import TesseraData
import TesseraEngine
import TesseraNN

extension GradCAM {
    /// The target's gradient with respect to the input [1, C, H, W] with guided ReLUs (parameters frozen), as
    /// pytorch-grad-cam's `GuidedBackpropReLUModel` computes it.
    public static func guidedGradient(model: Module, input: Tensor, target: CAMTarget) -> [Float] {
        withFrozenParameters(of: model) {
            let x = Tensor(input.scalars, shape: input.shape, requiresGrad: true)
            let value = target.values(model(x)).sum()
            withGuidedReLU { value.backward() }
            return x.grad?.scalars ?? [Float](repeating: 0, count: input.count)
        }
    }
}

extension CAMResult {
    /// Makes this Grad-CAM result Guided Grad-CAM: `guided` = the guided gradient (over `crop`) times the heatmap,
    /// per channel; the heatmap becomes each pixel's largest |guided| over the channels over its maximum.
    mutating func guide(by gradient: [Float], input: Tensor, crop: PixelWindow) {
        let c = input.shape[1], h = input.shape[2], w = input.shape[3], plane = crop.width * crop.height
        var product = [Float](repeating: 0, count: c * plane), peak = [Float](repeating: 0, count: plane)
        for ch in 0..<c {
            for y in 0..<crop.height {
                let sy = crop.y + y
                guard sy >= 0 && sy < h else { continue }
                for x in 0..<crop.width {
                    let sx = crop.x + x
                    guard sx >= 0 && sx < w else { continue }
                    let i = y * crop.width + x
                    let v = gradient[(ch * h + sy) * w + sx] * heatmap[i]
                    product[ch * plane + i] = v
                    peak[i] = max(peak[i], abs(v))
                }
            }
        }
        guided = product
        let hi = peak.max() ?? 0
        isZero = !(hi > 0) || !hi.isFinite
        heatmap = isZero ? [Float](repeating: 0, count: plane) : peak.map { $0 / hi }
    }
}
