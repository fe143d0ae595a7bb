/// Labels the objects of a key image (maximal connected sets of pixels with one non-zero key) block by block, so
/// images larger than memory stream through: blocks come in raster order of a grid, each is labelled by runs
/// (a run of equal keys takes the label of the first touching run above or to its left, and joins the others),
/// and only the row above the current block row and the column left of the current block are kept. The labels a
/// block gets are provisional; `finish()` resolves them to final ids, numbered in raster order of each object's
/// first pixel (skimage's `label`), and merges each object's moments.
///
/// Runs, not pixels, enter the union-find: an 8192x8192 mask with 20,000 objects has about 1.8 million runs,
/// and labelling it with moments takes about 0.3 s on one core (BENCHMARKS.md).
public struct ObjectLabeller: Sendable {
    public let width: Int, height: Int
    public let connectivity: Connectivity
    /// Intensity channels whose mean, minimum and maximum each object collects.
    public let channels: Int
    var parent: [UInt32] = [0]
    var key: [UInt32] = [0]
    var moments: ObjectMoments
    /// Provisional ids of the row above the current block row, and the bottom rows of the blocks labelled in it.
    var above: [UInt32], below: [UInt32]
    /// Provisional ids of the column left of the current block.
    var left: [UInt32] = []
    var nextX = 0, nextY = 0, blockRowHeight = 0

    public init(width: Int, height: Int, connectivity: Connectivity = .eight, channels: Int = 0) {
        self.width = width
        self.height = height
        self.connectivity = connectivity
        self.channels = channels
        moments = ObjectMoments(channels: channels)
        above = [UInt32](repeating: 0, count: width)
        below = above
    }

    /// Provisional labels so far (the size of `finish()`'s map).
    public var provisionalCount: Int { parent.count }

    mutating func root(_ label: UInt32) -> UInt32 {
        var r = label
        while parent[Int(r)] != r {
            parent[Int(r)] = parent[Int(parent[Int(r)])]  // path halving
            r = parent[Int(r)]
        }
        return r
    }

    mutating func join(_ a: UInt32, _ b: UInt32) {
        let ra = root(a), rb = root(b)
        if ra != rb { parent[Int(max(ra, rb))] = min(ra, rb) }
    }

    /// Labels the block at (`x`, `y`) of `width` x `height` pixels: `keys` row-major over the block (0: no
    /// object), `intensity` one row-major plane per channel (or none), provisional labels into `ids`. Blocks must
    /// tile the image in raster order (each block row of one height, left to right).
    public mutating func label(
        keys: [UInt32], x bx: Int, y by: Int, width bw: Int, height bh: Int, intensity: [[Float]] = [],
        into ids: inout [UInt32]
    ) {
        precondition(bx == nextX && by == nextY && bw > 0 && bh > 0, "blocks out of raster order")
        precondition(bx + bw <= width && by + bh <= height && keys.count == bw * bh, "block outside the image")
        precondition(intensity.count == channels, "intensity planes do not match the channels")
        if bx == 0 { blockRowHeight = bh } else { precondition(bh == blockRowHeight, "block row of mixed heights") }
        if ids.count != bw * bh { ids = [UInt32](repeating: 0, count: bw * bh) }
        let eight = connectivity == .eight
        if bx == 0 { left = [] }
        keys.withUnsafeBufferPointer { keys in
            ids.withUnsafeMutableBufferPointer { ids in
                for r in 0..<bh {
                    let gy = by + r
                    var x = 0
                    while x < bw {
                        let k = keys[r * bw + x]
                        if k == 0 {
                            ids[r * bw + x] = 0
                            x += 1
                            continue
                        }
                        let start = x
                        while x < bw && keys[r * bw + x] == k { x += 1 }
                        let end = x - 1
                        var label: UInt32 = 0
                        var last: UInt32 = 0
                        func touch(_ n: UInt32) {
                            guard n != 0, n != last, key[Int(n)] == k else { return }
                            last = n
                            if label == 0 { label = n } else { join(label, n) }
                        }
                        // The row above: the kept row for the block's first row, else the block's own (and the
                        // left block's last column).
                        if gy > 0 {
                            let lo = max(0, bx + start - (eight ? 1 : 0))
                            let hi = bx + end + (eight ? 1 : 0)
                            if r == 0 {
                                for g in lo...min(hi, width - 1) { touch(above[g]) }
                            } else {
                                for g in lo...min(hi, bx + bw - 1) {
                                    touch(g < bx ? left[r - 1] : ids[(r - 1) * bw + g - bx])
                                }
                            }
                        }
                        // The left block's column: beside the run's first pixel, and below-left of it.
                        if start == 0 && bx > 0 {
                            touch(left[r])
                            if eight && r + 1 < bh { touch(left[r + 1]) }
                        }
                        if label == 0 {
                            label = UInt32(parent.count)
                            parent.append(label)
                            key.append(k)
                            moments.append()
                        }
                        for i in (r * bw + start)...(r * bw + end) { ids[i] = label }
                        moments.addRun(Int(label), y: gy, x0: bx + start, x1: bx + end, first: gy * width + bx + start)
                        if channels > 0 {
                            for c in 0..<channels {
                                intensity[c].withUnsafeBufferPointer { plane in
                                    moments.addIntensity(
                                        Int(label), channel: c, plane[(r * bw + start)...(r * bw + end)])
                                }
                            }
                        }
                    }
                }
            }
        }
        left = (0..<bh).map { ids[$0 * bw + bw - 1] }
        for i in 0..<bw { below[bx + i] = ids[(bh - 1) * bw + i] }
        nextX = bx + bw
        if nextX == width {
            swap(&above, &below)
            nextX = 0
            nextY = by + bh
        }
    }

    /// The final id of every provisional label (index 0: 0) and the objects' measurements, by final id - 1.
    /// `keep` decides, from an object's measurement, whether it stays (its id becomes 0 otherwise; the kept are
    /// numbered without gaps).
    public mutating func finish(keep: (ObjectMeasurement) -> Bool = { _ in true }) -> ObjectTable {
        let n = parent.count
        var roots: [Int] = []
        for l in 1..<max(n, 1) {
            let r = Int(root(UInt32(l)))
            if r == l { roots.append(l) } else { moments.merge(l, into: r) }
        }
        roots.sort { moments.first[$0] < moments.first[$1] }
        var number = [UInt32](repeating: 0, count: n)
        var objects: [ObjectMeasurement] = []
        objects.reserveCapacity(roots.count)
        for r in roots {
            var m = moments.measurement(r, width: width, height: height)
            m.objectClass = Int(key[r])
            m.id = objects.count + 1
            guard keep(m) else { continue }
            objects.append(m)
            number[r] = UInt32(objects.count)
        }
        var finalID = [UInt32](repeating: 0, count: n)
        for l in 1..<max(n, 1) { finalID[l] = number[Int(root(UInt32(l)))] }
        return ObjectTable(finalID: finalID, objects: objects)
    }
}

/// What `ObjectLabeller.finish()` resolves: provisional label -> final id (0: background or dropped), and the
/// objects, by id - 1 (`objectClass` is the key the object was labelled by).
public struct ObjectTable: Sendable {
    public var finalID: [UInt32]
    public var objects: [ObjectMeasurement]

    /// Replaces provisional labels by final ids in place.
    public func resolve(_ ids: inout [UInt32]) {
        finalID.withUnsafeBufferPointer { map in
            ids.withUnsafeMutableBufferPointer { ids in
                for i in ids.indices { ids[i] = map[Int(ids[i])] }
            }
        }
    }
}
