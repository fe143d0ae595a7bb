import Foundation

/// The object scores written again from their definitions, independently of `SegmentationAgreement` (whose
/// results tests must not check against themselves): whole-image sweeps and dense tables instead of queues and
/// hashed pairs.
///
/// ISBI 2012 (Arganda-Carreras et al. 2015): over the pixels of true objects (truth 0 ignored), after the
/// prediction's 0 pixels are filled by repeated 3x3 maximum filtering (each sweep fills the 0 pixels next to an id
/// with the largest id around them) until none is left there; p_ij = the fraction of those pixels in true object
/// i and predicted object j. Rand error = 1 - sum p_ij^2 / ((sum_i t_i^2 + sum_j s_j^2) / 2); VI split =
/// H(S | T) = H(T, S) - H(T), merge = H(T | S). Objects (DSB 2018, Cellpose): IoU of each true and predicted object
/// from their pixel sets; a pair above the threshold is a match; F1 at 0.5, and AP = the mean over 0.5, 0.55,
/// ..., 0.95 of TP / (TP + FP + FN).
public struct ReferenceScores {
    public var randError = 0.0, viSplit = 0.0, viMerge = 0.0
    public var objectF1At50 = 0.0, averagePrecision = 0.0

    public var metrics: [String: Double] {
        [
            "rand_error": randError, "vi_split": viSplit, "vi_merge": viMerge, "object_f1_50": objectF1At50,
            "average_precision": averagePrecision
        ]
    }

    public init(truth: [UInt32], prediction: [UInt32], width w: Int, height h: Int) {
        // Thinning by sweeps over the whole image.
        var pred = prediction
        if !pred.contains(where: { $0 != 0 }) { pred = pred.map { _ in 1 } }
        while (0..<(w * h)).contains(where: { truth[$0] != 0 && pred[$0] == 0 }) {
            let before = pred
            for y in 0..<h {
                for x in 0..<w where before[y * w + x] == 0 {
                    var m: UInt32 = 0
                    for yy in max(0, y - 1)...min(h - 1, y + 1) {
                        for xx in max(0, x - 1)...min(w - 1, x + 1) { m = max(m, before[yy * w + xx]) }
                    }
                    pred[y * w + x] = m
                }
            }
            if pred == before { break }
        }
        // Dense contingency table over renumbered ids.
        let truthIDs = Array(Set(truth.filter { $0 != 0 })).sorted()
        let predIDs = Array(Set((0..<(w * h)).filter { truth[$0] != 0 }.map { pred[$0] })).sorted()
        let ti = Dictionary(uniqueKeysWithValues: truthIDs.enumerated().map { ($1, $0) })
        let pj = Dictionary(uniqueKeysWithValues: predIDs.enumerated().map { ($1, $0) })
        var table = [[Double]](repeating: [Double](repeating: 0, count: predIDs.count), count: truthIDs.count)
        var n = 0.0
        for p in 0..<(w * h) where truth[p] != 0 {
            table[ti[truth[p]]!][pj[pred[p]]!] += 1
            n += 1
        }
        if n > 0 {
            let p = table.map { $0.map { $0 / n } }
            let t = p.map { $0.reduce(0, +) }
            let s = (0..<predIDs.count).map { j in p.reduce(0) { $0 + $1[j] } }
            let sumP2 = p.flatMap { $0 }.reduce(0) { $0 + $1 * $1 }
            randError = 1 - sumP2 / ((t.reduce(0) { $0 + $1 * $1 } + s.reduce(0) { $0 + $1 * $1 }) / 2)
            func h(_ v: [Double]) -> Double { v.filter { $0 > 0 }.reduce(0) { $0 - $1 * log($1) } }
            let joint = h(p.flatMap { $0 })
            viSplit = max(0, joint - h(t))
            viMerge = max(0, joint - h(s))
        }
        // Object matching from pixel sets (the prediction as given, not thinned).
        func sets(_ ids: [UInt32]) -> [UInt32: Set<Int>] {
            var out: [UInt32: Set<Int>] = [:]
            for (p, id) in ids.enumerated() where id != 0 { out[id, default: []].insert(p) }
            return out
        }
        let trueSets = sets(truth), predSets = sets(prediction)
        var ious: [Double] = []
        for a in trueSets.values {
            for b in predSets.values where !a.isDisjoint(with: b) {
                ious.append(Double(a.intersection(b).count) / Double(a.union(b).count))
            }
        }
        let all = Double(trueSets.count + predSets.count)
        func tp(_ threshold: Double) -> Double { Double(ious.filter { $0 > threshold }.count) }
        objectF1At50 = all > 0 ? 2 * tp(0.5) / all : 0
        let thresholds = (0..<10).map { 0.5 + 0.05 * Double($0) }
        averagePrecision = thresholds.map { tp($0) / max(1, all - tp($0)) }.reduce(0, +) / 10
    }

    /// The mean of each score over `images`.
    public static func mean(_ images: [ReferenceScores]) -> [String: Double] {
        var out: [String: Double] = [:]
        for m in images { for (k, v) in m.metrics { out[k, default: 0] += v / Double(images.count) } }
        return out
    }
}
