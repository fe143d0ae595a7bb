import Foundation

/// A 64-byte aligned, reference-counted buffer of Float32 values backing one or more tensors.
public final class TensorStorage {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int

    /// Allocates `count` floats; zero-filled when `zeroed`.
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative storage size")
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        if zeroed { base.initialize(repeating: 0, count: count) }
    }

    deinit { free(base) }
}

/// A scratch buffer owned by one thread of one operation.
final class ScratchBuffer {
    let storage: TensorStorage
    var pointer: UnsafeMutablePointer<Float> { storage.base }
    init(count: Int) { storage = TensorStorage(count: count, zeroed: false) }
}
