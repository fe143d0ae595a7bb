import Foundation

/// SLIC superpixels (Achanta et al. 2012, "SLIC Superpixels Compared to State-of-the-Art Superpixel Methods"):
/// k-means on (CIELAB colour, position) seeded on a grid of step S = sqrt(pixels / segments), each centre moved to
/// the lowest gradient of its 3x3 neighbourhood, each pixel compared only with the centres within 2S x 2S of it,
/// distance sqrt(d_lab^2 + (d_xy / S)^2 * compactness^2), 10 iterations; then connectivity enforced as the paper's
/// algorithm does (pieces smaller than S^2 / 4 join the segment before them in raster order), so every label is
/// one 4-connected region. Gray images use their lightness alone. Compactness 10 is the paper's default: higher
/// gives squarer segments, lower ones that follow edges more closely.
public struct SLIC: Sendable {
    public var segments: Int
    public var compactness: Double
    public var iterations = 10

    public init(segments: Int = 100, compactness: Double = 10) {
        self.segments = max(1, segments)
        self.compactness = compactness
    }

    /// Labels 0..<count, one per pixel (row-major), of `planes`: `channels` planes of `width` x `height` samples
    /// in [0, 1] (1 channel: gray, 3 or more: RGB from the first three).
    public func labels(_ planes: [Float], channels: Int, width: Int, height: Int) -> (labels: [Int32], count: Int) {
        let n = width * height
        guard n > 0 else { return ([], 0) }
        let lab = Self.lab(planes, channels: channels, count: n)
        let step = max(1, Int((Double(n) / Double(segments)).squareRoot().rounded()))
        // Centres on the grid, moved to the lowest gradient of their 3 x 3 neighbourhood.
        var centres = [(l: Double, a: Double, b: Double, y: Double, x: Double)]()
        func colour(_ p: Int) -> (Double, Double, Double) { (lab.0[p], lab.1[p], lab.2[p]) }
        func gradient(_ y: Int, _ x: Int) -> Double {
            let right = colour(y * width + min(x + 1, width - 1)), left = colour(y * width + max(x - 1, 0))
            let down = colour(min(y + 1, height - 1) * width + x), up = colour(max(y - 1, 0) * width + x)
            func d(_ p: (Double, Double, Double), _ q: (Double, Double, Double)) -> Double {
                (p.0 - q.0) * (p.0 - q.0) + (p.1 - q.1) * (p.1 - q.1) + (p.2 - q.2) * (p.2 - q.2)
            }
            return d(right, left) + d(down, up)
        }
        for gy in stride(from: step / 2, to: height, by: step) {
            for gx in stride(from: step / 2, to: width, by: step) {
                var best = (gy, gx), lowest = Double.infinity
                for y in max(0, gy - 1)...min(height - 1, gy + 1) {
                    for x in max(0, gx - 1)...min(width - 1, gx + 1) {
                        let g = gradient(y, x)
                        if g < lowest { (lowest, best) = (g, (y, x)) }
                    }
                }
                let c = colour(best.0 * width + best.1)
                centres.append((c.0, c.1, c.2, Double(best.0), Double(best.1)))
            }
        }
        if centres.isEmpty { centres.append((lab.0[0], lab.1[0], lab.2[0], 0, 0)) }
        var labels = [Int32](repeating: 0, count: n), distance = [Double](repeating: .infinity, count: n)
        let spatial = compactness * compactness / Double(step * step)
        for _ in 0..<iterations {
            for i in distance.indices { distance[i] = .infinity }
            for (k, c) in centres.enumerated() {
                let cy = Int(c.y.rounded()), cx = Int(c.x.rounded())
                for y in max(0, cy - step)...min(height - 1, cy + step) {
                    for x in max(0, cx - step)...min(width - 1, cx + step) {
                        let p = y * width + x
                        let dl = lab.0[p] - c.l, da = lab.1[p] - c.a, db = lab.2[p] - c.b
                        let dy = Double(y) - c.y, dx = Double(x) - c.x
                        let d = dl * dl + da * da + db * db + (dy * dy + dx * dx) * spatial
                        if d < distance[p] {
                            distance[p] = d
                            labels[p] = Int32(k)
                        }
                    }
                }
            }
            var sums = [(Double, Double, Double, Double, Double, Double)](
                repeating: (0, 0, 0, 0, 0, 0), count: centres.count)
            for p in 0..<n where distance[p].isFinite {
                let k = Int(labels[p])
                sums[k].0 += lab.0[p]
                sums[k].1 += lab.1[p]
                sums[k].2 += lab.2[p]
                sums[k].3 += Double(p / width)
                sums[k].4 += Double(p % width)
                sums[k].5 += 1
            }
            for k in centres.indices where sums[k].5 > 0 {
                let s = sums[k], m = s.5
                centres[k] = (s.0 / m, s.1 / m, s.2 / m, s.3 / m, s.4 / m)
            }
        }
        return Self.connected(labels, width: width, height: height, smallest: max(1, step * step / 4))
    }

