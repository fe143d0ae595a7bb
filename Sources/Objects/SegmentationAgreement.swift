import Foundation

/// How well predicted objects agree with true ones: the ISBI 2012 challenge's foreground-restricted Rand error and
/// variation of information, and the object matching scores Cellpose and the Data Science Bowl 2018 report.
public struct SegmentationAgreement: Equatable, Sendable {
    /// 1 - the F-score of the foreground-restricted Rand index (0: the same partition).
    public var randError: Double?
    /// H(prediction | truth) in nats: how much the prediction splits true objects.
    public var viSplit: Double?
    /// H(truth | prediction) in nats: how much the prediction merges true objects.
    public var viMerge: Double?
    /// Objects matched at IoU > 0.5 (`ObjectMatching`).
    public var objectPrecision50: Double?, objectRecall50: Double?, objectF1At50: Double?
    /// TP / (TP + FP + FN) averaged over IoU thresholds 0.5, 0.55, ..., 0.95.
    public var averagePrecision: Double?

    /// The report's keys and values (absent ones left out).
    public var metrics: [String: Double] {
        let all: [(String, Double?)] = [
            ("rand_error", randError), ("vi_split", viSplit), ("vi_merge", viMerge),
            ("object_precision_50", objectPrecision50), ("object_recall_50", objectRecall50),
            ("object_f1_50", objectF1At50), ("average_precision", averagePrecision)
        ]
        return Dictionary(uniqueKeysWithValues: all.compactMap { k, v in v.map { (k, $0) } })
    }

    public static let thresholds = (0..<10).map { 0.5 + 0.05 * Double($0) }

    /// Scores `prediction` against `truth` (object ids per pixel, 0 none, same size). `truthClasses` /
    /// `predictionClasses` (class per id - 1): when both are given, objects only match objects of their class.
    public init(
        truth: [UInt32], prediction: [UInt32], width: Int, height: Int, truthClasses: [Int]? = nil,
        predictionClasses: [Int]? = nil
    ) {
        // Arrays of another size than the image score nothing (rather than read past their ends).
        guard truth.count == width * height, prediction.count == truth.count else { return }
        let rand = RandScores(truth: truth, prediction: prediction, width: width, height: height)
        randError = rand?.error
        viSplit = rand?.split
        viMerge = rand?.merge
        let matching = ObjectMatching(
            truth: truth, prediction: prediction, truthClasses: truthClasses, predictionClasses: predictionClasses)
        if let m = matching {
            let tp = Double(m.truePositives(above: 0.5))
            objectPrecision50 = m.predicted > 0 ? tp / Double(m.predicted) : nil
            objectRecall50 = m.truths > 0 ? tp / Double(m.truths) : nil
            objectF1At50 = 2 * tp / Double(m.predicted + m.truths)
            averagePrecision =
                Self.thresholds.map { t in
                    let tp = Double(m.truePositives(above: t))
                    return tp / (Double(m.predicted + m.truths) - tp)
                }.reduce(0, +) / Double(Self.thresholds.count)
        }
    }

    /// The mean of each score over `images` (those that have it).
    public static func mean(_ images: [[String: Double]]) -> [String: Double] {
        var sums: [String: (Double, Int)] = [:]
        for m in images {
            for (k, v) in m {
                let (sum, n) = sums[k] ?? (0, 0)
                sums[k] = (sum + v, n + 1)
            }
        }
        return sums.mapValues { $0.0 / Double($0.1) }
    }
}

/// The ISBI 2012 scores (Arganda-Carreras et al. 2015, the challenge's evaluation scripts): over the pixels of
/// true objects only (truth 0 is ignored), after the prediction's own boundary (its 0 pixels) is thinned away
/// by growing its objects (the largest neighbouring id, one 3x3 step at a time) until no 0 is left among those
/// pixels. With p_ij the fraction of pixels in true object i and predicted object j, t_i and s_j its sums:
/// Rand error = 1 - sum p_ij^2 / (0.5 sum t_i^2 + 0.5 sum s_j^2); VI split = H(S|T), merge = H(T|S).
struct RandScores {
    var error: Double, split: Double, merge: Double

