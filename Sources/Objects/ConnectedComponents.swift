/// Which neighbours join two pixels of one object.
public enum Connectivity: Int, Sendable, CaseIterable, Codable {
    /// Edge neighbours (up, down, left, right).
    case four = 4
    /// Edge and corner neighbours.
    case eight = 8
}

/// Objects of a label mask: maximal connected sets of pixels of one non-zero class (skimage's `label` with
/// `background=0`), numbered 1, 2, ... in raster order of their first pixel.
public struct ConnectedComponents: Sendable {
    public let width: Int, height: Int
    /// Object id per pixel (0 where the class is 0), row-major.
    public let ids: [Int32]
    /// Class of each object, by id - 1.
    public let classes: [Int]
    public var count: Int { classes.count }

    /// The objects of `labels` (`width` x `height`, row-major class ids; class 0 is background).
    /// Two-pass union-find labelling: a first pass links each pixel to its earlier neighbours of the same class,
    /// a second resolves every pixel to its set's first-seen number.
    public init<L: BinaryInteger>(labels: [L], width: Int, height: Int, connectivity: Connectivity = .eight) {
        precondition(labels.count == width * height, "labels do not match \(width)x\(height)")
        self.width = width
        self.height = height
        var parent = [Int32](repeating: -1, count: labels.count)
        func root(_ i: Int32) -> Int32 {
            var r = i
            while parent[Int(r)] != r { r = parent[Int(r)] }
            var j = i
            while parent[Int(j)] != r {
                let next = parent[Int(j)]
                parent[Int(j)] = r
                j = next
            }
            return r
        }
        func join(_ a: Int32, _ b: Int32) {
            let ra = root(a), rb = root(b)
            if ra != rb { parent[Int(max(ra, rb))] = min(ra, rb) }  // the earlier pixel stays the root
        }
        let neighbours = connectivity == .eight ? [(-1, -1), (0, -1), (1, -1), (-1, 0)] : [(0, -1), (-1, 0)]
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                guard labels[i] != 0 else { continue }
                parent[i] = Int32(i)
                for (dx, dy) in neighbours {
                    let nx = x + dx, ny = y + dy
                    guard nx >= 0, nx < width, ny >= 0 else { continue }
                    let j = ny * width + nx
                    if labels[j] == labels[i] { join(Int32(i), Int32(j)) }
                }
            }
        }
        var number = [Int32](repeating: 0, count: labels.count)
        var ids = [Int32](repeating: 0, count: labels.count)
        var classes: [Int] = []
        for i in 0..<labels.count where labels[i] != 0 {
            let r = Int(root(Int32(i)))
            if number[r] == 0 {
                classes.append(Int(labels[i]))
                number[r] = Int32(classes.count)
            }
            ids[i] = number[r]
        }
        self.ids = ids
        self.classes = classes
    }
}
