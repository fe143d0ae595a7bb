import Foundation
import TesseraEngine

/// ROAD's noisy linear imputation (Rong et al. 2022, as pytorch-grad-cam's `NoisyLinearImputer`): each removed
/// pixel becomes the weighted mean of its 8 neighbours (1/6 for the 4 beside it, 1/12 for the diagonals; the weights
/// of neighbours outside the image dropped), removed neighbours solved for together, then Gaussian noise of
/// standard deviation `noise` added. Filling a hole from its border this way leaves no edge for the model to see
/// (a constant fill's outline is itself evidence, which is why deletion with zeros can mislead).
///
/// The system (diagonal: the in-image weights; off-diagonals: minus the removed neighbours' weights) is symmetric
/// positive definite wherever a hole touches a kept pixel; it is solved by conjugate gradients from a coarse-to-
/// fine start (the same problem on a half-size grid, recursively), which takes tens of iterations instead of the
/// hundreds a hole of 200 pixels across needs from a flat start.
public struct NoisyLinearImputer {
    /// Standard deviation of the noise added to every imputed value (in the model's normalised input).
    public var noise: Float
    /// Relative residual at which the solve stops.
    public var tolerance = 1e-6

    public init(noise: Float = 0.01) { self.noise = noise }

    /// The 8 neighbours and their weights, pytorch-grad-cam's `neighbors_weights`.
    static let neighbours: [(dy: Int, dx: Int, weight: Double)] = [
        (1, 1, 1.0 / 12), (0, 1, 1.0 / 6), (-1, 1, 1.0 / 12), (1, -1, 1.0 / 12), (0, -1, 1.0 / 6),
        (-1, -1, 1.0 / 12), (1, 0, 1.0 / 6), (-1, 0, 1.0 / 6)
    ]

    /// `values` ([channels][height][width]) with the pixels where `removed` is true imputed; the noise drawn from
    /// `generator` channel by channel, pixel by pixel in raster order.
    public func impute(
        _ values: [Float], channels: Int, height: Int, width: Int, removed: [Bool],
        generator: inout RandomGenerator
    ) -> [Float] {
        let plane = height * width
        var out = values
        let unknown = (0..<plane).filter { removed[$0] }
        guard !unknown.isEmpty else { return out }
        for c in 0..<channels {
            let channel = Array(values[(c * plane)..<((c + 1) * plane)])
            let solved = Self.solve(channel, removed: removed, height: height, width: width, tolerance: tolerance)
            for p in unknown { out[c * plane + p] = solved[p] + noise * generator.nextNormal() }
        }
        return out
    }

    /// One plane with its removed pixels replaced by the solution of the imputation system (no noise).
    static func solve(_ plane: [Float], removed: [Bool], height: Int, width: Int, tolerance: Double) -> [Float] {
        var out = plane
        var index = [Int](repeating: -1, count: plane.count), pixels = [Int]()
        for p in plane.indices where removed[p] {
            index[p] = pixels.count
            pixels.append(p)
        }
        guard !pixels.isEmpty else { return out }
        guard pixels.count < plane.count else {
            // Nothing kept: no border to fill from; the normalised input's mean.
            for p in pixels { out[p] = 0 }
            return out
        }
        // The system in rows: diagonal, removed neighbours (index, weight), right-hand side from kept neighbours.
        let n = pixels.count
        var diagonal = [Double](repeating: 0, count: n), rhs = [Double](repeating: 0, count: n)
        var start = [Int](repeating: 0, count: n + 1), columns = [Int](), weights = [Double]()
        columns.reserveCapacity(8 * n)
        weights.reserveCapacity(8 * n)
        for (k, p) in pixels.enumerated() {
            let y = p / width, x = p % width
            for (dy, dx, w) in neighbours {
                let yy = y + dy, xx = x + dx
                guard yy >= 0 && yy < height && xx >= 0 && xx < width else { continue }
                diagonal[k] += w
                let q = yy * width + xx
                if index[q] >= 0 {
                    columns.append(index[q])
                    weights.append(w)
                } else {
                    rhs[k] += w * Double(plane[q])
                }
            }
            start[k + 1] = columns.count
        }
        // A coarse-to-fine start: the half-size problem's solution at each pixel's parent.
        var guess = [Double](repeating: 0, count: n)
        if n > 1024 && height > 4 && width > 4 {
            let (coarse, ch, cw, coarseRemoved) = halved(plane, removed: removed, height: height, width: width)
            let c = solve(coarse, removed: coarseRemoved, height: ch, width: cw, tolerance: tolerance)
            for (k, p) in pixels.enumerated() { guess[k] = Double(c[(p / width / 2) * cw + (p % width) / 2]) }
        } else {
            let kept = plane.indices.filter { !removed[$0] }
            let mean = kept.reduce(0.0) { $0 + Double(plane[$1]) } / Double(kept.count)
            guess = [Double](repeating: mean, count: n)
        }
        func apply(_ v: [Double], into r: inout [Double]) {
            for k in 0..<n {
                var s = diagonal[k] * v[k]
                for e in start[k]..<start[k + 1] { s -= weights[e] * v[columns[e]] }
                r[k] = s
            }
        }
        // Conjugate gradients with a Jacobi preconditioner.
        var x = guess, r = [Double](repeating: 0, count: n), q = [Double](repeating: 0, count: n)
        apply(x, into: &q)
        for k in 0..<n { r[k] = rhs[k] - q[k] }
        let bNorm = max(rhs.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-30)
        var z = (0..<n).map { r[$0] / diagonal[$0] }, d = z
        var rz = zip(r, z).reduce(0) { $0 + $1.0 * $1.1 }
        for _ in 0..<(4 * n + 100) {
            if r.reduce(0, { $0 + $1 * $1 }).squareRoot() <= tolerance * bNorm { break }
            apply(d, into: &q)
            let dq = zip(d, q).reduce(0) { $0 + $1.0 * $1.1 }
            guard dq > 0 else { break }
            let alpha = rz / dq
            for k in 0..<n {
                x[k] += alpha * d[k]
                r[k] -= alpha * q[k]
                z[k] = r[k] / diagonal[k]
            }
            let next = zip(r, z).reduce(0) { $0 + $1.0 * $1.1 }
            let beta = next / rz
            rz = next
            for k in 0..<n { d[k] = z[k] + beta * d[k] }
        }
        for (k, p) in pixels.enumerated() { out[p] = Float(x[k]) }
        return out
    }

    /// The plane at half size: a coarse pixel is kept when any of its children is, with their mean.
    static func halved(_ plane: [Float], removed: [Bool], height: Int, width: Int)
        -> ([Float], Int, Int, [Bool])
    {
        let ch = (height + 1) / 2, cw = (width + 1) / 2
        var sum = [Float](repeating: 0, count: ch * cw), count = [Float](repeating: 0, count: ch * cw)
        for y in 0..<height {
            for x in 0..<width where !removed[y * width + x] {
                sum[(y / 2) * cw + x / 2] += plane[y * width + x]
                count[(y / 2) * cw + x / 2] += 1
            }
        }
        return (zip(sum, count).map { $1 > 0 ? $0 / $1 : 0 }, ch, cw, count.map { $0 == 0 })
    }
}