    init?(truth: [UInt32], prediction: [UInt32], width w: Int, height h: Int) {
        let inside = truth.map { $0 != 0 }
        guard inside.contains(true) else { return nil }
        let pred = Self.thinned(prediction, inside: inside, width: w, height: h)
        var pairs: [UInt64: Int] = [:], t: [UInt32: Int] = [:], s: [UInt32: Int] = [:]
        var n = 0
        for i in truth.indices where inside[i] {
            pairs[UInt64(truth[i]) << 32 | UInt64(pred[i]), default: 0] += 1
            t[truth[i], default: 0] += 1
            s[pred[i], default: 0] += 1
            n += 1
        }
        let total = Double(n)
        func squares(_ counts: [Int]) -> Double {
            counts.reduce(0) { $0 + (Double($1) / total) * (Double($1) / total) }
        }
        func entropy(_ counts: [Int]) -> Double {
            counts.reduce(0) {
                let p = Double($1) / total; return $0 - p * Foundation.log(p)
            }
        }
        // Sums in the order of the ids, not of the dictionaries' hashing (random per process), so the same
        // images give the same scores to the last bit from run to run.
        func ordered<K: Comparable>(_ d: [K: Int]) -> [Int] { d.keys.sorted().map { d[$0] ?? 0 } }
        let sp = squares(ordered(pairs)), st = squares(ordered(t)), ss = squares(ordered(s))
        error = 1 - sp / (0.5 * st + 0.5 * ss)
        let hp = entropy(ordered(pairs))
        split = max(0, hp - entropy(ordered(t)))
        merge = max(0, hp - entropy(ordered(s)))
    }

    /// The prediction with its 0 pixels given the largest non-zero id in their 3x3 neighbourhood, layer by layer
    /// (each layer sees the ids before it), until no 0 is left where `inside`; all one object if it has none.
    static func thinned(_ prediction: [UInt32], inside: [Bool], width w: Int, height h: Int) -> [UInt32] {
        var im = prediction
        var left = 0
        for i in im.indices where im[i] == 0 && inside[i] { left += 1 }
        guard left > 0 else { return im }
        guard im.contains(where: { $0 != 0 }) else { return im.map { _ in 1 } }
        var queued = [Bool](repeating: false, count: w * h)
        var layer: [Int] = []
        func neighbours(_ p: Int, _ body: (Int) -> Void) {
            let x = p % w, y = p / w
            for dy in -1...1 {
                for dx in -1...1 where dx != 0 || dy != 0 {
                    let nx = x + dx, ny = y + dy
                    if nx >= 0, nx < w, ny >= 0, ny < h { body(ny * w + nx) }
                }
            }
        }
        for p in im.indices where im[p] == 0 {
            var next = false
            neighbours(p) { if im[$0] != 0 { next = true } }
            if next {
                layer.append(p)
                queued[p] = true
            }
        }
        while left > 0 && !layer.isEmpty {
            let values = layer.map { p -> UInt32 in
                var m: UInt32 = 0
                neighbours(p) { m = max(m, im[$0]) }
                return m
            }
            for (p, v) in zip(layer, values) {
                im[p] = v
                if inside[p] { left -= 1 }
            }
            var next: [Int] = []
            for p in layer {
                neighbours(p) {
                    if im[$0] == 0 && !queued[$0] {
                        queued[$0] = true
                        next.append($0)
                    }
                }
            }
            layer = next
        }
        return im
    }
}

/// Predicted and true objects paired by intersection over union: above 0.5 a true object can match at most one
/// predicted object and the other way round, so counting pairs above a threshold (>= 0.5) is the matching.
struct ObjectMatching {
    var predicted: Int, truths: Int
    /// IoU of every overlapping (same-class) pair.
    var ious: [Double]

    init?(truth: [UInt32], prediction: [UInt32], truthClasses: [Int]?, predictionClasses: [Int]?) {
        var areaT: [UInt32: Int] = [:], areaP: [UInt32: Int] = [:], overlap: [UInt64: Int] = [:]
        for i in truth.indices {
            let a = truth[i], b = prediction[i]
            if a != 0 { areaT[a, default: 0] += 1 }
            if b != 0 { areaP[b, default: 0] += 1 }
            guard a != 0, b != 0 else { continue }
            if let tc = truthClasses, let pc = predictionClasses {
                let i = Int(a) - 1, j = Int(b) - 1
                guard i < tc.count, j < pc.count, tc[i] == pc[j] else { continue }
            }
            overlap[UInt64(a) << 32 | UInt64(b), default: 0] += 1
        }
        predicted = areaP.count
        truths = areaT.count
        guard predicted + truths > 0 else { return nil }
        ious = overlap.map { key, inter in
            let a = areaT[UInt32(key >> 32)] ?? 0, b = areaP[UInt32(key & 0xFFFF_FFFF)] ?? 0
            return Double(inter) / Double(a + b - inter)
        }
    }

    func truePositives(above t: Double) -> Int { ious.filter { $0 > t }.count }
}
