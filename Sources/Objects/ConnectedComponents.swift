/// Which neighbours join two pixels of one object.
public enum Connectivity: Int, Sendable, CaseIterable, Codable {
    /// Edge neighbours (up, down, left, right).
    case four = 4
    /// Edge and corner neighbours.
    case eight = 8
}

/// Objects of a whole label mask in memory: maximal connected sets of pixels of one non-zero class (skimage's
/// `label` with `background=0`), numbered 1, 2, ... in raster order of their first pixel, with their
/// measurements. `ObjectLabeller` with the image as one block.
public struct ConnectedComponents: Sendable {
    public let width: Int, height: Int
    /// Object id per pixel (0 where the class is 0), row-major.
    public let ids: [UInt32]
    /// Measurements by id - 1 (`objectClass` is the pixels' class).
    public let objects: [ObjectMeasurement]
    /// Class of each object, by id - 1.
    public var classes: [Int] { objects.map(\.objectClass) }
    public var count: Int { objects.count }

    /// The objects of `labels` (`width` x `height`, row-major class ids; class 0 is background); `intensity`:
    /// one row-major plane per channel to measure; `keep` drops the objects it refuses (ids renumbered).
    public init<L: BinaryInteger>(
        labels: [L], width: Int, height: Int, connectivity: Connectivity = .eight, intensity: [[Float]] = [],
        keep: (ObjectMeasurement) -> Bool = { _ in true }
    ) {
        self.init(
            keys: labels.map { UInt32(truncatingIfNeeded: $0) }, width: width, height: height,
            connectivity: connectivity, intensity: intensity, keep: keep)
    }

    public init(
        keys: [UInt32], width: Int, height: Int, connectivity: Connectivity = .eight, intensity: [[Float]] = [],
        keep: (ObjectMeasurement) -> Bool = { _ in true }
    ) {
        self.width = width
        self.height = height
        var labeller = ObjectLabeller(
            width: width, height: height, connectivity: connectivity, channels: intensity.count)
        var ids: [UInt32] = []
        if width > 0 && height > 0 {
            labeller.label(keys: keys, x: 0, y: 0, width: width, height: height, intensity: intensity, into: &ids)
        }
        let table = labeller.finish(keep: keep)
        table.resolve(&ids)
        self.ids = ids
        objects = table.objects
    }
}
