import CKernels
import Foundation

// MARK: - Broadcasting

extension Tensor {
    /// The broadcast shape of two shapes under NumPy/PyTorch rules.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let r = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides that read this tensor as if expanded to `target` (0 along broadcast axes).
    func broadcastStrides(to target: [Int]) -> [Int] {
        let lead = target.count - rank
        var s = [Int](repeating: 0, count: target.count)
        for i in 0..<rank where shape[i] != 1 { s[i + lead] = strides[i] }
        return s
    }

    /// A view of this tensor expanded to `target` (no copy); gradients sum back.
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let view = Tensor(shape: target, strides: broadcastStrides(to: target), offset: offset, storage: storage)
        let inShape = shape
        return Tensor.record(view, [self]) { g in [g.sum(toShape: inShape)] }
    }

    /// Sums a broadcast gradient back down to `target`.
    public func sum(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var axes: [Int] = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[i + lead] != 1 { axes.append(i + lead) }
        var r = axes.isEmpty ? self : sum(axes: axes, keepDims: true)
        if r.rank != target.count { r = r.reshaped(target) }
        return r
    }
}

// MARK: - Elementwise kernels

/// A per-element function as a value type, so generic kernels specialise and inline it (a closure passed
/// across the thread pool would be called per element).
protocol UnaryFunctor {
    func callAsFunction(_ x: Float) -> Float
    /// out[i] = f(x[i]) for i < n; the operators with a C loop per instruction set override it.
    func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int)
}
extension UnaryFunctor {
    @inline(__always) func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { out[i] = self(x[i]) }
    }
}

/// A two-argument per-element function as a value type.
protocol BinaryFunctor {
    func callAsFunction(_ a: Float, _ b: Float) -> Float
    /// The C loop (per instruction set) that computes this function, if there is one.
    var vectorOp: tk_binary_op? { get }
}
extension BinaryFunctor {
    var vectorOp: tk_binary_op? { nil }

    /// out[i] = f(a[i], b[i]) for i < n, with a or b one value by `operands`.
    @inline(__always) func apply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ out: UnsafeMutablePointer<Float>, _ n: Int, operands: tk_operands
    ) {
        if let op = vectorOp { return tk_binary(Int32(op.rawValue), Int32(operands.rawValue), a, b, out, n) }
        switch operands {
        case TK_SCALAR_B: let s = b[0]; for i in 0..<n { out[i] = self(a[i], s) }
        case TK_SCALAR_A: let s = a[0]; for i in 0..<n { out[i] = self(s, b[i]) }
        default: for i in 0..<n { out[i] = self(a[i], b[i]) }
        }
    }
}

struct ClosureUnary: UnaryFunctor {
    let f: (Float) -> Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { f(x) }
}
struct ClosureBinary: BinaryFunctor {
    let f: (Float, Float) -> Float
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { f(a, b) }
}
struct AddOp: BinaryFunctor {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b }
    var vectorOp: tk_binary_op? { TK_ADD }
}
struct SubOp: BinaryFunctor {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b }
    var vectorOp: tk_binary_op? { TK_SUB }
}
struct MulOp: BinaryFunctor {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b }
    var vectorOp: tk_binary_op? { TK_MUL }
}
struct DivOp: BinaryFunctor {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b }
    var vectorOp: tk_binary_op? { TK_DIV }
}
struct AffineOp: UnaryFunctor {
    let scale: Float, shift: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x * scale + shift }
    func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        tk_affine(x, out, n, scale, shift, 0)
    }
}
struct ReluOp: UnaryFunctor {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x > 0 ? x : 0 }
    func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        tk_affine(x, out, n, 1, 0, 1)
    }
}
/// Gradient of ReLU: passes g where the input (or output) was positive.
struct ReluGradOp: BinaryFunctor {
    @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float { x > 0 ? g : 0 }
    var vectorOp: tk_binary_op? { TK_RELU_GRAD }
}

