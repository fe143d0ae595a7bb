import Foundation

extension Tensor {
    /// A view with a new shape (copying only when this tensor is not contiguous); one dim may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let i = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            target[i] = count / known
        }
        precondition(target.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        let base = contiguous()
        let view = Tensor(
            shape: target, strides: Tensor.contiguousStrides(target), offset: base.offset,
            storage: base.storage)
        let inShape = shape
        return Tensor.record(view, [base]) { g in [g.reshaped(inShape)] }
    }

    /// Flattens axes from `start` on into one.
    public func flattened(from start: Int = 1) -> Tensor {
        let s = axis(start)
        return reshaped(Array(shape[..<s]) + [shape[s...].reduce(1, *)])
    }

    /// A view with axes reordered: output axis i is input axis `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "bad permutation \(order) for rank \(rank)")
        let view = Tensor(
            shape: order.map { shape[$0] }, strides: order.map { strides[$0] }, offset: offset,
            storage: storage)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return Tensor.record(view, [self]) { g in [g.permuted(inverse)] }
    }

    /// Swaps two axes (a view).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(axis(a), axis(b))
        return permuted(order)
    }

    /// Inserts a size-1 axis at `at`.
    public func unsqueezed(_ at: Int) -> Tensor {
        let a = at < 0 ? at + rank + 1 : at
        var s = shape
        s.insert(1, at: a)
        return reshaped(s)
    }

    /// Removes a size-1 axis.
    public func squeezed(_ at: Int) -> Tensor {
        let a = axis(at)
        precondition(shape[a] == 1, "squeeze of axis \(a) with size \(shape[a])")
        var s = shape
        s.remove(at: a)
        return reshaped(s)
    }

    /// A view of `range` along `axis`.
    public func sliced(axis ax: Int, _ range: Range<Int>) -> Tensor {
        let a = axis(ax)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice \(range) out of 0..<\(shape[a])")
        var s = shape
        s[a] = range.count
        let view = Tensor(shape: s, strides: strides, offset: offset + range.lowerBound * strides[a], storage: storage)
        let inShape = shape
        return Tensor.record(view, [self]) { g in
            var padding = [(Int, Int)](repeating: (0, 0), count: inShape.count)
            padding[a] = (range.lowerBound, inShape[a] - range.upperBound)
            return [g.padded(padding)]
        }
    }

    /// A view of the centre of the trailing `size.count` axes (itself when they already have that size), as the
    /// U-Net paper crops skips and targets to the output of valid convolutions.
    public func centreCropped(to size: [Int]) -> Tensor {
        let first = rank - size.count
        precondition(first >= 0, "centre crop of \(size) from a rank-\(rank) tensor")
        var y = self
        for (i, n) in size.enumerated() where shape[first + i] != n {
            precondition(n <= shape[first + i], "centre crop to \(size) from \(shape)")
            let start = (shape[first + i] - n) / 2
            y = y.sliced(axis: first + i, start..<(start + n))
        }
        return y
    }

    /// Joins tensors along `axis`; all other dims must agree.
    public static func concat(_ tensors: [Tensor], axis ax: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat of no tensors")
        let first = tensors[0]
        let a = first.axis(ax)
        var outShape = first.shape
        outShape[a] = tensors.map { $0.shape[a] }.reduce(0, +)
        for t in tensors {
            var s = t.shape
            s[a] = outShape[a]
            precondition(s == outShape, "concat: shape \(t.shape) does not match \(first.shape) off axis \(a)")
        }
        let out = Tensor(zeros: outShape, zeroed: false)
        let outer = outShape[..<a].reduce(1, *)
        let inner = outShape[(a + 1)...].reduce(1, *)
        let outRow = outShape[a] * inner
        var start = 0
        var starts: [Int] = []
        for t in tensors {
            starts.append(start)
            let tc = t.contiguous()
            let len = t.shape[a] * inner
            let src = tc.pointer, dst = out.pointer + start * inner
            Parallel.forRanges(outer, grain: Swift.max(1, 65_536 / Swift.max(len, 1))) { r in
                for o in r { (dst + o * outRow).update(from: src + o * len, count: len) }
            }
            start += t.shape[a]
        }
        return record(out, tensors) { g in
            zip(tensors, starts).map { t, s in
                t.requiresGrad ? g.sliced(axis: a, s..<(s + t.shape[a])).contiguous() : nil
            }
        }
    }

    /// Splits along `axis` into pieces of the given sizes.
    public func split(_ sizes: [Int], axis ax: Int) -> [Tensor] {
        let a = axis(ax)
        precondition(sizes.reduce(0, +) == shape[a], "split sizes \(sizes) do not sum to \(shape[a])")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return sliced(axis: a, start..<(start + n))
        }
    }

    /// Pads each axis by (before, after) with `value` (negative padding crops).
    public func padded(_ padding: [(Int, Int)], value: Float = 0) -> Tensor {
        precondition(padding.count == rank, "padding needs one pair per axis")
        let outShape = zip(shape, padding).map { $0 + $1.0 + $1.1 }
        let out = Tensor.full(outShape, value)
        // Region of the input that lands in the output.
        var src: Tensor = self
        var dstOffset = 0
        for d in 0..<rank {
            let (before, after) = padding[d]
            let lo = Swift.max(0, -before), hi = shape[d] - Swift.max(0, -after)
            if lo != 0 || hi != shape[d] {
                src = Tensor(
                    shape: src.shape.enumerated().map { $0.offset == d ? hi - lo : $0.element },
                    strides: src.strides, offset: src.offset + lo * src.strides[d], storage: src.storage)
            }
            dstOffset += Swift.max(0, before) * out.strides[d]
        }
        let dstView = Tensor(shape: src.shape, strides: out.strides, offset: dstOffset, storage: out.storage)
        StridedAssign.assign(src, into: dstView)
        let inShape = shape
        return Tensor.record(out, [self]) { g in
            [g.padded(padding.map { (-$0.0, -$0.1) }).contiguous().reshaped(inShape)]
        }
    }

    /// Pads the trailing spatial axes by reflection or replication, as torch.nn.functional.pad.
    public func padded(spatial padding: [(Int, Int)], mode: PaddingMode) -> Tensor {
        if mode == .zeros {
            return padded(Array(repeating: (0, 0), count: rank - padding.count) + padding)
        }
        var x = self
        for (i, (before, after)) in padding.enumerated() {
            let a = rank - padding.count + i
            let n = x.shape[a]
            if mode == .reflect {
                precondition(before < n && after < n, "reflect padding must be smaller than the input size")
            }
            var pieces: [Tensor] = []
            for j in stride(from: before, to: 0, by: -1) {
                let idx = mode == .reflect ? j : 0
                pieces.append(x.sliced(axis: a, idx..<(idx + 1)))
            }
            pieces.append(x)
            for j in 1...Swift.max(after, 1) where after > 0 {
                let idx = mode == .reflect ? n - 1 - j : n - 1
                pieces.append(x.sliced(axis: a, idx..<(idx + 1)))
            }
            x = pieces.count == 1 ? x : Tensor.concat(pieces, axis: a)
        }
        return x
    }
}

/// How a convolution or pad fills samples outside the input.
public enum PaddingMode: String, Sendable, CaseIterable {
    case zeros, reflect, replicate
}

/// Strided element-wise assignment between views of equal shape.
enum StridedAssign {
    static func assign(_ src: Tensor, into dst: Tensor) {
        let n = src.count
        if n == 0 { return }
        let shape = src.shape, rank = shape.count
        if rank == 0 { dst.storage.base[dst.offset] = src.storage.base[src.offset]; return }
        let inner = shape[rank - 1]
        let si = src.strides[rank - 1], di = dst.strides[rank - 1]
        let rows = n / inner
        let sb = src.storage.base + src.offset, db = dst.storage.base + dst.offset
        for row in 0..<rows {
            var rem = row, so = 0, dof = 0
            for d in stride(from: rank - 2, through: 0, by: -1) {
                let idx = rem % shape[d]
                rem /= shape[d]
                so += idx * src.strides[d]
                dof += idx * dst.strides[d]
            }
            if si == 1 && di == 1 {
                (db + dof).update(from: sb + so, count: inner)
            } else {
                for i in 0..<inner { db[dof + i * di] = sb[so + i * si] }
            }
        }
    }
}
