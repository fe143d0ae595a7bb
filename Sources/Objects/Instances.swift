/// How a class mask becomes objects.
public enum InstanceMethod: String, Sendable, CaseIterable, Codable {
    /// Connected components of each class.
    case components
    /// Connected regions of each class split by a seeded watershed (touching objects of one class).
    case watershed
    /// Cells of a boundary map (class 0 the membrane, as ISBI's EM masks): seeds at the peaks of the cell
    /// probability (1 - the membrane's; h-maxima of depth `seed_depth`), then the whole image, membrane included,
    /// flooded from them by decreasing cell probability; objects with fewer than `min_size` cell pixels
    /// (probability > 0.5) give their pixels to their neighbours. A gap in a membrane that the probability still
    /// dips across does not merge two cells, and every pixel ends in a cell, so no boundary is left to thin.
    case membrane

    /// Whether the method reads the model's class probabilities.
    public var usesProbability: Bool { self != .components }
}

/// Settings of `segment --instances` (and of how truth masks become objects for the object metrics).
public struct InstanceSettings: Equatable, Sendable, Codable {
    public var method = InstanceMethod.components
    public var connectivity = Connectivity.eight
    /// Watershed seeds.
    public var seeds = SeedSource.distance
    /// How far a peak must rise above the pass to a higher one to seed its own object (h of the h-maxima), in
    /// the seed map's units: pixels (distance) or probability; nil: 2 pixels, or 0.1.
    public var seedDepth: Double?
    /// Objects of fewer pixels are dropped (skimage's `remove_small_objects`).
    public var minSize = 0
    /// Holes of at most this many pixels (regions of other classes that the object encloses, not touching the
    /// border) become the object's class first (skimage's `remove_small_holes`).
    public var maxHole = 0
    /// Objects touching the image border are dropped (skimage's `clear_border`).
    public var excludeBorder = false

    public init() {}

    public var depth: Double { seedDepth ?? (method == .watershed && seeds == .distance ? 2 : 0.1) }

    /// Whether an object stays in a `width` x `height` image.
    public func keeps(_ object: ObjectMeasurement, width: Int, height: Int) -> Bool {
        object.area >= minSize && !(excludeBorder && object.touchesBorder(width: width, height: height))
    }
}

/// The objects of one class mask: an id per pixel (0: background or dropped), numbered in raster order of their
/// first pixel, with their measurements. Class 0 is background; for membrane-style data (ISBI: class 0 the
/// boundary) the regions the boundary encloses are the objects.
public struct Instances: Sendable {
    public let width: Int, height: Int
    public let ids: [UInt32]
    public let objects: [ObjectMeasurement]

    /// Objects per class (index = class) over `classes` classes.
    public func counts(classes: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for o in objects where o.objectClass < classes { counts[o.objectClass] += 1 }
        return counts
    }

    /// The objects of `mask` (class per pixel, row-major). `probability(c)`: the model's probability of class
    /// `c` per pixel, which the watershed floods (the distance to the region's edge without it); `intensity`:
    /// one plane per channel to measure.
    public init(
        mask: [UInt16], width w: Int, height h: Int, settings: InstanceSettings,
        probability: ((Int) -> [Float])? = nil, intensity: [[Float]] = []
    ) {
        width = w
        height = h
        var keys = mask.map { UInt32($0) }
        var seen = [Bool](repeating: false, count: Int(UInt16.max) + 1)
        for m in mask { seen[Int(m)] = true }
        let present = (1..<seen.count).filter { seen[$0] }.map(UInt32.init)
        if settings.maxHole > 0 {
            for c in present { Self.fillHoles(&keys, of: c, width: w, height: h, settings: settings) }
        }
        let keep = { (o: ObjectMeasurement) in settings.keeps(o, width: w, height: h) }
        switch settings.method {
        case .components:
            let found = ConnectedComponents(
                keys: keys, width: w, height: h, connectivity: settings.connectivity, intensity: intensity, keep: keep)
            ids = found.ids
            objects = found.objects
        case .watershed:
            let frozen = keys
            var planes: [Int: [Float]] = [:]
            if let probability { for c in present { planes[Int(c)] = probability(Int(c)) } }
            let (regions, classOf, _) = Watershed.split(
                keys: frozen, width: w, height: h, connectivity: settings.connectivity, seeds: settings.seeds,
                depth: Float(settings.depth), probability: planes.isEmpty ? nil : planes)
            let found = ConnectedComponents(
                keys: regions, width: w, height: h, connectivity: settings.connectivity, intensity: intensity,
                keep: keep)
            ids = found.ids
            objects = found.objects.map {
                var o = $0
                o.objectClass = Int(classOf[o.objectClass])
                return o
            }
        case .membrane:
            let cell = probability.map { p in p(0).map { 1 - $0 } } ?? keys.map { $0 == 0 ? 0 : 1 }
            let labels = Self.membraneCells(
                cell: cell, width: w, height: h, settings: settings, keepsMembrane: probability == nil)
            let found = ConnectedComponents(
                keys: labels, width: w, height: h, connectivity: settings.connectivity, intensity: intensity,
                keep: keep)
            ids = found.ids
            // An object's class: the mask's at its first (raster order) pixel of a cell class; 1 if it has none.
            var classOf = [Int](repeating: 0, count: found.objects.count + 1)
            for (i, id) in found.ids.enumerated() where id != 0 && classOf[Int(id)] == 0 && keys[i] != 0 {
                classOf[Int(id)] = Int(keys[i])
            }
            objects = found.objects.enumerated().map { k, object in
                var o = object
                o.objectClass = max(1, classOf[k + 1])
                return o
            }
        }
    }

