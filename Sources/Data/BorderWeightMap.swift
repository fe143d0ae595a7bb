import Foundation

/// The U-Net paper's per-pixel loss weights (Ronneberger et al. 2015, eq. 2): a class-balancing term plus
/// w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on background pixels, where d1 and d2 are the distances to the nearest and
/// second-nearest object. Objects are the 4-connected components of non-background (label != 0) pixels, so thin
/// background gaps between touching cells get the largest weights.
public struct BorderWeightMap: Sendable {
    public var w0: Float
    public var sigma: Float
    public var background: Int32

    public init(w0: Float = 10, sigma: Float = 5, background: Int32 = 0) {
        self.w0 = w0
        self.sigma = sigma
        self.background = background
    }

    /// Distances beyond which the border term is below w0 * exp(-12.5) (3.7e-5 for w0 = 10) are not computed.
    var reach: Int { Int((5 * sigma).rounded(.up)) }

    /// Weights for a `height` x `width` label map (row-major).
    public func weights(labels: [Int32], width: Int, height: Int) -> [Float] {
        precondition(labels.count == width * height, "label count does not match \(width)x\(height)")
        var weights = classBalance(labels)
        let (components, count) = BorderWeightMap.components(
            labels, width: width, height: height, background: background)
        guard count >= 2 else { return weights }
        var d1 = [Float](repeating: .infinity, count: labels.count), d2 = d1
        // Per object: exact Euclidean distances inside its bounding box grown by `reach`.
        var boxes = [(x0: Int, y0: Int, x1: Int, y1: Int)](repeating: (Int.max, Int.max, -1, -1), count: count)
        for y in 0..<height {
            for x in 0..<width {
                let c = components[y * width + x]
                guard c >= 0 else { continue }
                let b = boxes[c]
                boxes[c] = (min(b.x0, x), min(b.y0, y), max(b.x1, x), max(b.y1, y))
            }
        }
        let r = reach
        var grid: [Float] = []
        for (c, b) in boxes.enumerated() {
            let x0 = max(0, b.x0 - r), y0 = max(0, b.y0 - r), x1 = min(width - 1, b.x1 + r),
                y1 = min(height - 1, b.y1 + r)
            let bw = x1 - x0 + 1, bh = y1 - y0 + 1
            grid = [Float](repeating: 0, count: bw * bh)
            for y in 0..<bh {
                for x in 0..<bw {
                    grid[y * bw + x] = components[(y0 + y) * width + x0 + x] == c ? 0 : .infinity
                }
            }
            BorderWeightMap.squaredDistanceTransform(&grid, width: bw, height: bh)
            for y in 0..<bh {
                for x in 0..<bw {
                    let i = (y0 + y) * width + x0 + x
                    guard labels[i] == background else { continue }
                    let d = grid[y * bw + x].squareRoot()
                    if d < d1[i] { d2[i] = d1[i]; d1[i] = d } else if d < d2[i] { d2[i] = d }
                }
            }
        }
        let scale = 1 / (2 * sigma * sigma)
        for i in weights.indices where labels[i] == background && d2[i].isFinite {
            let s = d1[i] + d2[i]
            weights[i] += w0 * Foundation.exp(-s * s * scale)
        }
        return weights
    }

    /// w_c: each class present gets weight (1 / classes present) / its pixel fraction, so the classes weigh equally.
    func classBalance(_ labels: [Int32]) -> [Float] {
        var counts: [Int32: Int] = [:]
        for l in labels { counts[l, default: 0] += 1 }
        let n = Float(labels.count), k = Float(counts.count)
        let w = counts.mapValues { n / (k * Float($0)) }
        return labels.map { w[$0]! }
    }

    /// 4-connected components of non-background pixels: an id per pixel (-1 for background) and the count.
    static func components(_ labels: [Int32], width: Int, height: Int, background: Int32) -> ([Int], Int) {
        var ids = [Int](repeating: -1, count: labels.count)
        var count = 0
        var stack: [Int] = []
        for start in labels.indices where labels[start] != background && ids[start] < 0 {
            ids[start] = count
            stack.append(start)
            while let i = stack.popLast() {
                let x = i % width, y = i / width
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] {
                    guard nx >= 0, ny >= 0, nx < width, ny < height else { continue }
                    let j = ny * width + nx
                    if labels[j] != background && ids[j] < 0 {
                        ids[j] = count
                        stack.append(j)
                    }
                }
            }
            count += 1
        }
        return (ids, count)
    }

    /// In place: 0 / infinity sources to squared Euclidean distances (Felzenszwalb and Huttenlocher's lower
    /// envelope of parabolas, along rows then columns).
    static func squaredDistanceTransform(_ grid: inout [Float], width: Int, height: Int) {
        var f = [Float](repeating: 0, count: max(width, height)), d = f
        var v = [Int](repeating: 0, count: max(width, height)), z = [Float](repeating: 0, count: max(width, height) + 1)
        func pass(_ n: Int) {
            var k = 0
            v[0] = 0
            z[0] = -.infinity
            z[1] = .infinity
            var q = 1
            while q < n {
                if f[q].isInfinite { q += 1; continue }
                if f[v[k]].isInfinite { v[k] = q; z[k] = -.infinity; z[k + 1] = .infinity; q += 1; continue }
                var s: Float
                repeat {
                    let p = v[k]
                    s = ((f[q] + Float(q * q)) - (f[p] + Float(p * p))) / Float(2 * (q - p))
                    if s <= z[k] { k -= 1 } else { break }
                } while k >= 0
                if k < 0 { k = 0; v[0] = q; z[0] = -.infinity; z[1] = .infinity; q += 1; continue }
                k += 1
                v[k] = q
                z[k] = s
                z[k + 1] = .infinity
                q += 1
            }
            k = 0
            for q in 0..<n {
                while z[k + 1] < Float(q) { k += 1 }
                let p = v[k]
                d[q] = f[p].isInfinite ? .infinity : Float((q - p) * (q - p)) + f[p]
            }
        }
        for y in 0..<height {
            for x in 0..<width { f[x] = grid[y * width + x] }
            pass(width)
            for x in 0..<width { grid[y * width + x] = d[x] }
        }
        for x in 0..<width {
            for y in 0..<height { f[y] = grid[y * width + x] }
            pass(height)
            for y in 0..<height { grid[y * width + x] = d[y] }
        }
    }
}
