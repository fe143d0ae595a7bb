import Foundation
import TesseraEngine

/// What a classifier's predictions score against the true classes, added up batch by batch: top-1 and top-5
/// accuracy, per-class precision, recall and F1 (from the confusion matrix), mean cross-entropy, and the expected
/// calibration error (Guo et al. 2017: 15 equal-width confidence bins, |accuracy - confidence| weighted by the
/// bin's share of the images). Counts only, so shares from several processes add up (`values`).
public struct ClassificationScores: Equatable, Sendable {
    public private(set) var matrix: ConfusionMatrix
    public private(set) var images = 0
    public private(set) var top5Hits = 0
    public private(set) var lossSum = 0.0
    /// Per bin: images, summed confidence, correct images.
    public private(set) var bins: [[Double]]
    public static let calibrationBins = 15

    public init(classes: Int) {
        matrix = ConfusionMatrix(classes: classes)
        bins = Array(repeating: [0, 0, 0], count: Self.calibrationBins)
    }

    public var classes: Int { matrix.classes }

    /// Adds logits [N, classes] against class ids (0..<classes; others are not counted).
    public mutating func add(logits: Tensor, labels: [Int]) {
        let n = logits.shape[0], c = logits.shape[1]
        precondition(c == classes && labels.count == n, "logits \(logits.shape) for \(labels.count) labels")
        let values = logits.contiguous().scalars
        for i in 0..<n where (0..<c).contains(labels[i]) {
            let row = values[(i * c)..<((i + 1) * c)]
            add(logitRow: Array(row), label: labels[i])
        }
    }

    mutating func add(logitRow row: [Float], label: Int) {
        let top = row.max() ?? 0
        let exps = row.map { Double(Foundation.exp($0 - top)) }
        let total = exps.reduce(0, +)
        let predicted = row.firstIndex(of: top) ?? 0
        let confidence = exps[predicted] / total
        matrix.add(predictions: [predicted], truth: [label])
        images += 1
        // Top-5: fewer than five classes scored higher than the truth (ties counted for the truth, as torch.topk
        // keeps the earlier index).
        let higher = row.enumerated().filter {
            $0.element > row[label] || ($0.element == row[label] && $0.offset < label)
        }
        if higher.count < 5 { top5Hits += 1 }
        lossSum += -(Double(row[label] - top) - Foundation.log(total))
        let bin = min(Self.calibrationBins - 1, Int(confidence * Double(Self.calibrationBins)))
        bins[bin][0] += 1
        bins[bin][1] += confidence
        bins[bin][2] += predicted == label ? 1 : 0
    }

    /// The counts as one flat list, for a sum over processes; `init(classes:values:)` reads it back.
    public var values: [Double] {
        matrix.counts.map(Double.init) + [Double(images), Double(top5Hits), lossSum] + bins.flatMap { $0 }
    }

    public init?(classes: Int, values: [Double]) {
        let m = classes * classes
        guard values.count == m + 3 + 3 * Self.calibrationBins,
            let matrix = ConfusionMatrix(classes: classes, counts: values[0..<m].map { Int($0.rounded()) })
        else { return nil }
        self.matrix = matrix
        images = Int(values[m].rounded())
        top5Hits = Int(values[m + 1].rounded())
        lossSum = values[m + 2]
        bins = (0..<Self.calibrationBins).map { Array(values[(m + 3 + 3 * $0)..<(m + 6 + 3 * $0)]) }
    }

    public var accuracy: Double { matrix.pixelAccuracy }
    public var top5Accuracy: Double { images == 0 ? 0 : Double(top5Hits) / Double(images) }
    public var meanLoss: Double { images == 0 ? 0 : lossSum / Double(images) }

    /// Expected calibration error: sum over bins of (bin images / images) * |bin accuracy - bin confidence|.
    public var expectedCalibrationError: Double {
        guard images > 0 else { return 0 }
        return bins.reduce(0) { sum, b in b[0] == 0 ? sum : sum + abs(b[2] - b[1]) / Double(images) }
    }

    /// Every score by name: `accuracy`, `top5_accuracy`, `mean_precision`, `mean_recall`, `mean_f1`,
    /// `precision_<c>`, `recall_<c>`, `f1_<c>`, `loss`, `ece`.
    public var summary: [String: Double] {
        var out = [
            "accuracy": accuracy, "top5_accuracy": top5Accuracy, "loss": meanLoss, "ece": expectedCalibrationError
        ]
        for (name, values) in [("precision", matrix.precision), ("recall", matrix.recall), ("f1", matrix.dice)] {
            for (c, v) in values.enumerated() { out["\(name)_\(c)"] = v }
            out["mean_\(name)"] = values.reduce(0, +) / Double(max(1, values.count))
        }
        return out
    }
}
