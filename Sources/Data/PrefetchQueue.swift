import Foundation

/// A bounded first-in first-out hand-over between one producer thread and one consumer.
// @unchecked: every stored property is read and written only under `condition`'s lock.
public final class PrefetchQueue<Element>: @unchecked Sendable {
    private var items: [Element] = []
    private var finished = false
    private var cancelled = false
    private let capacity: Int
    private let condition = NSCondition()

    /// Whether the consumer stopped taking (the producer should stop making).
    public var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    public init(capacity: Int) { self.capacity = capacity }

    public func put(_ item: Element) {
        condition.lock()
        while items.count >= capacity && !cancelled { condition.wait() }
        if cancelled { condition.unlock(); return }
        items.append(item)
        condition.broadcast()
        condition.unlock()
    }

    public func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next element, waiting for it; nil once the producer finished and everything was taken.
    public func take() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    /// Stops the producer: a waiting `put` returns and further batches are not made.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Cancels the producer when the consumer's iterator goes away before the epoch ends.
// @unchecked: the one stored property is immutable and itself Sendable.
final class CancelOnRelease<Element>: @unchecked Sendable {
    let queue: PrefetchQueue<Element>
    init(_ queue: PrefetchQueue<Element>) { self.queue = queue }
    deinit { queue.cancel() }
}

extension PrefetchQueue {
    /// `produce(0)`, `produce(1)`, ... `produce(count - 1)` made on a background thread at most `capacity` ahead
    /// of the consumer, in order; the producer stops when the iterator is released early.
    public static func producing(
        count: Int, capacity: Int = 1,
        _ produce: @escaping @Sendable (Int) -> Element
    ) -> AnyIterator<Element> {
        let queue = PrefetchQueue(capacity: max(1, capacity))
        Thread {
            for i in 0..<count where !queue.isCancelled { queue.put(produce(i)) }
            queue.finish()
        }.start()
        let handle = CancelOnRelease(queue)
        return AnyIterator { handle.queue.take() }
    }
}
