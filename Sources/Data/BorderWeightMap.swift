import Foundation
import TesseraObjects

/// The U-Net paper's per-pixel loss weights (Ronneberger et al. 2015, eq. 2): a class-balancing term plus
/// w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on background pixels, where d1 and d2 are the distances to the nearest and
/// second-nearest object. Objects are the 4-connected components of non-background (label != 0) pixels, so thin
/// background gaps between touching cells get the largest weights.
public struct BorderWeightMap: Sendable {
    public var w0: Float
    public var sigma: Float
    public var background: Int32

    public init(w0: Float = 10, sigma: Float = 5, background: Int32 = 0) {
        self.w0 = w0
        self.sigma = sigma
        self.background = background
    }

    /// Distances beyond which the border term is below w0 * exp(-12.5) (3.7e-5 for w0 = 10) are not computed.
    var reach: Int { Int((5 * sigma).rounded(.up)) }

    /// Weights for a `height` x `width` label map (row-major).
    public func weights(labels: [Int32], width: Int, height: Int) -> [Float] {
        precondition(labels.count == width * height, "label count does not match \(width)x\(height)")
        var weights = classBalance(labels)
        let objects = ConnectedComponents(
            keys: labels.map { $0 != background ? 1 : 0 }, width: width, height: height, connectivity: .four)
        guard objects.count >= 2 else { return weights }
        var d1 = [Float](repeating: .infinity, count: labels.count), d2 = d1
        // Per object: exact Euclidean distances inside its bounding box grown by `reach`.
        let r = reach
        for (k, object) in objects.objects.enumerated() {
            let id = UInt32(k + 1), b = object.box
            let x0 = max(0, b.x - r), y0 = max(0, b.y - r)
            let bw = min(width, b.x + b.width + r) - x0, bh = min(height, b.y + b.height + r) - y0
            let distance = DistanceTransform.euclidean(width: bw, height: bh) {
                objects.ids[(y0 + $0 / bw) * width + x0 + $0 % bw] != id
            }
            for y in 0..<bh {
                for x in 0..<bw {
                    let i = (y0 + y) * width + x0 + x
                    guard labels[i] == background else { continue }
                    let d = distance[y * bw + x]
                    if d < d1[i] { d2[i] = d1[i]; d1[i] = d } else if d < d2[i] { d2[i] = d }
                }
            }
        }
        let scale = 1 / (2 * sigma * sigma)
        for i in weights.indices where labels[i] == background && d2[i].isFinite {
            let s = d1[i] + d2[i]
            weights[i] += w0 * Foundation.exp(-s * s * scale)
        }
        return weights
    }

    /// w_c: each class present gets weight (1 / classes present) / its pixel fraction, so the classes weigh equally.
    func classBalance(_ labels: [Int32]) -> [Float] {
        var counts: [Int32: Int] = [:]
        for l in labels { counts[l, default: 0] += 1 }
        let n = Float(labels.count), k = Float(counts.count)
        let w = counts.mapValues { n / (k * Float($0)) }
        return labels.map { w[$0]! }
    }
}
