import Foundation
import TesseraData
import TesseraEngine
import TesseraNN

/// How LIME hides a superpixel (`--fill`).
public enum LIMEFill: String, Codable, CaseIterable, Sendable {
    /// The superpixel's mean colour (lime's default, `hide_color=None`).
    case mean
    /// The image blurred (Gaussian, sigma 5, as insertion's start): the superpixel's coarse shading stays.
    case blur
    /// Zero in the model's normalised input: the training set's mean intensity.
    case zero
}

/// LIME (Ribeiro et al. 2016, the `lime` package's `LimeImageExplainer`): the image cut into superpixels (SLIC),
/// `samples` copies with superpixels hidden at random (each kept with p = 0.5; the first copy keeps all), the
/// target scored on each (a classifier's softmax probability of the class, as lime's `classifier_fn`; a
/// segmenter's class logits summed over the region), and a weighted ridge regression (alpha 1, with intercept,
/// lime's `LimeBase`) of the score on which superpixels were kept, each copy weighted by lime's kernel
/// sqrt(exp(-d^2 / 0.25^2)) of its cosine distance d to the all-kept copy. A superpixel's coefficient is how much
/// the target gains from showing it.
public struct LIME: Sendable {
    public var slic: SLIC
    public var samples: Int
    public var fill: LIMEFill
    /// Seeds which superpixels each copy hides.
    public var seed: UInt64
    public var kernelWidth = 0.25
    /// Copies scored per forward pass.
    public var batch = 16

    public init(
        segments: Int = 100, compactness: Double = 10, samples: Int = 1000, fill: LIMEFill = .mean, seed: UInt64 = 0
    ) {
        slic = SLIC(segments: segments, compactness: compactness)
        self.samples = max(1, samples)
        self.fill = fill
        self.seed = seed
    }

    /// A fitted surrogate: weights per superpixel, intercept, weighted R^2 and its prediction for the whole image.
    public struct Surrogate: Sendable {
        public var weights: [Double]
        public var intercept: Double
        public var r2: Double
        public var localPrediction: Double
    }

    /// What LIME found for one image.
    public struct Result {
        /// Superpixel of each pixel of the image (row-major), 0..<count.
        public var labels: [Int32]
        public var surrogate: Surrogate
        /// The target's score with every superpixel shown.
        public var score: Double
        /// Each pixel's superpixel weight (signed).
        public var map: [Float]
    }

    /// Explains `target`: `planes` are the model's normalised input over the image (`channels` x `height` x
    /// `width`), `pixels` the same image in [0, 1] for SLIC, and `window` makes the network's input from
    /// (perturbed) planes, as the whole-image window does.
    public func explain(
        planes: [Float], pixels: [Float], channels: Int, width: Int, height: Int, model: Module,
        target: CAMTarget, window: ([Float]) -> Tensor
    ) -> Result {
        let n = width * height
        let (labels, count) = slic.labels(pixels, channels: channels, width: width, height: height)
        let hidden = hiddenValues(
            planes, labels: labels, count: count, channels: channels, width: width, height: height)
        var generator = RandomGenerator(seed: seed)
        // lime draws the whole matrix at once (randint(0, 2, samples * features)) and sets row 0 to ones.
        var kept = [[Bool]]()
        kept.reserveCapacity(samples)
        for s in 0..<samples {
            kept.append((0..<count).map { _ in s == 0 || generator.nextInt(2) == 1 })
        }
        var scores = [Double]()
        scores.reserveCapacity(samples)
        var pending = [Tensor]()
        func flush() {
            guard !pending.isEmpty else { return }
            let x = Tensor.concat(pending, axis: 0)
            pending.removeAll()
            scores += withNoGrad { Self.scores(target, logits: model(x)) }
        }
        for row in kept {
            var copy = planes
            for c in 0..<channels {
                for p in 0..<n where !row[Int(labels[p])] { copy[c * n + p] = hidden[c * n + p] }
            }
            pending.append(window(copy))
            if pending.count == batch { flush() }
        }
        flush()
        let surrogate = Self.fit(kept: kept, scores: scores, kernelWidth: kernelWidth)
        let map = labels.map { Float(surrogate.weights[Int($0)]) }
        return Result(labels: labels, surrogate: surrogate, score: scores[0], map: map)
    }

