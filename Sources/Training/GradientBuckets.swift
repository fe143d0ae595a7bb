import Foundation
import TesseraDistributed
import TesseraEngine

/// Gradients averaged in buckets while the backward pass still runs, as DistributedDataParallel does: the
/// parameters are grouped, last layer first (the order backward completes them), into buckets of about
/// `bucketBytes`; when every gradient of a bucket is complete its all-reduce starts (non-blocking), and each
/// later completion lets the started ones progress. `finish()` waits for the rest and writes the means back.
final class GradientBuckets {
    let group: ProcessGroup
    let parameters: [Tensor]
    /// Parameter indices per bucket, in the order the buckets start.
    let buckets: [[Int]]
    let bucketOf: [ObjectIdentifier: (bucket: Int, offset: Int)]
    let memory: [UnsafeMutablePointer<Float>]
    var missing: [Int]
    var started: [ProcessGroup.PendingSum?]
    /// Buckets start strictly in order on every rank (collectives must match), so a complete bucket waits for the
    /// ones before it.
    var nextToStart = 0
    /// Seconds spent inside MPI calls this step (starting, progressing, waiting).
    private(set) var communicationSeconds = 0.0

    /// PyTorch's default bucket: 25 MiB.
    static let bucketBytes = 25 << 20

    init(_ parameters: [Tensor], group: ProcessGroup, bucketBytes: Int = GradientBuckets.bucketBytes) {
        self.group = group
        self.parameters = parameters
        var buckets: [[Int]] = [[]]
        var size = 0
        for i in parameters.indices.reversed() {
            if size > 0 && (size + parameters[i].count) * 4 > bucketBytes {
                buckets.append([])
                size = 0
            }
            buckets[buckets.count - 1].append(i)
            size += parameters[i].count
        }
        var bucketOf: [ObjectIdentifier: (Int, Int)] = [:]
        var memory: [UnsafeMutablePointer<Float>] = []
        for (b, members) in buckets.enumerated() {
            var offset = 0
            for i in members {
                bucketOf[ObjectIdentifier(parameters[i])] = (b, offset)
                offset += parameters[i].count
            }
            memory.append(UnsafeMutablePointer<Float>.allocate(capacity: max(1, offset)))
        }
        self.buckets = buckets
        self.bucketOf = bucketOf
        self.memory = memory
        missing = buckets.map(\.count)
        started = [ProcessGroup.PendingSum?](repeating: nil, count: buckets.count)
    }

    deinit { memory.forEach { $0.deallocate() } }

    var count: Int { buckets.count }
    /// Bytes each rank sends into the all-reduces per step (the gradients, once).
    var bytes: Int { parameters.reduce(0) { $0 + $1.count } * 4 }

    /// Before a backward pass.
    func reset() {
        missing = buckets.map(\.count)
        started = [ProcessGroup.PendingSum?](repeating: nil, count: buckets.count)
        nextToStart = 0
        communicationSeconds = 0
    }

    private func timed<T>(_ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    private func length(_ b: Int) -> Int { buckets[b].reduce(0) { $0 + parameters[$1].count } }

    /// A parameter's gradient is complete (`Tensor.backward(onLeafGradient:)`).
    func ready(_ parameter: Tensor) throws {
        guard let (b, offset) = bucketOf[ObjectIdentifier(parameter)] else { return }
        if let g = parameter.grad { (memory[b] + offset).update(from: g.pointer, count: parameter.count) }
        missing[b] -= 1
        try startReady()
        try timed { for pending in started { _ = try pending?.progress() } }
    }

    private func startReady() throws {
        while nextToStart < buckets.count && missing[nextToStart] == 0 {
            let b = nextToStart
            started[b] = try timed { try group.startSum(memory[b], count: length(b)) }
            nextToStart += 1
        }
    }

    /// Starts the buckets whose parameters got no gradient (zeros), waits for every sum, and replaces each
    /// gradient by its mean over the ranks.
    func finish() throws {
        for b in buckets.indices where missing[b] > 0 {
            for i in buckets[b] where parameters[i].grad == nil {
                let (_, offset) = bucketOf[ObjectIdentifier(parameters[i])] ?? (b, 0)
                (memory[b] + offset).update(repeating: 0, count: parameters[i].count)
            }
            missing[b] = 0
        }
        try startReady()
        try timed { for pending in started { try pending?.wait() } }
        let scale = 1 / Float(group.size)
        for (b, members) in buckets.enumerated() {
            var offset = 0
            for i in members {
                let p = parameters[i]
                if p.grad == nil { p.grad = Tensor(zeros: p.shape) }
                if let g = p.grad {
                    for k in 0..<p.count { g.pointer[k] = memory[b][offset + k] * scale }
                }
                offset += p.count
            }
        }
    }
}
