import Foundation
import TesseraEngine

/// A batch that may have left out samples that could not be read.
protocol SkippingBatch {
    var skipped: [Error] { get set }
}

/// What the background producer needs from a loader (segmentation or classification): the epoch's order, one
/// prepared sample by index, and the assembly of samples into a batch.
protocol BatchAssembling: AnyObject, Sendable {
    associatedtype Sample
    associatedtype Batch: SkippingBatch
    var batchSize: Int { get }
    var workers: Int { get }
    var prefetch: Int { get }
    var strict: Bool { get }
    var shard: (index: Int, count: Int) { get }
    var failureLog: FailureLog { get }
    var producers: ProducerCount { get }
    var batchesPerEpoch: Int { get }
    func order(epoch: Int) -> [Int]
    func sample(_ index: Int, epoch: Int) throws -> Sample
    func name(of index: Int) -> String
    func assemble(_ samples: [Sample], names: [String]) throws -> Batch
}

/// The sample indices of `epoch` in batch order: a seeded shuffle of 0..<count (the same for every loader kind, so
/// a seed means the same order whatever the task), or in order.
func epochOrder(count: Int, shuffle: Bool, seed: UInt64, epoch: Int) -> [Int] {
    var order = Array(0..<count)
    if shuffle {
        var g = RandomGenerator(seed: seed &+ 0xA5A5 &+ UInt64(epoch) &* 1_000_003)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, g.nextInt(i + 1)) }
    }
    return order
}

/// Batches of `batchSize` in `count` samples: whole ones only when `dropLast`.
func batchCount(_ count: Int, batchSize: Int, dropLast: Bool) -> Int {
    dropLast ? count / batchSize : (count + batchSize - 1) / batchSize
}

/// The batches of `epoch` from batch `start` on, prepared on a background thread (samples decoded by `workers`
/// threads) at most `prefetch` ahead of the consumer. Strict loaders fail a batch with its first unreadable
/// sample; lenient ones leave it out, report it in the batch's `skipped` and the loader's failure log, and skip a
/// batch with nothing readable. Order and content depend only on the loader's seed, never on thread timing.
func produceBatches<L: BatchAssembling>(_ loader: L, epoch: Int, from start: Int) -> AnyIterator<
    Result<L.Batch, Error>
> {
    let order = loader.order(epoch: epoch)
    let count = loader.batchesPerEpoch, batchSize = loader.batchSize, shard = loader.shard
    let queue = PrefetchQueue<Result<L.Batch, Error>>(capacity: loader.prefetch)
    loader.producers.add(1)
    let producer = Thread {
        defer { loader.producers.add(-1) }
        for b in min(start, count)..<count {
            if queue.isCancelled { return }
            let whole = Array(order[(b * batchSize)..<min(order.count, (b + 1) * batchSize)])
            let indices = Array(
                whole[(whole.count * shard.index / shard.count)..<(whole.count * (shard.index + 1) / shard.count)])
            let slots = ResultSlots<L.Sample>(count: indices.count)
            let threads = min(loader.workers, indices.count)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                for j in stride(from: t, to: indices.count, by: threads) {
                    slots.set(j, Result { try loader.sample(indices[j], epoch: epoch) })
                }
            }
            let names = indices.map { loader.name(of: $0) }
            let results = slots.values()
            let batch: Result<L.Batch, Error>
            if loader.strict {
                batch = Result { try loader.assemble(results.map { try $0.get() }, names: names) }
            } else {
                var kept: [L.Sample] = [], keptNames: [String] = [], skipped: [Error] = []
                for (r, name) in zip(results, names) {
                    switch r {
                    case .success(let s): kept.append(s); keptNames.append(name)
                    case .failure(let e): skipped.append(e)
                    }
                }
                loader.failureLog.append(skipped)
                if kept.isEmpty { continue }  // nothing readable in this batch: reported, not delivered
                batch = Result {
                    var b = try loader.assemble(kept, names: keptNames)
                    b.skipped = skipped
                    return b
                }
            }
            queue.put(batch)
        }
        queue.finish()
    }
    producer.start()
    let handle = CancelOnRelease(queue)
    return AnyIterator { handle.queue.take() }
}

/// A count shared by the producer threads and the loader.
// @unchecked: the count is read and written only under `lock`.
final class ProducerCount: @unchecked Sendable {
    private var count = 0
    private let lock = NSLock()
    var value: Int { lock.withLock { count } }
    func add(_ delta: Int) { lock.withLock { count += delta } }
}

/// Results filled in by several threads, one slot each.
// @unchecked: the slots are read and written only under `lock`.
final class ResultSlots<Value>: @unchecked Sendable {
    private var slots: [Result<Value, Error>?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<Value, Error>) {
        lock.lock()
        slots[i] = r
        lock.unlock()
    }
    /// Every slot's result (all must have been set).
    func values() -> [Result<Value, Error>] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}

/// Errors collected from the producer thread, read by the consumer.
// @unchecked: the errors are read and written only under its lock.
final class FailureLog: @unchecked Sendable {
    private var errors: [Error] = []
    private let lock = NSLock()
    func append(_ more: [Error]) {
        guard !more.isEmpty else { return }
        lock.lock()
        errors += more
        lock.unlock()
    }
    var all: [Error] {
        lock.lock()
        defer { lock.unlock() }
        return errors
    }
}