    /// The value a hidden pixel takes, per channel plane.
    func hiddenValues(
        _ planes: [Float], labels: [Int32], count: Int, channels: Int, width: Int, height: Int
    ) -> [Float] {
        let n = width * height
        switch fill {
        case .zero: return [Float](repeating: 0, count: planes.count)
        case .blur:
            return Faithfulness.blurred(Tensor(planes, shape: [1, channels, height, width]))
        case .mean:
            var out = [Float](repeating: 0, count: planes.count)
            for c in 0..<channels {
                var sum = [Double](repeating: 0, count: count), pixels = [Double](repeating: 0, count: count)
                for p in 0..<n {
                    sum[Int(labels[p])] += Double(planes[c * n + p])
                    pixels[Int(labels[p])] += 1
                }
                for p in 0..<n { out[c * n + p] = Float(sum[Int(labels[p])] / max(1, pixels[Int(labels[p])])) }
            }
            return out
        }
    }

    /// The target's score per item: a classifier's softmax probability, a segmenter's region logit sum.
    static func scores(_ target: CAMTarget, logits: Tensor) -> [Double] {
        switch target {
        case .classLogit: return target.probabilities(logits)
        case .region: return target.values(logits).scalars.map(Double.init)
        }
    }

    /// lime's `LimeBase.explain_instance_with_data` with every feature used: kernel weights of the cosine distance
    /// to the first row, then `Ridge(alpha, fit_intercept=True)` fitted with those sample weights and its weighted
    /// R^2 (`score`).
    public static func fit(kept: [[Bool]], scores: [Double], kernelWidth: Double = 0.25, alpha: Double = 1)
        -> Surrogate
    {
        let m = kept.count, k = kept.first?.count ?? 0
        guard m > 0, k > 0 else {
            return Surrogate(weights: [], intercept: scores.first ?? 0, r2: 0, localPrediction: 0)
        }
        // Cosine distance of a 0/1 row with j ones to the all-ones row: 1 - j / sqrt(j * k) (1 for no ones).
        let weights = kept.map { row -> Double in
            let j = Double(row.filter { $0 }.count)
            let d = j > 0 ? 1 - j / (j * Double(k)).squareRoot() : 1
            return (Foundation.exp(-d * d / (kernelWidth * kernelWidth))).squareRoot()
        }
        let total = weights.reduce(0, +)
        var xMean = [Double](repeating: 0, count: k)
        var yMean = 0.0
        for (r, row) in kept.enumerated() {
            for j in 0..<k where row[j] { xMean[j] += weights[r] }
            yMean += weights[r] * scores[r]
        }
        for j in 0..<k { xMean[j] /= total }
        yMean /= total
        // (Xc' W Xc + alpha I) b = Xc' W yc, by Cholesky.
        var a = [Double](repeating: 0, count: k * k), rhs = [Double](repeating: 0, count: k)
        var xc = [Double](repeating: 0, count: k)
        for (r, row) in kept.enumerated() {
            for j in 0..<k { xc[j] = (row[j] ? 1 : 0) - xMean[j] }
            let w = weights[r], yc = scores[r] - yMean
            for i in 0..<k {
                let wi = w * xc[i]
                rhs[i] += wi * yc
                for j in 0...i { a[i * k + j] += wi * xc[j] }
            }
        }
        for i in 0..<k {
            a[i * k + i] += alpha
            for j in 0..<i { a[j * k + i] = a[i * k + j] }
        }
        let b = solveSymmetric(a, rhs, size: k)
        let intercept = yMean - zip(xMean, b).reduce(0) { $0 + $1.0 * $1.1 }
        var residual = 0.0, spread = 0.0
        for (r, row) in kept.enumerated() {
            var prediction = intercept
            for j in 0..<k where row[j] { prediction += b[j] }
            residual += weights[r] * (scores[r] - prediction) * (scores[r] - prediction)
            spread += weights[r] * (scores[r] - yMean) * (scores[r] - yMean)
        }
        let local = intercept + b.reduce(0, +)
        return Surrogate(
            weights: b, intercept: intercept, r2: spread > 0 ? 1 - residual / spread : 0, localPrediction: local)
    }

    /// `a x = b` for a symmetric positive definite `a` (size x size, row-major), by Cholesky.
    static func solveSymmetric(_ a: [Double], _ b: [Double], size k: Int) -> [Double] {
        var l = [Double](repeating: 0, count: k * k)
        for i in 0..<k {
            for j in 0...i {
                var s = a[i * k + j]
                for t in 0..<j { s -= l[i * k + t] * l[j * k + t] }
                l[i * k + j] = i == j ? max(s, 1e-300).squareRoot() : s / l[j * k + j]
            }
        }
        var y = [Double](repeating: 0, count: k)
        for i in 0..<k {
            var s = b[i]
            for t in 0..<i { s -= l[i * k + t] * y[t] }
            y[i] = s / l[i * k + i]
        }
        var x = [Double](repeating: 0, count: k)
        for i in stride(from: k - 1, through: 0, by: -1) {
            var s = y[i]
            for t in (i + 1)..<k { s -= l[t * k + i] * x[t] }
            x[i] = s / l[i * k + i]
        }
        return x
    }
}
