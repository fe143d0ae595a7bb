import Foundation
import TesseraData
import TesseraEngine
import TesseraNN

/// ROAD, RemOve And Debias (Rong et al. 2022), as pytorch-grad-cam's `ROADCombined`: at each percentile p the
/// pixels whose attribution is at or above the map's p-th percentile are imputed (most relevant first, MoRF), and
/// separately those at or below the (100 - p)-th (least relevant first, LeRF), each by noisy linear imputation;
/// the change of the target's probability (after - before) is averaged over the percentiles, and the score is
/// (LeRF change - MoRF change) / 2. Higher is more faithful: removing what the map calls important hurts the model
/// and removing what it calls unimportant does not. Percentiles are numpy's (linear interpolation) over the
/// explained crop; pixels outside it are kept.
public struct ROAD {
    public var percentiles: [Double] = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    public var imputer = NoisyLinearImputer()
    /// Seeds the imputation noise (one generator per image, drawn in percentile order, MoRF then LeRF).
    public var seed: UInt64 = 0
    /// Imputed inputs per forward pass.
    public var batch = 16

    public init() {}

    /// The probability changes at each percentile, most relevant removed first and least relevant first.
    public struct Changes {
        public var mostRelevantFirst: [Double]
        public var leastRelevantFirst: [Double]

        /// `ROADCombined`: (mean LeRF change - mean MoRF change) / 2.
        public var combined: Double {
            func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
            return (mean(leastRelevantFirst) - mean(mostRelevantFirst)) / 2
        }
    }

    /// `ROADCombined`'s score of `map` (crop-sized, row-major) over `input` [1, C, H, W].
    public func score(map: [Float], crop: PixelWindow, model: Module, input: Tensor, target: CAMTarget) -> Double {
        changes(map: map, crop: crop, model: model, input: input, target: target).combined
    }

    public func changes(map: [Float], crop: PixelWindow, model: Module, input: Tensor, target: CAMTarget) -> Changes {
        let c = input.shape[1], h = input.shape[2], w = input.shape[3]
        let original = input.scalars
        let sorted = map.sorted(), inverted = map.map { 1 - $0 }.sorted()
        var generator = RandomGenerator(seed: seed)
        var states = [[Float]]()
        for leastFirst in [false, true] {
            for p in percentiles {
                let removed = Self.removed(
                    map: map, sorted: leastFirst ? inverted : sorted, crop: crop, height: h, width: w, percentile: p,
                    leastRelevantFirst: leastFirst)
                states.append(
                    imputer.impute(
                        original, channels: c, height: h, width: w, removed: removed, generator: &generator))
            }
        }
        var scores = [Double]()
        let all = [original] + states
        for first in stride(from: 0, to: all.count, by: max(1, batch)) {
            let chunk = all[first..<min(first + max(1, batch), all.count)]
            let x = Tensor(Array(chunk.joined()), shape: [chunk.count, c, h, w])
            scores += withNoGrad { target.probabilities(model(x)) }
        }
        let before = scores[0], k = percentiles.count
        return Changes(
            mostRelevantFirst: (0..<k).map { scores[1 + $0] - before },
            leastRelevantFirst: (0..<k).map { scores[1 + k + $0] - before })
    }

    /// The input pixels ([height][width]) one step removes: pytorch-grad-cam keeps `map < percentile(map, p)`
    /// (most relevant first) or `1 - map < percentile(1 - map, p)` (least relevant first); `sorted` is the kept
    /// quantity's values in ascending order. Pixels outside `crop` are kept.
    public static func removed(
        map: [Float], sorted: [Float], crop: PixelWindow, height h: Int, width w: Int, percentile p: Double,
        leastRelevantFirst: Bool
    ) -> [Bool] {
        let threshold = percentile(sorted, p)
        var removed = [Bool](repeating: false, count: h * w)
        for i in map.indices {
            let y = crop.y + i / crop.width, x = crop.x + i % crop.width
            guard y >= 0 && y < h && x >= 0 && x < w else { continue }
            let v = leastRelevantFirst ? 1 - map[i] : map[i]
            removed[y * w + x] = !(v < threshold)
        }
        return removed
    }

    /// numpy's `percentile` (method "linear") of ascending `sorted` values, `p` in [0, 100].
    public static func percentile(_ sorted: [Float], _ p: Double) -> Float {
        guard let first = sorted.first else { return 0 }
        let position = p / 100 * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        let t = Float(position - Double(lower))
        return lower >= sorted.count - 1 ? (sorted.last ?? first) : sorted[lower] + t * (sorted[upper] - sorted[lower])
    }
}