enum Elementwise {
    /// out[i] = f(x[i]) over a contiguous result (closure form, for rarely used operators).
    static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        withoutActuallyEscaping(f) { map(x, ClosureUnary(f: $0)) }
    }

    /// out = f(a, b) with broadcasting (closure form).
    static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        withoutActuallyEscaping(f) { zip(a, b, ClosureBinary(f: $0)) }
    }

    /// out[i] = f(x[i]) over a contiguous result.
    static func map<F: UnaryFunctor>(_ x: Tensor, _ f: F) -> Tensor {
        let xc = x.contiguous()
        let out = Tensor(zeros: x.shape, zeroed: false)
        let src = xc.pointer, dst = out.pointer
        Parallel.forRanges(out.count) { r in f.apply(src + r.lowerBound, dst + r.lowerBound, r.count) }
        return out
    }

    /// out = f(a, b) with broadcasting.
    static func zip<F: BinaryFunctor>(_ a: Tensor, _ b: Tensor, _ f: F) -> Tensor {
        let shape = Tensor.broadcastShape(a.shape, b.shape)
        let out = Tensor(zeros: shape, zeroed: false)
        let n = out.count
        if n == 0 { return out }
        let dst = out.pointer
        if a.shape == b.shape && a.isContiguous && b.isContiguous {
            let pa = a.pointer, pb = b.pointer
            Parallel.forRanges(n) { r in
                f.apply(pa + r.lowerBound, pb + r.lowerBound, dst + r.lowerBound, r.count, operands: TK_BOTH_ARRAYS)
            }
            return out
        }
        if b.count == 1 && a.shape == shape && a.isContiguous {
            let pa = a.pointer, pb = UnsafePointer(b.storage.base + b.offset)
            Parallel.forRanges(n) { r in
                f.apply(pa + r.lowerBound, pb, dst + r.lowerBound, r.count, operands: TK_SCALAR_B)
            }
            return out
        }
        if a.count == 1 && b.shape == shape && b.isContiguous {
            let pb = b.pointer, pa = UnsafePointer(a.storage.base + a.offset)
            Parallel.forRanges(n) { r in
                f.apply(pa, pb + r.lowerBound, dst + r.lowerBound, r.count, operands: TK_SCALAR_A)
            }
            return out
        }
        // General strided broadcast: iterate rows of the last axis.
        let sa = a.broadcastStrides(to: shape), sb = b.broadcastStrides(to: shape)
        let rank = shape.count
        let inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
        let rows = n / inner
        let baseA = a.storage.base + a.offset, baseB = b.storage.base + b.offset
        Parallel.forRanges(rows, grain: Swift.max(1, 32_768 / Swift.max(inner, 1))) { range in
            for row in range {
                var rem = row, oa = 0, ob = 0
                for d in stride(from: rank - 2, through: 0, by: -1) {
                    let idx = rem % shape[d]
                    rem /= shape[d]
                    oa += idx * sa[d]
                    ob += idx * sb[d]
                }
                let pa = baseA + oa, pb = baseB + ob, po = dst + row * inner
                if ia == 1 && ib == 1 {
                    f.apply(pa, pb, po, inner, operands: TK_BOTH_ARRAYS)
                } else if ia == 1 && ib == 0 {
                    f.apply(pa, pb, po, inner, operands: TK_SCALAR_B)
                } else if ia == 0 && ib == 1 {
                    f.apply(pa, pb, po, inner, operands: TK_SCALAR_A)
                } else {
                    for i in 0..<inner { po[i] = f(pa[i * ia], pb[i * ib]) }
                }
            }
        }
        return out
    }
}

