import Foundation

/// Vectorised reductions over contiguous float runs (the compiler does not reorder float sums by itself).
enum VectorMath {
    /// Sum of p[0..<n].
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            i += 16
        }
        var s = acc.sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    /// Sum of (p[i] - mean)^2.
    @inline(__always)
    static func squaredDeviation(_ p: UnsafePointer<Float>, _ n: Int, mean: Float) -> Float {
        var acc = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= n {
            let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - m
            acc += d * d
            i += 16
        }
        var s = acc.sum()
        while i < n { let d = p[i] - mean; s += d * d; i += 1 }
        return s
    }

    /// (sum of g[i], sum of g[i] * (x[i] - mean)).
    @inline(__always)
    static func gradientMoments(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> (Float, Float) {
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= n {
            let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self)
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            a += gv
            b += gv * (xv - m)
            i += 16
        }
        var sa = a.sum(), sb = b.sum()
        while i < n { sa += g[i]; sb += g[i] * (x[i] - mean); i += 1 }
        return (sa, sb)
    }

    /// gradientMoments with g replaced by 0 where y <= 0 (the gradient through a ReLU whose output is y).
    @inline(__always)
    static func maskedGradientMoments(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                      _ n: Int, mean: Float) -> (Float, Float) {
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: mean), zero = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
            let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self).replacing(with: zero, where: yv .<= zero)
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            a += gv
            b += gv * (xv - m)
            i += 16
        }
        var sa = a.sum(), sb = b.sum()
        while i < n {
            let gi = y[i] > 0 ? g[i] : 0
            sa += gi
            sb += gi * (x[i] - mean)
            i += 1
        }
        return (sa, sb)
    }
}
