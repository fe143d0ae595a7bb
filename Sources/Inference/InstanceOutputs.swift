import Foundation
import TesseraData
import TesseraEngine
import TesseraObjects

/// `segment --instances`: the objects of each finished mask, written as a label image (`OUT/instances/<rel>`,
/// 16-bit, 32-bit TIFF past 65535 objects) and a table (`OUT/objects/<rel>.csv`), scored against truth masks.
///
/// Connected components stream: the saved mask is read back chunk by chunk into an `ObjectLabeller`, its
/// provisional labels spill to a scratch file and are rewritten as final ids tile by tile, so memory follows the
/// chunk, not the image. The watershed and hole filling need the whole slice (and the watershed the model's
/// probabilities, gathered while the slice streams); they are checked against the memory budget.
struct InstanceStage {
    let settings: InstanceSettings
    let classNames: [String]
    let chunk: Int

    /// What the stage keeps per pixel when a slice is whole in memory: mask, ids, the watershed's maps.
    static let wholeBytesPerPixel = 48

    /// Whether a slice must be whole in memory: for hole filling, the membrane method's flood of the whole image,
    /// and the watershed of PNG outputs (TIFF outputs stream it in bands, `watershedBands`).
    func needsWholeSlice(tiff: Bool) -> Bool {
        settings.maxHole > 0 || settings.method == .membrane || (settings.method == .watershed && !tiff)
    }

    /// Refuses, before any work, an image the settings cannot handle within the memory budget.
    func check(width: Int, height: Int, tiff: Bool, file: String) throws {
        if settings.method == .watershed && tiff {
            // The narrowest band the streamed watershed works on: one tile row of core and its two halos.
            let (bytes, overflow) = width.multipliedReportingOverflow(
                by: (256 + 2 * Self.halo) * Self.wholeBytesPerPixel)
            guard !overflow, bytes <= ModelInput.memoryBudget else {
                throw FileError(
                    file: file,
                    reason:
                        "the watershed's bands of a \(width)-pixel-wide image pass the \(ModelInput.memoryBudget >> 30) "
                        + "GiB budget; connected components stream at any width")
            }
        }
        guard needsWholeSlice(tiff: tiff) else { return }
        let (bytes, overflow) = (width * height).multipliedReportingOverflow(by: Self.wholeBytesPerPixel)
        guard !overflow, bytes <= ModelInput.memoryBudget else {
            throw FileError(
                file: file,
                reason: "--max-hole, --instances membrane, and watershed with PNG outputs, need a whole "
                    + "\(width)x\(height) slice in memory (over the \(ModelInput.memoryBudget >> 30) GiB budget); with --output-format "
                    + "tiff the watershed and connected components stream at any size")
        }
    }

    /// One slice's objects: ids (whole, when kept) and measurements.
    struct Slice {
        var ids: [UInt32]?
        var objects: [ObjectMeasurement]
    }

    /// The objects of a whole slice: its class mask, the model's probability per class (x 65535) for the
    /// watershed, and the input image for the intensities.
    func objects(mask: [UInt16], probability: [[UInt16]], image: Image) -> Slice {
        let found = Instances(
            mask: mask, width: image.width, height: image.height, settings: settings,
            probability: probability.isEmpty ? nil : { c in ClassProbabilities.fractions(probability[c]) },
            intensity: Self.planes(image))
        return Slice(ids: found.ids, objects: found.objects)
    }

    /// Streams connected components of one slice of the saved `mask` (intensities from `image`), writing
    /// provisional labels to `spill`; `keepIDs` also returns the final ids whole.
    func components(
        mask: PixelSource, image: PixelSource, slice: Int, spill: URL?, keepIDs: Bool
    ) throws -> (slice: Slice, table: ObjectTable) {
        let w = mask.width, h = mask.height
        var labeller = ObjectLabeller(
            width: w, height: h, connectivity: settings.connectivity, channels: image.channels)
        var whole = keepIDs ? [UInt32](repeating: 0, count: w * h) : []
        var out: FileHandle?
        if let spill {
            guard FileManager.default.createFile(atPath: spill.path, contents: nil) else {
                throw FileError(file: spill.path, reason: "cannot create the scratch file")
            }
            out = try FileHandle(forWritingTo: spill)
        }
        defer { try? out?.close() }
        let decoder = MaskDecoder(kind: .label, classes: classNames.count)
        var ids: [UInt32] = []
        for window in blocks(width: w, height: h) {
            let keys = try decoder.labels(from: try mask.window(window, slice: slice), file: mask.file).map {
                UInt32(truncatingIfNeeded: $0)
            }
            labeller.label(
                keys: keys, x: window.x, y: window.y, width: window.width, height: window.height,
                intensity: Self.planes(try image.window(window, slice: slice)), into: &ids)
            try out?.write(contentsOf: ids.withUnsafeBytes { Data($0) })
            if keepIDs {
                for r in 0..<window.height {
                    for c in 0..<window.width { whole[(window.y + r) * w + window.x + c] = ids[r * window.width + c] }
                }
            }
        }
        let table = labeller.finish { settings.keeps($0, width: w, height: h) }
        if keepIDs { table.resolve(&whole) }
        return (Slice(ids: keepIDs ? whole : nil, objects: table.objects), table)
    }

    /// The chunk grid the mask is read in (raster order, as the labeller and the TIFF tiles need).
    func blocks(width w: Int, height h: Int) -> [PixelWindow] {
        stride(from: 0, to: h, by: chunk).flatMap { y in
            stride(from: 0, to: w, by: chunk).map { x in
                PixelWindow(x: x, y: y, width: min(chunk, w - x), height: min(chunk, h - y))
            }
        }
    }

