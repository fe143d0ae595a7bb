import Foundation

/// Splits work over the machine's cores (or `TESSERA_THREADS`).
public enum Parallel {
    /// Worker count: `TESSERA_THREADS` if set, else the active processor count shared among the processes an MPI
    /// launcher started on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`, `PMIX_LOCAL_SIZE`), as each rank of a
    /// data-parallel job works alongside the others.
    public static let threadCount: Int = {
        let environment = ProcessInfo.processInfo.environment
        if let s = environment[EngineEnvironment.threads.rawValue], let n = Int(s), (1...4096).contains(n) {
            return n
        }
        let local =
            ["OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE"].lazy.compactMap { environment[$0] }
            .compactMap { Int($0) }.first { (1...4096).contains($0) } ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / local)
    }()

    /// Calls `body(i)` for i in 0..<iterations, concurrently when there is more than one.
    @inline(__always)
    public static func forEach(_ iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 0 { return }
        if iterations == 1 || threadCount == 1 {
            for i in 0..<iterations { body(i) }
            return
        }
        // `body` runs on several threads at once; callers hand it disjoint work (their own indices and buffers), which
        // the compiler cannot see through the pointers they capture.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: iterations) { shared.value($0) }
        }
    }

    /// Splits 0..<count into at most `threadCount` contiguous chunks of at least `grain` items.
    @inline(__always)
    public static func forRanges(_ count: Int, grain: Int = 32_768, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = max(1, min(threadCount, count / max(grain, 1)))
        if chunks == 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        forEach(chunks) { c in
            let lo = c * per, hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}

extension Parallel {
    /// Deals tasks 0..<tasks round-robin to up to `threadCount` workers; each worker gets its index and
    /// its task list, so it can allocate scratch once.
    public static func workers(_ tasks: Int, _ body: (_ worker: Int, _ tasks: StrideTo<Int>) -> Void) {
        let n = max(1, min(threadCount, tasks))
        forEach(n) { w in body(w, stride(from: w, to: tasks, by: n)) }
    }
}

extension Parallel {
    /// Like `workers`, but each worker accumulates into its own zeroed `count`-float partial, and the partials
    /// are summed into `result` at the end (reductions whose tasks all add into the same output).
    public static func accumulating(
        _ tasks: Int, count: Int, into result: UnsafeMutablePointer<Float>,
        _ body: (_ tasks: StrideTo<Int>, _ partial: UnsafeMutablePointer<Float>) -> Void
    ) {
        let workerCount = max(1, min(threadCount, tasks))
        let partials = (0..<workerCount).map { _ in TensorStorage(count: count) }
        workers(tasks) { w, mine in body(mine, partials[w].base) }
        // Summed over all cores in chunks (Winograd's weight-gradient partials are up to 16M floats per worker).
        forRanges(count, grain: 1 << 16) { range in
            (result + range.lowerBound).initialize(repeating: 0, count: range.count)
            for part in partials {
                let s = part.base
                for i in range { result[i] += s[i] }
            }
        }
    }
}

extension Parallel {
    /// Splits the pixels of [outer, channels, inner] data over the workers in runs that stay inside one outer
    /// slice: `body(o, i, count)` covers pixels i..<i+count of slice o (per-pixel loops over channels).
    static func forPixelRuns(
        outer: Int, inner: Int, grain: Int = 4096,
        _ body: (_ outer: Int, _ first: Int, _ count: Int) -> Void
    ) {
        forRanges(outer * inner, grain: grain) { r in
            var idx = r.lowerBound
            while idx < r.upperBound {
                let o = idx / inner, i = idx % inner
                let count = min(r.upperBound - idx, inner - i)
                body(o, i, count)
                idx += count
            }
        }
    }
}

/// A value handed to other threads whose safety the compiler cannot check: closures over disjoint slices of
/// buffers (`Parallel.forEach`), C structs of function pointers to pure kernels. Each use says why it is safe.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
