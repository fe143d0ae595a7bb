import Foundation
import TesseraData
import TesseraEngine
import TesseraNN

/// A faithfulness score of attribution maps (`--metrics`, `metrics`).
public enum FaithfulnessMetric: String, Codable, CaseIterable, Sendable {
    /// RISE's deletion (Petsiuk et al. 2018): the most attributed pixels removed first (set to 0 in the model's
    /// normalised input, its mean), the target's probability after each step; the area under that curve. Lower
    /// is more faithful: the map found what the model needs.
    case deletion
    /// RISE's insertion: from a blurred input (Gaussian, sigma 5, 11 taps, as RISE), the most attributed pixels
    /// put back first; the area under the probability curve. Higher is more faithful.
    case insertion
    /// ROAD (Rong et al. 2022, pytorch-grad-cam's `ROADCombined`): the most and the least attributed pixels at nine
    /// percentiles imputed from their surroundings (noisy linear imputation); (LeRF change - MoRF change) / 2 of
    /// the target's probability. Higher is more faithful.
    case road

    /// Lower is better for deletion; higher for insertion and ROAD.
    public var higherIsBetter: Bool { self != .deletion }
}

/// RISE's two causal metrics, whose curves `Faithfulness` draws.
public enum CausalMetric: Sendable {
    case deletion, insertion
}

/// Deletion and insertion curves of one map (Petsiuk et al. 2018, RISE's `CausalMetric`): pixels of `crop` in
/// order of decreasing attribution (ties by position), `pixelsPerStep` changed per step, the target's probability
/// (a classifier's softmax of its class; a segmenter's mean softmax of the class over the region) read before the
/// first step and after each; AUC = (sum - first/2 - last/2) / steps, the trapezoid rule on [0, 1].
public struct Faithfulness {
    public var steps: Int
    /// Perturbed inputs per forward pass.
    public var batch = 16

    /// ROAD's settings.
    public var road = ROAD()

    public init(steps: Int = 100) { self.steps = max(1, steps) }

    /// The score `metric` gives `map`: deletion or insertion AUC, or ROAD's combined score.
    public func score(
        _ metric: FaithfulnessMetric, map: [Float], crop: PixelWindow, model: Module, input: Tensor,
        target: CAMTarget
    ) -> Double {
        var road = road
        road.batch = batch
        switch metric {
        case .deletion: return auc(.deletion, map: map, crop: crop, model: model, input: input, target: target)
        case .insertion: return auc(.insertion, map: map, crop: crop, model: model, input: input, target: target)
        case .road: return road.score(map: map, crop: crop, model: model, input: input, target: target)
        }
    }

    /// The area under `metric`'s curve for `map` (crop-sized, row-major) over `input` [1, C, H, W].
    public func auc(
        _ metric: CausalMetric, map: [Float], crop: PixelWindow, model: Module, input: Tensor,
        target: CAMTarget
    ) -> Double {
        Self.area(curve(metric, map: map, crop: crop, model: model, input: input, target: target))
    }

    /// The target's probability before the first step and after each.
    public func curve(
        _ metric: CausalMetric, map: [Float], crop: PixelWindow, model: Module, input: Tensor,
        target: CAMTarget
    ) -> [Double] {
        let c = input.shape[1], h = input.shape[2], w = input.shape[3]
        let order = map.indices.sorted { map[$0] != map[$1] ? map[$0] > map[$1] : $0 < $1 }
        let perStep = max(1, (order.count + steps - 1) / steps), count = (order.count + perStep - 1) / perStep
        let original = input.scalars
        let substrate = metric == .deletion ? [Float](repeating: 0, count: original.count) : Self.blurred(input)
        var current = metric == .deletion ? original : substrate
        let finish = metric == .deletion ? substrate : original
        // States are made and scored `batch` at a time: holding all `count + 1` perturbed inputs at once would
        // cost a hundred copies of the input.
        var probabilities = [Double](), pending = [Float]()
        probabilities.reserveCapacity(count + 1)
        pending.reserveCapacity(batch * original.count)
        func score() {
            guard !pending.isEmpty else { return }
            let n = pending.count / original.count
            probabilities += withNoGrad { target.probabilities(model(Tensor(pending, shape: [n, c, h, w]))) }
            pending.removeAll(keepingCapacity: true)
        }
        pending += current
        for s in 0..<count {
            for i in order[(s * perStep)..<min((s + 1) * perStep, order.count)] {
                let y = crop.y + i / crop.width, x = crop.x + i % crop.width
                guard y >= 0 && y < h && x >= 0 && x < w else { continue }
                for ch in 0..<c { current[(ch * h + y) * w + x] = finish[(ch * h + y) * w + x] }
            }
            if pending.count == batch * original.count { score() }
            pending += current
        }
        score()
        return probabilities
    }

    /// RISE's `auc`: (sum - first / 2 - last / 2) / (count - 1).
    public static func area(_ curve: [Double]) -> Double {
        guard curve.count > 1, let first = curve.first, let last = curve.last else { return curve.first ?? 0 }
        return (curve.reduce(0, +) - first / 2 - last / 2) / Double(curve.count - 1)
    }

    /// Each channel of `input` blurred by RISE's kernel (Gaussian, 11 taps, sigma 5, zero padding, separable).
    static func blurred(_ input: Tensor) -> [Float] {
        let c = input.shape[1], h = input.shape[2], w = input.shape[3]
        let taps = (-5...5).map { Foundation.exp(-Double($0 * $0) / 50) }
        let total = taps.reduce(0, +)
        let k = taps.map { Float($0 / total) }
        let x = input.scalars
        var rows = [Float](repeating: 0, count: x.count), out = [Float](repeating: 0, count: x.count)
        for ch in 0..<c {
            let base = ch * h * w
            for y in 0..<h {
                for xx in 0..<w {
                    var s: Float = 0
                    for t in -5...5 where xx + t >= 0 && xx + t < w { s += k[t + 5] * x[base + y * w + xx + t] }
                    rows[base + y * w + xx] = s
                }
            }
            for y in 0..<h {
                for xx in 0..<w {
                    var s: Float = 0
                    for t in -5...5 where y + t >= 0 && y + t < h { s += k[t + 5] * rows[base + (y + t) * w + xx] }
                    out[base + y * w + xx] = s
                }
            }
        }
        return out
    }
}

extension CAMTarget {
    /// The target's probability for each item of a batch of logits: the class's softmax for a classifier, the
    /// class's softmax averaged over the region's pixels for a segmenter.
    func probabilities(_ logits: Tensor) -> [Double] {
        let p = Functional.softmax(logits, axis: 1).scalars
        let n = logits.shape[0], classes = logits.shape[1], plane = logits.count / max(1, n * classes)
        switch self {
        case .classLogit(let c):
            return (0..<n).map { Double(p[$0 * classes + c]) }
        case .region(let c, let region):
            let weight = region.reduce(0, +)
            return (0..<n).map { item in
                var s = 0.0
                let base = (item * classes + c) * plane
                for i in 0..<plane where region[i] != 0 { s += Double(region[i]) * Double(p[base + i]) }
                return weight > 0 ? s / Double(weight) : 0
            }
        }
    }
}