    /// Achanta et al.'s `EnforceLabelConnectivity`: the 4-connected pieces of each label numbered in raster order;
    /// a piece of fewer than `smallest` pixels takes the label of the piece it touches before it.
    static func connected(_ labels: [Int32], width: Int, height: Int, smallest: Int) -> ([Int32], Int) {
        var out = [Int32](repeating: -1, count: labels.count)
        var count: Int32 = 0, stack = [Int](), piece = [Int]()
        for start in labels.indices where out[start] < 0 {
            // The label of a piece already numbered beside the start (left or above), for a small piece to join.
            let y0 = start / width, x0 = start % width
            var adjacent: Int32 = count > 0 ? count - 1 : 0
            if x0 > 0, out[start - 1] >= 0 {
                adjacent = out[start - 1]
            } else if y0 > 0, out[start - width] >= 0 {
                adjacent = out[start - width]
            }
            piece.removeAll(keepingCapacity: true)
            stack.append(start)
            out[start] = count
            while let p = stack.popLast() {
                piece.append(p)
                let y = p / width, x = p % width
                for (yy, xx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)]
                where yy >= 0 && yy < height && xx >= 0 && xx < width {
                    let q = yy * width + xx
                    if out[q] < 0 && labels[q] == labels[start] {
                        out[q] = count
                        stack.append(q)
                    }
                }
            }
            if piece.count < smallest && count > 0 {
                for p in piece { out[p] = adjacent }
            } else {
                count += 1
            }
        }
        return (out, Int(count))
    }

    /// CIELAB (D65) of planes in [0, 1]: sRGB from the first three channels, or lightness alone for fewer.
    static func lab(_ planes: [Float], channels: Int, count n: Int) -> ([Double], [Double], [Double]) {
        func linear(_ v: Float) -> Double {
            let c = Double(max(0, min(1, v)))
            return c <= 0.04045 ? c / 12.92 : Foundation.pow((c + 0.055) / 1.055, 2.4)
        }
        func f(_ t: Double) -> Double { t > 216.0 / 24389 ? Foundation.cbrt(t) : (24389.0 / 27 * t + 16) / 116 }
        var l = [Double](repeating: 0, count: n), a = l, b = l
        for p in 0..<n {
            if channels >= 3 {
                let r = linear(planes[p]), g = linear(planes[n + p]), bl = linear(planes[2 * n + p])
                let x = (0.412453 * r + 0.357580 * g + 0.180423 * bl) / 0.950456
                let y = 0.212671 * r + 0.715160 * g + 0.072169 * bl
                let z = (0.019334 * r + 0.119193 * g + 0.950227 * bl) / 1.088754
                l[p] = 116 * f(y) - 16
                a[p] = 500 * (f(x) - f(y))
                b[p] = 200 * (f(y) - f(z))
            } else {
                l[p] = 116 * f(linear(planes[p])) - 16
            }
        }
        return (l, a, b)
    }
}