// MARK: - Arithmetic

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = Elementwise.zip(a, b, AddOp())
        let sa = a.shape, sb = b.shape
        return record(out, [a, b]) { g in [g.sum(toShape: sa), g.sum(toShape: sb)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = Elementwise.zip(a, b, SubOp())
        let sa = a.shape, sb = b.shape
        return record(out, [a, b]) { g in [g.sum(toShape: sa), (-g).sum(toShape: sb)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = Elementwise.zip(a, b, MulOp())
        let sa = a.shape, sb = b.shape
        return record(out, [a, b]) { g in
            [a.requiresGrad ? (g * b).sum(toShape: sa) : nil, b.requiresGrad ? (g * a).sum(toShape: sb) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = Elementwise.zip(a, b, DivOp())
        let sa = a.shape, sb = b.shape
        return record(out, [a, b]) { g in
            [
                a.requiresGrad ? (g / b).sum(toShape: sa) : nil,
                b.requiresGrad ? (-(g * a) / (b * b)).sum(toShape: sb) : nil
            ]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        record(Elementwise.map(a, AffineOp(scale: -1, shift: 0)), [a]) { g in [-g] }
    }

    public static func + (a: Tensor, s: Float) -> Tensor {
        record(Elementwise.map(a, AffineOp(scale: 1, shift: s)), [a]) { g in [g] }
    }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func - (s: Float, a: Tensor) -> Tensor { -a + s }

    public static func * (a: Tensor, s: Float) -> Tensor {
        record(Elementwise.map(a, AffineOp(scale: s, shift: 0)), [a]) { g in [g * s] }
    }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }

    /// Elementwise power with a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        let x = self
        return Tensor.record(Elementwise.map(self) { Foundation.pow($0, p) }, [self]) { g in
            [g * Elementwise.map(x) { p * Foundation.pow($0, p - 1) }]
        }
    }

    public func exp() -> Tensor {
        let out = Elementwise.map(self) { Foundation.exp($0) }
        return Tensor.record(out, [self]) { g in [g * out] }
    }

    public func log() -> Tensor {
        let x = self
        return Tensor.record(Elementwise.map(self) { Foundation.log($0) }, [self]) { g in [g / x] }
    }

    public func sqrt() -> Tensor {
        let out = Elementwise.map(self) { $0.squareRoot() }
        return Tensor.record(out, [self]) { g in [g / (out * 2)] }
    }

    public func abs() -> Tensor {
        let x = self
        return Tensor.record(Elementwise.map(self) { Swift.abs($0) }, [self]) { g in
            [g * Elementwise.map(x) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }]
        }
    }

    /// Values limited to [low, high]; the gradient passes where the input was inside.
    public func clamped(min low: Float = -.infinity, max high: Float = .infinity) -> Tensor {
        let x = self
        return Tensor.record(Elementwise.map(self) { Swift.min(Swift.max($0, low), high) }, [self]) { g in
            [g * Elementwise.map(x) { ($0 >= low && $0 <= high) ? 1 : 0 }]
        }
    }

    /// Elementwise maximum of two tensors (gradient to the larger; ties to the first).
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Elementwise.zip(a, b) { Swift.max($0, $1) }
        let sa = a.shape, sb = b.shape
        return record(out, [a, b]) { g in
            let mask = Elementwise.zip(a, b) { $0 >= $1 ? 1 : 0 }
            return [(g * mask).sum(toShape: sa), (g * (1 - mask)).sum(toShape: sb)]
        }
    }

    /// Applies `f` in place to every element (no history; for optimizers and initialisers).
    public func updateInPlace(_ f: (Float) -> Float) {
        precondition(isContiguous, "in-place update needs a contiguous tensor")
        let p = pointer
        for i in 0..<count { p[i] = f(p[i]) }
    }

    /// Copies `source`'s values into this tensor (no history).
    public func assign(_ source: Tensor) {
        precondition(source.shape == shape, "assign: shape \(source.shape) != \(shape)")
        precondition(isContiguous, "assign needs a contiguous destination")
        StridedCopy.copy(from: source, to: pointer)
    }
}
