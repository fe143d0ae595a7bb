import Foundation
import TesseraEngine

/// Pixel counts of (true class, predicted class), and the segmentation metrics derived from them.
public struct ConfusionMatrix: Equatable, Sendable {
    public let classes: Int
    /// counts[truth * classes + prediction]
    public private(set) var counts: [Int]

    public init(classes: Int) {
        self.classes = classes
        counts = Array(repeating: 0, count: classes * classes)
    }

    /// A matrix from saved counts (`counts`), nil when they are not `classes` x `classes` non-negative numbers.
    public init?(classes: Int, counts: [Int]) {
        guard classes > 0, counts.count == classes * classes, counts.allSatisfy({ $0 >= 0 }) else { return nil }
        self.classes = classes
        self.counts = counts
    }

    /// Adds logits [N, C, H, W] (argmax over C) against class ids [N, H, W]; ids outside 0..<C are ignored.
    public mutating func add(logits: Tensor, target: Tensor) {
        precondition(logits.shape[1] == classes, "logits have \(logits.shape[1]) classes, the matrix \(classes)")
        let prediction = logits.argmax(axis: 1).scalars, truth = target.scalars
        precondition(prediction.count == truth.count, "prediction \(logits.shape) and target \(target.shape) differ")
        add(predictions: prediction.map { Int($0) }, truth: truth.map { Int($0) })
    }

    /// Adds paired class ids.
    public mutating func add<P: BinaryInteger, T: BinaryInteger>(predictions: [P], truth: [T]) {
        for (p, t) in zip(predictions, truth) where t >= 0 && t < classes && p >= 0 && p < classes {
            counts[Int(t) * classes + Int(p)] += 1
        }
    }

    /// Adds another matrix's counts.
    public mutating func merge(_ other: ConfusionMatrix) { self = self + other }

    public static func + (a: ConfusionMatrix, b: ConfusionMatrix) -> ConfusionMatrix {
        var r = a
        for i in r.counts.indices { r.counts[i] += b.counts[i] }
        return r
    }

    func truePositives(_ c: Int) -> Double { Double(counts[c * classes + c]) }
    func actual(_ c: Int) -> Double { Double((0..<classes).reduce(0) { $0 + counts[c * classes + $1] }) }
    func predicted(_ c: Int) -> Double { Double((0..<classes).reduce(0) { $0 + counts[$1 * classes + c] }) }

    /// Correct pixels over all pixels.
    public var pixelAccuracy: Double {
        let total = counts.reduce(0, +)
        return total == 0 ? 0 : (0..<classes).map(truePositives).reduce(0, +) / Double(total)
    }

    /// Per class. A class absent from both truth and prediction scores 1 (nothing to get wrong); an empty
    /// denominator otherwise scores 0 (e.g. precision of a class present but never predicted).
    public var iou: [Double] {
        (0..<classes).map { c in ratio(c, truePositives(c), actual(c) + predicted(c) - truePositives(c)) }
    }
    public var dice: [Double] { (0..<classes).map { c in ratio(c, 2 * truePositives(c), actual(c) + predicted(c)) } }
    public var precision: [Double] { (0..<classes).map { c in ratio(c, truePositives(c), predicted(c)) } }
    public var recall: [Double] { (0..<classes).map { c in ratio(c, truePositives(c), actual(c)) } }

    private func ratio(_ c: Int, _ a: Double, _ b: Double) -> Double {
        b > 0 ? a / b : (actual(c) + predicted(c) == 0 ? 1 : 0)
    }

    /// The value of an aggregate metric.
    public subscript(metric: ValidationMetric) -> Double { summary[metric.rawValue] ?? 0 }

    /// Every metric by name: `pixel_accuracy`, `<metric>_<class>` and `mean_<metric>` for iou, dice, precision, recall.
    public var summary: [String: Double] {
        var out = ["pixel_accuracy": pixelAccuracy]
        for (name, values) in [("iou", iou), ("dice", dice), ("precision", precision), ("recall", recall)] {
            for (c, v) in values.enumerated() { out["\(name)_\(c)"] = v }
            out["mean_\(name)"] = values.reduce(0, +) / Double(max(1, values.count))
        }
        return out
    }
}

/// The aggregate validation metrics a run can keep its best checkpoint by (`--best-metric`, `best_metric`), named as
/// `ConfusionMatrix.summary`, `ClassificationScores.summary` and `metrics.jsonl` name them.
public enum ValidationMetric: String, Codable, CaseIterable, Sendable {
    case meanDice = "mean_dice"
    case meanIoU = "mean_iou"
    case pixelAccuracy = "pixel_accuracy"
    case meanPrecision = "mean_precision"
    case meanRecall = "mean_recall"
    case accuracy
    case top5Accuracy = "top5_accuracy"
    case meanF1 = "mean_f1"

    /// Whether a segmentation run reports it (per pixel), and whether a classification run does (per image).
    public var scoresSegmentation: Bool { ![.accuracy, .top5Accuracy, .meanF1].contains(self) }
    public var scoresClassification: Bool { ![.meanDice, .meanIoU, .pixelAccuracy].contains(self) }
}