    /// The label image's bit depth for `count` objects.
    static func bitDepth(objects count: Int) -> Int { count <= Int(UInt16.max) ? 16 : 32 }

    /// Writes one TIFF page of final ids: from a whole array, or from the spilled provisional labels through
    /// `table`.
    func writePage(
        _ writer: TIFFWriter, width w: Int, height h: Int, objects: Int, ids: [UInt32]?, spill: URL?,
        table: ObjectTable?, blocks spilled: [PixelWindow]? = nil
    ) throws {
        var layout = TIFFLayout(width: w, height: h, channels: 1, bitDepth: Self.bitDepth(objects: objects))
        layout.unsigned32 = layout.bitDepth == 32
        try writer.beginPage(layout)
        let input = try spill.map { try FileHandle(forReadingFrom: $0) }
        defer { try? input?.close() }
        for window in spilled ?? blocks(width: w, height: h) {
            let n = window.width * window.height
            var block: [UInt32]
            if let ids {
                block = []
                block.reserveCapacity(n)
                for r in 0..<window.height {
                    let start = (window.y + r) * w + window.x
                    block += ids[start..<(start + window.width)]
                }
            } else if let input, let spill {
                block = try Self.readLabels(input, count: n, file: spill)
                table?.resolve(&block)
            } else {
                throw FileError(file: writer.file, reason: "no object ids to write")
            }
            if layout.unsigned32 {
                try writer.writeTiles(
                    labels: block, width: window.width, height: window.height, x: window.x, y: window.y)
            } else {
                try writer.writeTiles(
                    Image(
                        width: window.width, height: window.height, channels: 1,
                        samples: .uint16(block.map { UInt16(truncatingIfNeeded: $0) })),
                    x: window.x, y: window.y)
            }
        }
        try writer.endPage()
    }

    /// `objects/<rel>.csv`: one row per object (a `slice` column for multi-slice images).
    func table(_ slices: [[ObjectMeasurement]], channels: Int) -> String {
        let many = slices.count > 1
        let intensity =
            channels == 1
            ? ["mean_intensity", "min_intensity", "max_intensity"]
            : (0..<channels).flatMap { ["mean_intensity_\($0)", "min_intensity_\($0)", "max_intensity_\($0)"] }
        var csv =
            ((many ? ["slice"] : [])
            + [
                "id", "class", "area", "centroid_x", "centroid_y", "bbox_x", "bbox_y", "bbox_width", "bbox_height",
                "equivalent_diameter", "eccentricity"
            ] + intensity).joined(separator: ",") + "\n"
        for (s, objects) in slices.enumerated() {
            for o in objects {
                var fields = many ? ["\(s + 1)"] : []
                let name = o.objectClass < classNames.count ? classNames[o.objectClass] : "\(o.objectClass)"
                fields += [
                    "\(o.id)", BatchReport<SegmentRecord>.csvField(name), "\(o.area)",
                    String(format: "%.3f", o.centroidX), String(format: "%.3f", o.centroidY), "\(o.box.x)",
                    "\(o.box.y)", "\(o.box.width)", "\(o.box.height)", String(format: "%.3f", o.equivalentDiameter),
                    String(format: "%.4f", o.eccentricity)
                ]
                for c in 0..<channels {
                    fields += [
                        String(format: "%.3f", o.meanIntensity[c]), "\(o.minIntensity[c])", "\(o.maxIntensity[c])"
                    ]
                }
                csv += fields.joined(separator: ",") + "\n"
            }
        }
        return csv
    }

    /// The class of each object by id - 1, per slice, from a table `table(_:channels:)` wrote (an earlier
    /// run's outputs).
    func classes(fromTable url: URL) throws -> [[Int]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ","), let column = header.firstIndex(of: "class"),
            let idColumn = header.firstIndex(of: "id")
        else { throw FileError(file: url.path, reason: "not an objects table (no id and class columns)") }
        let sliceColumn = header.firstIndex(of: "slice")
        lines.removeFirst()
        var slices: [[Int]] = [[]]
        for line in lines {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == header.count, let id = Int(fields[idColumn]), id >= 1,
                let c = classNames.firstIndex(of: fields[column])
            else { throw FileError(file: url.path, reason: "malformed row '\(line.prefix(80))'") }
            let s = sliceColumn.flatMap { Int(fields[$0]) }.map { $0 - 1 } ?? 0
            guard (0..<65536).contains(s) else { throw FileError(file: url.path, reason: "slice out of range") }
            while slices.count <= s { slices.append([]) }
            guard id == slices[s].count + 1 else {
                throw FileError(file: url.path, reason: "object ids are not 1, 2, ... in order")
            }
            slices[s].append(c)
        }
        return slices
    }

    /// Objects of each class.
    func counts(_ slices: [[Int]]) -> [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for classes in slices { for c in classes where c < counts.count { counts[c] += 1 } }
        return counts
    }

    /// Scores of `ids` (classes by id - 1) against a truth class mask.
    func agreement(ids: [UInt32], classes: [Int], truth: [Int32], width w: Int, height h: Int) -> [String: Double] {
        SegmentationAgreement(
            prediction: ids, classes: classes, truthMask: truth.map { UInt16(clamping: max(0, $0)) }, width: w,
            height: h, settings: settings
        ).metrics
    }

    /// One float plane per channel of `image` (its stored values: 0-255, 0-65535 or floats).
    static func planes(_ image: Image) -> [[Float]] {
        let n = image.width * image.height, ch = image.channels
        return (0..<ch).map { c in
            switch image.samples {
            case .uint8(let v): return (0..<n).map { Float(v[$0 * ch + c]) }
            case .uint16(let v): return (0..<n).map { Float(v[$0 * ch + c]) }
            case .float32(let v): return (0..<n).map { v[$0 * ch + c] }
            }
        }
    }
}
