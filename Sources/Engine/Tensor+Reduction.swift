import Foundation

extension Tensor {
    /// Splits this shape around `axis` into (outer, size, inner) counts.
    func around(_ a: Int) -> (outer: Int, size: Int, inner: Int) {
        (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    /// Sum over one axis of a contiguous tensor (no history).
    private func rawSum(axis a: Int, keepDims: Bool) -> Tensor {
        let x = contiguous()
        let (outer, n, inner) = around(a)
        var s = shape
        if keepDims { s[a] = 1 } else { s.remove(at: a) }
        let out = Tensor(zeros: s)
        let src = x.pointer, dst = out.pointer
        Parallel.forRanges(outer, grain: Swift.max(1, 65_536 / Swift.max(n * inner, 1))) { r in
            for o in r {
                let d = dst + o * inner
                if inner == 1 {
                    var acc: Double = 0
                    let p = src + o * n
                    for j in 0..<n { acc += Double(p[j]) }
                    d[0] = Float(acc)
                } else {
                    for j in 0..<n {
                        let p = src + (o * n + j) * inner
                        for i in 0..<inner { d[i] += p[i] }
                    }
                }
            }
        }
        return out
    }

    /// Sum over `axes` (all when empty).
    public func sum(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let ax = axes.isEmpty ? Array(0..<rank) : axes.map { axis($0) }
        if rank == 0 { return self }
        var out: Tensor = self
        withNoGrad {
            for a in ax.sorted(by: >) { out = out.rawSum(axis: a, keepDims: true) }
            if !keepDims {
                let kept = shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
                out = out.reshaped(kept)
            }
        }
        let inShape = shape
        let keptShape = shape.enumerated().map { ax.contains($0.offset) ? 1 : $0.element }
        return Tensor.record(out, [self]) { g in [g.reshaped(keptShape).expanded(to: inShape).contiguous()] }
    }

    /// Mean over `axes` (all when empty).
    public func mean(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let ax = axes.isEmpty ? Array(0..<rank) : axes.map { axis($0) }
        let n = ax.map { shape[$0] }.reduce(1, *)
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }

    /// Index of the maximum along `axis` (first on ties), as float values.
    public func argmax(axis ax: Int, keepDims: Bool = false) -> Tensor {
        maxWithIndex(axis: axis(ax), keepDims: keepDims).indices
    }

    /// Maximum along `axis`; the gradient flows to the (first) arg-max.
    public func max(axis ax: Int, keepDims: Bool = false) -> Tensor {
        let a = axis(ax)
        let (values, indices) = maxWithIndex(axis: a, keepDims: true)
        let inShape = shape
        let (outer, n, inner) = around(a)
        let out = keepDims ? values : values.squeezedNoGrad(a)
        return Tensor.record(out, [self]) { g in
            let gi = Tensor(zeros: inShape)
            let gc = g.contiguous()
            for o in 0..<outer {
                for i in 0..<inner {
                    let j = Int(indices.pointer[o * inner + i])
                    gi.pointer[(o * n + j) * inner + i] += gc.pointer[o * inner + i]
                }
            }
            return [gi]
        }
    }

    /// Maximum over all elements.
    public func max() -> Tensor { reshaped([count]).max(axis: 0) }

    private func squeezedNoGrad(_ a: Int) -> Tensor {
        var s = shape
        s.remove(at: a)
        return Tensor(shape: s, strides: Tensor.contiguousStrides(s), offset: offset, storage: storage)
    }

    private func maxWithIndex(axis a: Int, keepDims: Bool) -> (values: Tensor, indices: Tensor) {
        let x = contiguous()
        let (outer, n, inner) = around(a)
        var s = shape
        if keepDims { s[a] = 1 } else { s.remove(at: a) }
        let values = Tensor(zeros: s, zeroed: false), indices = Tensor(zeros: s, zeroed: false)
        let src = x.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = -Float.infinity, bestJ = 0
                for j in 0..<n {
                    let v = src[(o * n + j) * inner + i]
                    if v > best || v.isNaN { best = v; bestJ = j; if v.isNaN { break } }
                }
                values.pointer[o * inner + i] = best
                indices.pointer[o * inner + i] = Float(bestJ)
            }
        }
        return (values, indices)
    }
}
