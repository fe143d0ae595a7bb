import Foundation

/// A strided view of Float32 values of rank 0-6 that records its history for reverse-mode autodiff.
public final class Tensor {
    public let shape: [Int]
    public let strides: [Int]
    public let offset: Int
    public let storage: TensorStorage

    /// Whether gradients flow to this tensor; leaves that require grad accumulate into `grad`.
    public var requiresGrad: Bool
    /// The accumulated gradient after `backward()`, for leaves and for tensors that called `retainGrad()`.
    public var grad: Tensor?
    var gradNode: GradNode?
    var retainsGrad = false

    init(shape: [Int], strides: [Int], offset: Int, storage: TensorStorage, requiresGrad: Bool = false) {
        precondition(shape.count <= 6, "tensors have rank 0-6")
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// A new contiguous tensor of `shape` over fresh storage (zero-filled unless `zeroed` is false).
    public convenience init(zeros shape: [Int], zeroed: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let count = shape.reduce(1, *)
        self.init(
            shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0,
            storage: TensorStorage(count: count, zeroed: zeroed))
    }

    /// A contiguous tensor holding `values` (row-major) with `shape`.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(
            values.count == shape.reduce(1, *),
            "\(values.count) values do not fill shape \(shape)")
        self.init(zeros: shape, zeroed: false)
        values.withUnsafeBufferPointer { src in
            if let b = src.baseAddress { storage.base.update(from: b, count: values.count) }
        }
        self.requiresGrad = requiresGrad
    }

    /// A rank-0 tensor.
    public convenience init(scalar: Float) { self.init([scalar], shape: []) }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(zeros: shape) }
    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }
    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        let t = Tensor(zeros: shape, zeroed: false)
        t.storage.base.initialize(repeating: value, count: t.count)
        return t
    }

    /// Normally distributed values (mean 0, std 1) from `generator`.
    public static func randn(_ shape: [Int], generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(zeros: shape, zeroed: false)
        for i in 0..<t.count { t.storage.base[i] = generator.nextNormal() }
        return t
    }

    /// Uniform values in [low, high) from `generator`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: inout RandomGenerator)
        -> Tensor
    {
        let t = Tensor(zeros: shape, zeroed: false)
        for i in 0..<t.count { t.storage.base[i] = low + (high - low) * generator.nextFloat() }
        return t
    }

    // MARK: - Shape facts

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    public var isContiguous: Bool { strides == Tensor.contiguousStrides(shape) }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc *= Swift.max(shape[i], 1)
        }
        return strides
    }

    /// Normalises a possibly negative axis.
    public func axis(_ a: Int) -> Int {
        let r = a < 0 ? a + rank : a
        precondition(r >= 0 && r < Swift.max(rank, 1), "axis \(a) out of range for rank \(rank)")
        return r
    }

    /// Pointer to the first element; linear indexing is valid only when `isContiguous`.
    public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    /// The values in row-major order.
    public var scalars: [Float] {
        let c = contiguous()
        return Array(UnsafeBufferPointer(start: c.pointer, count: c.count))
    }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a one-element tensor, got shape \(shape)")
        return storage.base[offset]
    }

    /// A contiguous tensor with the same values (self when already contiguous).
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let out = Tensor(zeros: shape, zeroed: false)
        StridedCopy.copy(from: self, to: out.pointer)
        return Tensor.record(out, [self]) { g in [g] }
    }

    /// The same values with no autodiff history.
    public func detached() -> Tensor {
        Tensor(shape: shape, strides: strides, offset: offset, storage: storage)
    }

    /// A deep copy with no autodiff history.
    public func copy() -> Tensor {
        let out = Tensor(zeros: shape, zeroed: false)
        StridedCopy.copy(from: self, to: out.pointer)
        return out
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = scalars.prefix(16).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(values)\(count > 16 ? ", ..." : "")])"
    }
}

/// Copies arbitrary strided views into contiguous memory.
enum StridedCopy {
    static func copy(from t: Tensor, to dst: UnsafeMutablePointer<Float>) {
        let n = t.count
        if n == 0 { return }
        if t.isContiguous {
            dst.update(from: t.pointer, count: n)
            return
        }
        let shape = t.shape, strides = t.strides, rank = shape.count
        let base = t.storage.base + t.offset
        let inner = shape[rank - 1], innerStride = strides[rank - 1]
        var index = [Int](repeating: 0, count: rank)
        var out = 0
        let outer = n / inner
        for _ in 0..<outer {
            var src = 0
            for d in 0..<(rank - 1) { src += index[d] * strides[d] }
            let s = base + src
            if innerStride == 1 {
                (dst + out).update(from: s, count: inner)
            } else {
                for i in 0..<inner { dst[out + i] = s[i * innerStride] }
            }
            out += inner
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }
}