    /// The membrane method's cell label per pixel. Without probabilities (`keepsMembrane`: a truth mask) the
    /// membrane pixels stay 0 and the seeds are the cells' connected regions.
    static func membraneCells(
        cell: [Float], width w: Int, height h: Int, settings: InstanceSettings, keepsMembrane: Bool
    ) -> [UInt32] {
        let all = keepsMembrane ? cell.map { $0 > 0 ? UInt32(1) : 0 } : [UInt32](repeating: 1, count: w * h)
        func flood(_ seeds: [Int]) -> [UInt32] {
            Watershed.flood(
                keys: all, surface: cell, seeds: seeds, width: w, height: h, connectivity: settings.connectivity)
        }
        let seeds = Watershed.seeds(
            keys: all, seedMap: cell, width: w, height: h, depth: Float(settings.depth),
            connectivity: settings.connectivity)
        let labels = flood(seeds)
        guard settings.minSize > 0 else { return labels }
        // Small cells (counting the pixels the model calls cell, not the membrane they flooded) are dropped as
        // seeds and the image flooded again, so their pixels join a neighbour.
        var area = [Int](repeating: 0, count: Int(labels.max() ?? 0) + 1)
        for (l, p) in zip(labels, cell) where p > 0.5 { area[Int(l)] += 1 }
        let kept = seeds.filter { area[Int(labels[$0])] >= settings.minSize }
        return kept.count < seeds.count && !kept.isEmpty ? flood(kept) : labels
    }

    /// Gives class `c` to the regions of other classes it encloses that have at most `maxHole` pixels (holes
    /// connect the other way round: 4-neighbours for 8-connected objects).
    static func fillHoles(_ keys: inout [UInt32], of c: UInt32, width w: Int, height h: Int, settings: InstanceSettings)
    {
        let outside = keys.map { $0 == c ? UInt32(0) : 1 }
        let holes = ConnectedComponents(
            keys: outside, width: w, height: h, connectivity: settings.connectivity == .eight ? .four : .eight
        ) { $0.area <= settings.maxHole && !$0.touchesBorder(width: w, height: h) }
        guard !holes.objects.isEmpty else { return }
        for i in keys.indices where holes.ids[i] != 0 { keys[i] = c }
    }
}

extension SegmentationAgreement {
    /// Scores predicted objects (`ids`, `classes` by id - 1) against a truth class mask, made into objects the
    /// way predictions are (connected components under the same connectivity, size and border rules: the
    /// watershed needs probabilities a truth mask does not have).
    public init(
        prediction ids: [UInt32], classes: [Int], truthMask: [UInt16], width w: Int, height h: Int,
        settings: InstanceSettings
    ) {
        var truthSettings = settings
        truthSettings.method = .components
        let truth = Instances(mask: truthMask, width: w, height: h, settings: truthSettings)
        self.init(
            truth: truth.ids, prediction: ids, width: w, height: h, truthClasses: truth.objects.map(\.objectClass),
            predictionClasses: classes)
    }
}
