import Foundation
import TesseraDistributed
import TesseraEngine
import TesseraNN

/// Data-parallel training over a `ProcessGroup`, as PyTorch's DistributedDataParallel: every rank holds the same
/// weights, computes the gradients of its share of each global batch, and the ranks average them before the
/// optimizer step (`GradientBuckets`, during the backward pass), so every rank takes the same step. Decisions that change control flow (skip a step, stop
/// early) are taken on values every rank has reduced, so no rank waits in a collective the others skipped.
struct DataParallel {
    let group: ProcessGroup
    var isLead: Bool { group.rank == 0 }
    var isParallel: Bool { group.size > 1 }

    /// Rank 0's parameter values on every rank (they agree already when built from the same seed or file; a
    /// broadcast makes sure, as DDP does at construction).
    func broadcast(_ parameters: [Tensor]) throws {
        guard isParallel else { return }
        var flat = [Float](repeating: 0, count: parameters.reduce(0) { $0 + $1.count })
        var at = 0
        for p in parameters {
            for i in 0..<p.count { flat[at + i] = p.pointer[i] }
            at += p.count
        }
        try flat.withUnsafeMutableBufferPointer { try group.broadcast($0) }
        at = 0
        for p in parameters {
            for i in 0..<p.count { p.pointer[i] = flat[at + i] }
            at += p.count
        }
    }

    /// Makes every batch-norm layer of `model` normalise with the statistics of all ranks' samples.
    func synchronizeBatchNorm(in model: Module) {
        let group = self.group
        let sum = CrossProcessSum { buffer in
            do { try group.sum(buffer) } catch {
                // A collective that fails mid-forward cannot be undone on one rank: the job ends, saying why.
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                group.abort(code: 1)
            }
        }
        for (_, module) in model.namedModules() {
            if let norm = module as? BatchNorm { norm.synchronized = sum }
        }
    }

    /// The mean of `value` over the ranks.
    func mean(_ value: Double) throws -> Double {
        guard isParallel else { return value }
        return try group.sum([value])[0] / Double(group.size)
    }

    /// Whether `flag` holds on every rank.
    func all(_ flag: Bool) throws -> Bool {
        guard isParallel else { return flag }
        return try group.sum([flag ? 1 : 0])[0] == Double(group.size)
    }

    /// Every rank's values added up, element by element.
    func sum(_ values: [Double]) throws -> [Double] {
        guard isParallel else { return values }
        return try group.sum(values)
    }

    /// The confusion matrix of every rank's share added up.
    func total(_ matrix: ConfusionMatrix) throws -> ConfusionMatrix {
        guard isParallel else { return matrix }
        let summed = try group.sum(matrix.counts.map(Double.init)).map { Int($0.rounded()) }
        return ConfusionMatrix(classes: matrix.classes, counts: summed) ?? matrix
    }
}
