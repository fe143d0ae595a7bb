import TesseraEngine

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
    /// Splits each connected region of equal non-zero `keys` on its own (in its bounding box, so the sorted
    /// visits stay in cache, regions spread over the cores): distance to the region's edge, seeds from its
    /// peaks (of the distance, or of `probability[key]` with `seeds` `.probability`), flooding of the
    /// probability (the distance without it). Returns a label per pixel, and the key and the seed pixel of each
    /// label (index = label). 8192x8192 with 20,000 regions: about 3.7 s on two cores (BENCHMARKS.md).
    public static func split(
        keys: [UInt32], width w: Int, height h: Int, connectivity: Connectivity, seeds source: SeedSource,
        depth: Float, probability: [Int: [Float]]?
    ) -> (labels: [UInt32], keys: [UInt32], seeds: [Int]) {
        let regions = ConnectedComponents(keys: keys, width: w, height: h, connectivity: connectivity)
        struct Part { let region: Int; let labels: [UInt32]; let seeds: [Int] }
        var parts = [[Part]](repeating: [], count: max(1, min(Parallel.threadCount, regions.count)))
        parts.withUnsafeMutableBufferPointer { parts in
            Parallel.workers(regions.count) { worker, tasks in
                var mine: [Part] = []
                for r in tasks {
                    let o = regions.objects[r], id = UInt32(r + 1)
                    // The box around the region, one pixel wider where the image allows (the outside it needs).
                    let x0 = max(0, o.box.x - 1), y0 = max(0, o.box.y - 1)
                    let x1 = min(w, o.box.x + o.box.width + 1), y1 = min(h, o.box.y + o.box.height + 1)
                    let bw = x1 - x0, bh = y1 - y0
                    var local = [UInt32](repeating: 0, count: bw * bh)
                    for y in 0..<bh {
                        for x in 0..<bw where regions.ids[(y0 + y) * w + x0 + x] == id { local[y * bw + x] = 1 }
                    }
                    // Beyond the image border is not outside: pixels there are simply absent from the box.
                    let distance = DistanceTransform.euclidean(width: bw, height: bh) { local[$0] != 0 }
                    var surface = distance
                    if let plane = probability?[o.objectClass] {
                        for y in 0..<bh {
                            for x in 0..<bw where local[y * bw + x] != 0 {
                                surface[y * bw + x] = plane[(y0 + y) * w + x0 + x]
                            }
                        }
                    }
                    let peaks = Self.seeds(
                        keys: local, seedMap: source == .probability && probability != nil ? surface : distance,
                        width: bw, height: bh, depth: depth, connectivity: connectivity)
                    let labels = Self.flood(
                        keys: local, surface: surface, seeds: peaks, width: bw, height: bh, connectivity: connectivity)
                    let global = peaks.map { (y0 + $0 / bw) * w + x0 + $0 % bw }
                    mine.append(Part(region: r, labels: labels, seeds: global))
                }
                parts[worker] = mine
            }
        }
        var labels = [UInt32](repeating: 0, count: w * h)
        var classOf: [UInt32] = [0], seedOf: [Int] = [-1]
        for part in parts.joined().sorted(by: { $0.region < $1.region }) {
            let o = regions.objects[part.region], base = UInt32(classOf.count - 1)
            let x0 = max(0, o.box.x - 1), y0 = max(0, o.box.y - 1)
            let bw = min(w, o.box.x + o.box.width + 1) - x0
            for (i, l) in part.labels.enumerated() where l != 0 {
                labels[(y0 + i / bw) * w + x0 + i % bw] = base + l
            }
            let count = part.labels.max().map(Int.init) ?? 0
            classOf += [UInt32](repeating: UInt32(o.objectClass), count: count)
            seedOf += (0..<count).map { $0 < part.seeds.count ? part.seeds[$0] : -1 }
        }
        return (labels, classOf, seedOf)
    }

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
    /// Pixels join in decreasing order (a counting sort of the quantised map) in a union-find over pixels.
    public static func seeds(
        keys: [UInt32], seedMap: [Float], width w: Int, height h: Int, depth: Float,
        connectivity: Connectivity = .eight
    ) -> [Int] {
        let top = seedMap.max() ?? 0
        let q = quantise(seedMap, top: top)
        let minimum = max(1, Int((depth * Float(levels - 1) / max(top, .leastNormalMagnitude)).rounded(.up)))
        let order = bucketOrder(q, keys: keys, descending: true)
        var parent = [Int32](repeating: -1, count: w * h)
        var peakPixel = [Int32](repeating: 0, count: w * h)  // at roots: the component's highest pixel
        var seeds: [Int] = []
        let offsets = neighbourOffsets(connectivity)
        keys.withUnsafeBufferPointer { keys in
            q.withUnsafeBufferPointer { q in
                parent.withUnsafeMutableBufferPointer { parent in
                    peakPixel.withUnsafeMutableBufferPointer { peakPixel in
                        func root(_ i: Int) -> Int {
                            var r = i
                            while Int(parent[r]) != r {
                                parent[r] = parent[Int(parent[r])]
                                r = Int(parent[r])
                            }
                            return r
                        }
                        for p in order {
                            let level = Int(q[p]), key = keys[p]
                            parent[p] = Int32(p)
                            peakPixel[p] = Int32(p)
                            let x = p % w, y = p / w
                            for (dx, dy) in offsets {
                                let nx = x + dx, ny = y + dy
                                guard nx >= 0, nx < w, ny >= 0, ny < h else { continue }
                                let n = ny * w + nx
                                guard parent[n] >= 0, keys[n] == key else { continue }
                                let a = root(p), b = root(n)
                                guard a != b else { continue }
                                // The lower peak dies here; it was a seed if it rose far enough above this pass.
                                let pa = Int(q[Int(peakPixel[a])]), pb = Int(q[Int(peakPixel[b])])
                                let (low, high) = pa < pb || (pa == pb && a > b) ? (a, b) : (b, a)
                                if min(pa, pb) - level >= minimum { seeds.append(Int(peakPixel[low])) }
                                parent[low] = Int32(high)
                            }
                        }
                        for p in order where root(p) == p { seeds.append(Int(peakPixel[p])) }
                    }
                }
            }
        }
        return seeds
    }

    /// Floods each region of equal non-zero `keys` from `seeds` in decreasing `surface` order (ties first come,
    /// first served), so each pixel joins the seed that reaches it over the highest ground; regions without a
    /// seed stay whole. Returns a label per pixel (seed k -> k + 1; unseeded regions after them; 0 background).
    /// The queue is a FIFO list per level, linked through the pixels.
    public static func flood(
        keys: [UInt32], surface: [Float], seeds: [Int], width w: Int, height h: Int,
        connectivity: Connectivity = .eight
    ) -> [UInt32] {
        let q = quantise(surface, top: surface.max() ?? 0)
        var labels = [UInt32](repeating: 0, count: w * h)
        var next = [Int32](repeating: -1, count: w * h)
        var head = [Int32](repeating: -1, count: levels), tail = head
        let offsets = neighbourOffsets(connectivity)
        keys.withUnsafeBufferPointer { keys in
            q.withUnsafeBufferPointer { q in
                labels.withUnsafeMutableBufferPointer { labels in
                    next.withUnsafeMutableBufferPointer { next in
                        func push(_ p: Int, _ level: Int) {
                            if tail[level] < 0 { head[level] = Int32(p) } else { next[Int(tail[level])] = Int32(p) }
                            tail[level] = Int32(p)
                        }
                        func drain() {
                            var level = levels - 1
                            while level >= 0 {
                                let first = head[level]
                                guard first >= 0 else {
                                    level -= 1
                                    continue
                                }
                                let p = Int(first)
                                head[level] = next[p]
                                if head[level] < 0 { tail[level] = -1 }
                                let x = p % w, y = p / w, label = labels[p], key = keys[p]
                                for (dx, dy) in offsets {
                                    let nx = x + dx, ny = y + dy
                                    guard nx >= 0, nx < w, ny >= 0, ny < h else { continue }
                                    let n = ny * w + nx
                                    guard labels[n] == 0, keys[n] == key else { continue }
                                    labels[n] = label
                                    push(n, min(Int(q[n]), level))
                                }
                            }
                        }
                        var count: UInt32 = 0
                        for s in seeds where labels[s] == 0 && keys[s] != 0 {
                            count += 1
                            labels[s] = count
                            push(s, Int(q[s]))
                        }
                        drain()
                        // Regions no seed reached (`seeds` leaves none, but callers may pass fewer): one object each.
                        for p in 0..<(w * h) where keys[p] != 0 && labels[p] == 0 {
                            count += 1
                            labels[p] = count
                            push(p, Int(q[p]))
                            drain()
                        }
                    }
                }
            }
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
