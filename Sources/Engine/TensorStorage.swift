import CKernels
import Foundation

/// A 64-byte aligned, reference-counted buffer of Float32 values backing one or more tensors.
public final class TensorStorage {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int

    private let bucket: Int

    /// Allocates `count` floats; zero-filled when `zeroed`.
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative storage size")
        bucket = StoragePool.bucket(for: count)
        base = StoragePool.shared.take(bucket: bucket)
        self.count = count
        if zeroed { base.initialize(repeating: 0, count: count) }
    }

    deinit { StoragePool.shared.give(base, bucket: bucket) }
}

/// Keeps freed buffers of large tensors by size class for reuse, as PyTorch's caching allocator does: a
/// training step frees and re-allocates the same activation sizes, and fresh pages cost a page fault each.
/// Holds at most `limitBytes` (TESSERA_POOL_MB, default a quarter of physical memory up to 4 GB); anything
/// beyond is returned to the system.
// @unchecked: the free lists and byte counts are read and written only under its lock.
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()
    /// Buffers below this many floats are not pooled.
    static let minimumPooled = 1 << 14
    let limitBytes: Int = {
        if let s = ProcessInfo.processInfo.environment[EngineEnvironment.poolMegabytes.rawValue], let mb = Int(s),
            (0...(1 << 24)).contains(mb)
        {
            return mb << 20
        }
        return Int(min(UInt64(4) << 30, ProcessInfo.processInfo.physicalMemory / 4))
    }()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var heldBytes = 0
    private let lock = NSLock()

    /// Size class of a request: exact below the pooling threshold, else rounded up to 1/8 of a power of two.
    static func bucket(for count: Int) -> Int {
        let n = max(count, 1)
        if n < minimumPooled { return n }
        let top = Int.bitWidth - (n - 1).leadingZeroBitCount
        let step = 1 << max(0, top - 4)
        return (n + step - 1) / step * step
    }

    func take(bucket: Int) -> UnsafeMutablePointer<Float> {
        if bucket >= Self.minimumPooled {
            lock.lock()
            if let p = free[bucket]?.popLast() {
                heldBytes -= bucket * 4
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        var raw: UnsafeMutableRawPointer?
        let bytes = bucket * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        return raw.bindMemory(to: Float.self, capacity: bucket)
    }

    func give(_ p: UnsafeMutablePointer<Float>, bucket: Int) {
        if bucket >= Self.minimumPooled {
            lock.lock()
            if heldBytes + bucket * 4 <= limitBytes {
                free[bucket, default: []].append(p)
                heldBytes += bucket * 4
                lock.unlock()
                return
            }
            lock.unlock()
        }
        Foundation.free(p)
    }
}

/// A scratch buffer owned by one thread of one operation.
final class ScratchBuffer {
    let pointer: UnsafeMutablePointer<Float>
    private let storage: TensorStorage?
    private let guardedBytes: Int

    init(count: Int) {
        if AllocatorTuning.guardsScratchOverruns {
            guardedBytes = count * MemoryLayout<Float>.stride
            guard let raw = tk_guarded_alloc(guardedBytes) else { fatalError("guarded allocation failed") }
            pointer = raw.bindMemory(to: Float.self, capacity: count)
            storage = nil
        } else {
            guardedBytes = 0
            let s = TensorStorage(count: count, zeroed: false)
            storage = s
            pointer = s.base
        }
    }

    deinit { if storage == nil { tk_guarded_free(pointer, guardedBytes) } }
}

/// Process-wide allocator settings for long runs that free and re-allocate the same buffer sizes.
public enum AllocatorTuning {
    /// Keeps freed heap memory (up to `trimBytes`) and serves blocks below `mmapBytes` from the heap, so the
    /// per-sample arrays of decoding and augmentation reuse pages instead of faulting fresh ones in each time
    /// (glibc otherwise gives them back to the system after every sample). Call once at start-up.
    public static func retainFreedMemory(mmapBytes: Int32 = 32 << 20, trimBytes: Int32 = 256 << 20) {
        tk_retain_freed_memory(mmapBytes, trimBytes)
    }

    /// Gives the freed memory `retainFreedMemory` keeps back to the system: a stream that works chunk by chunk
    /// calls it between chunks, so its peak memory is its working set, not the working set plus up to the
    /// retained 256 MiB (a 60000x40000 segmentation's peak crept by 50 MB over its first 120 chunks without it; the
    /// call takes about a millisecond).
    public static func releaseFreedMemory() {
        tk_release_freed_memory()
    }

    /// When set (a test-time check, slow), kernel scratch buffers end at an inaccessible page, so a kernel that
    /// reads or writes past the memory it was given faults at once instead of touching a neighbour's bytes.
    /// Starts on when the environment sets TESSERA_GUARD_SCRATCH=1.
    // Unsynchronised on purpose: set only by a test before the kernels it checks run (their workers read it after
    // the dispatch that starts them, which orders the write before the reads), otherwise constant.
    nonisolated(unsafe) public static var guardsScratchOverruns =
        ProcessInfo.processInfo.environment[EngineEnvironment.guardScratch.rawValue] == "1"
}
