import Foundation
import TesseraData
import TesseraEngine
import TesseraObjects

extension InstanceStage {
    /// Rows above and below each band's core that the watershed sees too: an object whose pixels lie within
    /// this many rows of its seed comes out of every band that holds the seed the same, so bands stitch it.
    static let halo = 128

    /// Band cores for a `width` x `height` slice: the chunk's rows (a multiple of the 256-row TIFF tile), fewer
    /// if a band with its halos would pass a quarter of the memory budget.
    func bandCore(width: Int, height: Int) -> Int {
        let rows = ModelInput.memoryBudget / 4 / max(1, width * Self.wholeBytesPerPixel)
        return min(height, chunk, max(256, (rows - 2 * Self.halo) / 256 * 256))
    }

    /// The watershed of one slice band by band, from the saved mask and the model's probabilities (a TIFF with a
    /// page per class and slice, class-major, as `segment` writes them): each band's core plus `halo` rows
    /// either side is split (`Watershed.split`); every core pixel takes the id of its object's seed (its
    /// position in the image), so an object cut by a band edge but seeded at the same pixel in both bands
    /// becomes one. The ids are written to `spill`, then labelled into connected objects and measured by the
    /// block labeller through `resolved` (provisional labels there), band by band.
    func watershedBands(
        mask: PixelSource, probability: PixelSource, slices: Int, image: PixelSource, slice: Int, spill: URL,
        resolved: URL
    ) throws -> (table: ObjectTable, blocks: [PixelWindow]) {
        let w = mask.width, h = mask.height, core = bandCore(width: w, height: h)
        let decoder = MaskDecoder(kind: .label, classes: classNames.count)
        var idOfSeed: [Int: UInt32] = [:]
        var blocks: [PixelWindow] = []
        guard FileManager.default.createFile(atPath: spill.path, contents: nil) else {
            throw FileError(file: spill.path, reason: "cannot create the scratch file")
        }
        let out = try FileHandle(forWritingTo: spill)
        defer { try? out.close() }
        for y0 in stride(from: 0, to: h, by: core) {
            let y1 = min(h, y0 + core), top = max(0, y0 - Self.halo), bottom = min(h, y1 + Self.halo)
            let window = PixelWindow(x: 0, y: top, width: w, height: bottom - top)
            let keys = try decoder.labels(from: try mask.window(window, slice: slice), file: mask.file).map {
                UInt32(truncatingIfNeeded: $0)
            }
            var present = Set<Int>()
            for k in keys where k != 0 { present.insert(Int(k)) }
            var planes: [Int: [Float]] = [:]
            for c in present {
                let page = try probability.window(window, slice: c * slices + slice)
                planes[c] = (0..<(window.width * window.height)).map {
                    Float(page.sample(x: $0 % w, y: $0 / w, channel: 0)) / 65535
                }
            }
            let split = Watershed.split(
                keys: keys, width: w, height: window.height, connectivity: settings.connectivity,
                seeds: settings.seeds, depth: Float(settings.depth), probability: planes)
            var ids = [UInt32](repeating: 0, count: w * (y1 - y0))
            for i in ids.indices {
                let label = Int(split.labels[(y0 - top) * w + i])
                guard label != 0 else { continue }
                let seed = split.seeds[label] + top * w  // the seed's index in the slice
                if let id = idOfSeed[seed] {
                    ids[i] = id
                } else {
                    let id = UInt32(idOfSeed.count + 1)
                    idOfSeed[seed] = id
                    ids[i] = id
                }
            }
            try out.write(contentsOf: ids.withUnsafeBytes { Data($0) })
            blocks.append(PixelWindow(x: 0, y: y0, width: w, height: y1 - y0))
        }
        try out.close()
        // The stitched ids into objects: connected pixels of one id, numbered and measured as components are.
        var labeller = ObjectLabeller(
            width: w, height: h, connectivity: settings.connectivity, channels: image.channels)
        var classOf: [UInt32: Int] = [:]
        let input = try FileHandle(forReadingFrom: spill)
        defer { try? input.close() }
        guard FileManager.default.createFile(atPath: resolved.path, contents: nil) else {
            throw FileError(file: resolved.path, reason: "cannot create the scratch file")
        }
        let provisional = try FileHandle(forWritingTo: resolved)
        defer { try? provisional.close() }
        var labels: [UInt32] = []
        for block in blocks {
            let keys = try Self.readLabels(input, count: block.width * block.height, file: spill)
            let classes = try decoder.labels(from: try mask.window(block, slice: slice), file: mask.file)
            for i in keys.indices where keys[i] != 0 { classOf[keys[i]] = Int(classes[i]) }
            labeller.label(
                keys: keys, x: 0, y: block.y, width: w, height: block.height,
                intensity: Self.planes(try image.window(block, slice: slice)), into: &labels)
            try provisional.write(contentsOf: labels.withUnsafeBytes { Data($0) })
        }
        var table = labeller.finish { settings.keeps($0, width: w, height: h) }
        for i in table.objects.indices {
            table.objects[i].objectClass = classOf[UInt32(table.objects[i].objectClass)] ?? 0
        }
        return (table, blocks)
    }

    /// The next `count` labels of a scratch file.
    static func readLabels(_ input: FileHandle, count: Int, file: URL) throws -> [UInt32] {
        let data = try input.read(upToCount: count * 4) ?? Data()
        guard data.count == count * 4 else { throw FileError(file: file.path, reason: "the scratch file is short") }
        return data.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
    }

    /// Final ids of a whole slice from spilled provisional labels (for scores against truth).
    func resolvedIDs(_ spill: URL, blocks: [PixelWindow], table: ObjectTable, width w: Int, height h: Int) throws
        -> [UInt32]
    {
        let input = try FileHandle(forReadingFrom: spill)
        defer { try? input.close() }
        var ids = [UInt32](repeating: 0, count: w * h)
        for block in blocks {
            var part = try Self.readLabels(input, count: block.width * block.height, file: spill)
            table.resolve(&part)
            for r in 0..<block.height {
                for c in 0..<block.width { ids[(block.y + r) * w + block.x + c] = part[r * block.width + c] }
            }
        }
        return ids
    }
}
