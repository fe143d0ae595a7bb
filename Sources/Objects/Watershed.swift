/// Where a watershed's seeds come from.
public enum SeedSource: String, Sendable, CaseIterable, Codable {
    /// Peaks of the distance to the region's edge: touching round objects split at their neck.
    case distance
    /// Peaks of the class probability: objects the model sees as separate split where it dips.
    case probability
}

/// A seeded watershed (Meyer's flooding) that splits the connected regions of a key image into objects, as
/// skimage's `watershed(-surface, markers, mask=...)` on h-maxima markers does.
public enum Watershed {
    /// Levels a map in [0, `top`] is quantised to: seeds and flooding work on a bucket queue, linear in pixels.
    static let levels = 1024

    /// Quantises `values` (0...top) to 0..<levels.
    static func quantise(_ values: [Float], top: Float) -> [UInt16] {
        let scale = Float(levels - 1) / max(top, .leastNormalMagnitude)
        return values.map { UInt16(max(0, min(Float(levels - 1), ($0 * scale).rounded()))) }
    }

    /// One seed per significant peak of `seedMap` within each region of equal non-zero `keys`: a peak counts
    /// when it rises at least `depth` (in `seedMap`'s units) above the highest pass joining it to a higher peak
    /// (its dynamic; a region's highest peak always counts). Plateaus are one peak. Returns the seed pixels.
    public static func seeds(
        keys: [UInt32], seedMap: [Float], width w: Int, height h: Int, depth: Float,
        connectivity: Connectivity = .eight
    ) -> [Int] {
        let top = seedMap.max() ?? 0
        let q = quantise(seedMap, top: top)
        let minimum = Int((depth * Float(levels - 1) / max(top, .leastNormalMagnitude)).rounded(.up))
        let order = bucketOrder(q, keys: keys, descending: true)
        var parent = [Int32](repeating: -1, count: w * h)
        var peak = [UInt16](repeating: 0, count: w * h)  // at roots: the component's highest level
        var peakPixel = [Int32](repeating: 0, count: w * h)
        var seeds: [Int] = []
        func root(_ i: Int) -> Int {
            var r = i
            while Int(parent[r]) != r {
                parent[r] = parent[Int(parent[r])]
                r = Int(parent[r])
            }
            return r
        }
        let offsets = neighbourOffsets(connectivity)
        for p in order {
            let level = q[p]
            parent[p] = Int32(p)
            peak[p] = level
            peakPixel[p] = Int32(p)
            let x = p % w, y = p / w
            for (dx, dy) in offsets {
                let nx = x + dx, ny = y + dy
                guard nx >= 0, nx < w, ny >= 0, ny < h else { continue }
                let n = ny * w + nx
                guard parent[n] >= 0, keys[n] == keys[p] else { continue }
                let a = root(p), b = root(n)
                guard a != b else { continue }
                // The lower peak dies here; it was a seed if it rose far enough above this pass.
                let (low, high) = peak[a] < peak[b] || (peak[a] == peak[b] && a > b) ? (a, b) : (b, a)
                if Int(peak[low]) - Int(level) >= max(1, minimum) { seeds.append(Int(peakPixel[low])) }
                parent[low] = Int32(high)
            }
        }
        for p in order where root(p) == p { seeds.append(Int(peakPixel[p])) }
        return seeds
    }

    /// Floods each region of equal non-zero `keys` from `seeds` in decreasing `surface` order (ties first come,
    /// first served), so each pixel joins the seed that reaches it over the highest ground; regions without a
    /// seed stay whole. Returns a label per pixel (seed k -> k + 1; unseeded regions after them; 0 background).
    public static func flood(
        keys: [UInt32], surface: [Float], seeds: [Int], width w: Int, height h: Int,
        connectivity: Connectivity = .eight
    ) -> [UInt32] {
        let q = quantise(surface, top: surface.max() ?? 0)
        var labels = [UInt32](repeating: 0, count: w * h)
        var buckets = [[Int32]](repeating: [], count: levels)
        var next = [Int](repeating: 0, count: levels)
        var count: UInt32 = 0
        for s in seeds where labels[s] == 0 && keys[s] != 0 {
            count += 1
            labels[s] = count
            buckets[Int(q[s])].append(Int32(s))
        }
        let offsets = neighbourOffsets(connectivity)
        func drain() {
            var level = levels - 1
            while level >= 0 {
                guard next[level] < buckets[level].count else {
                    level -= 1
                    continue
                }
                let p = Int(buckets[level][next[level]])
                next[level] += 1
                let x = p % w, y = p / w
                for (dx, dy) in offsets {
                    let nx = x + dx, ny = y + dy
                    guard nx >= 0, nx < w, ny >= 0, ny < h else { continue }
                    let n = ny * w + nx
                    guard labels[n] == 0, keys[n] == keys[p] else { continue }
                    labels[n] = labels[p]
                    let at = min(Int(q[n]), level)
                    buckets[at].append(Int32(n))
                }
            }
        }
        drain()
        // Regions no seed reached (none are left by `seeds`, but callers may pass fewer): one object each.
        for p in 0..<(w * h) where keys[p] != 0 && labels[p] == 0 {
            count += 1
            labels[p] = count
            buckets[Int(q[p])].append(Int32(p))
            drain()
        }
        return labels
    }

    static func neighbourOffsets(_ c: Connectivity) -> [(Int, Int)] {
        c == .eight
            ? [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]
            : [(0, -1), (-1, 0), (1, 0), (0, 1)]
    }

    /// Pixels with a non-zero key sorted by level (counting sort), highest first when `descending`.
    static func bucketOrder(_ q: [UInt16], keys: [UInt32], descending: Bool) -> [Int] {
        var counts = [Int](repeating: 0, count: levels + 1)
        for i in q.indices where keys[i] != 0 { counts[Int(q[i]) + 1] += 1 }
        for l in 0..<levels { counts[l + 1] += counts[l] }
        var order = [Int](repeating: 0, count: counts[levels])
        for i in q.indices where keys[i] != 0 {
            order[counts[Int(q[i])]] = i
            counts[Int(q[i])] += 1
        }
        return descending ? order.reversed() : order
    }
}
