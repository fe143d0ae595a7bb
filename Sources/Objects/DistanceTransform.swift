/// The exact Euclidean distance from each pixel of a region to the nearest pixel outside it (scipy's
/// `distance_transform_edt`: beyond the image border is not outside, so a region cut by the border is as thick
/// there as it would be whole), by Felzenszwalb and Huttenlocher's lower envelope of parabolas: one pass down the
/// columns, one along the rows, linear in the pixels.
public enum DistanceTransform {
    /// Distances in pixels (0 outside), row-major; `inside(i)` tells whether pixel `i` is in the region. A
    /// region without any outside pixel gets the largest distance the image allows (its diagonal).
    public static func euclidean(width w: Int, height h: Int, inside: (Int) -> Bool) -> [Float] {
        let far = Float(w * w + h * h)
        var d = [Float](repeating: 0, count: w * h)
        for i in 0..<(w * h) where inside(i) { d[i] = far }
        let m = max(w, h)
        let f = UnsafeMutablePointer<Float>.allocate(capacity: m)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: m)
        let v = UnsafeMutablePointer<Int>.allocate(capacity: m)
        let z = UnsafeMutablePointer<Float>.allocate(capacity: m + 1)
        defer { [f, out, z].forEach { $0.deallocate() }; v.deallocate() }
        d.withUnsafeMutableBufferPointer { buffer in
            let d = buffer.baseAddress!
            /// Squared distance along one line of n samples (stride apart from `base`), in place.
            func line(base: Int, stride: Int, n: Int) {
                var any = false
                for q in 0..<n {
                    f[q] = d[base + q * stride]
                    any = any || f[q] != 0
                }
                guard any else { return }
                var k = 0
                v[0] = 0
                z[0] = -.infinity
                z[1] = .infinity
                if n > 1 {
                    for q in 1..<n {
                        var s: Float
                        repeat {
                            let p = v[k]
                            s = ((f[q] + Float(q * q)) - (f[p] + Float(p * p))) / Float(2 * (q - p))
                            if s <= z[k] { k -= 1 } else { break }
                        } while k >= 0
                        k += 1
                        v[k] = q
                        z[k] = s
                        z[k + 1] = .infinity
                    }
                }
                k = 0
                for q in 0..<n {
                    while z[k + 1] < Float(q) { k += 1 }
                    let p = v[k]
                    out[q] = Float((q - p) * (q - p)) + f[p]
                }
                for q in 0..<n { d[base + q * stride] = min(out[q], far) }
            }
            for x in 0..<w { line(base: x, stride: w, n: h) }
            for y in 0..<h { line(base: y * w, stride: 1, n: w) }
            for i in 0..<(w * h) { d[i] = d[i].squareRoot() }
        }
        return d
    }
}
