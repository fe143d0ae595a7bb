import Foundation
import TesseraData
import TesseraEngine
import TesseraObjects

/// `segment --instances` as a consumer of the chunks: the objects of each slice, written as a label image
/// (`OUT/instances/<rel>`, 16-bit, 32-bit TIFF past 65535 objects) and a table (`OUT/objects/<rel>.csv`), and
/// scored against truth masks.
///
/// Connected components are labelled from the chunks' labels in memory as they arrive (the chunk grid is the
/// labeller's block grid, raster order); the provisional labels spill to a scratch file (TIFF) or stay whole (PNG,
/// or for scores), and each slice's page is written when the slice ends. Hole filling and the watershed of PNG
/// outputs gather the whole slice. Two cases read the finished mask back instead: the streamed watershed of TIFF
/// outputs, whose bands reach 128 rows past a chunk row (`InstanceStage.watershedBands`), and an image resumed
/// after a killed run, whose earlier chunks this process never saw.
final class InstanceConsumer: ChunkConsumer {
    enum Mode { case whole, streamed, readBack }

    let stage: InstanceStage
    let mode: Mode
    let tiff: Bool
    let width: Int, height: Int, slices: Int
    let source: PixelSource
    let truth: PixelSource?
    let truthDecoder: MaskDecoder
    /// The label image, its objects table, the saved mask (read back) and the watershed's probabilities.
    let url: URL, tableURL: URL, maskURL: URL, probabilityURL: URL
    /// Whether the probabilities were written for the watershed alone (removed at the end).
    let probabilityIsScratch: Bool
    /// One slice's scores against its truth.
    let score: (_ ids: [UInt32], _ classes: [Int], _ truth: [Int32]) -> [String: Double]
    let keepIDs: Bool

    private var sliceMask: [UInt16] = [], sliceProbability: [[UInt16]] = []
    private var labeller: ObjectLabeller?
    private var labellerSlice = -1
    private var wholeIDs: [UInt32] = []
    private var spill: FileHandle?
    private var pages: TIFFWriter?
    private var classes: [[Int]] = []
    private var tables: [[ObjectMeasurement]] = []
    private var scores: [[String: Double]] = []
    private var channels: Int
    /// The ids of the last slice (PNG outputs: the overlay's outlines).
    private(set) var lastIDs: [UInt32]?

    var scratch: URL { Self.hidden(url, "scratch") }
    var stitched: URL { Self.hidden(url, "stitched") }
    var partial: URL { Self.hidden(url, "partial") }

    static func hidden(_ url: URL, _ suffix: String) -> URL {
        url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + "." + suffix)
    }

    init(
        stage: InstanceStage, tiff: Bool, resumed: Bool, source: PixelSource, truth: PixelSource?,
        truthDecoder: MaskDecoder, url: URL, tableURL: URL, maskURL: URL, probabilityURL: URL,
        probabilityIsScratch: Bool, score: @escaping ([UInt32], [Int], [Int32]) -> [String: Double]
    ) throws {
        self.stage = stage
        self.tiff = tiff
        width = source.width
        height = source.height
        slices = source.slices
        self.source = source
        self.truth = truth
        self.truthDecoder = truthDecoder
        self.url = url
        self.tableURL = tableURL
        self.maskURL = maskURL
        self.probabilityURL = probabilityURL
        self.probabilityIsScratch = probabilityIsScratch
        self.score = score
        channels = source.channels
        keepIDs = !tiff || truth != nil
        if stage.needsWholeSlice(tiff: tiff) {
            mode = .whole
        } else if resumed || stage.settings.method == .watershed {
            mode = .readBack
        } else {
            mode = .streamed
        }
        for folder in [url, tableURL] {
            try FileManager.default.createDirectory(
                at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
        }
    }

    var needs: ChunkNeeds {
        switch mode {
        case .whole: return stage.settings.method.usesProbability ? .probability : []
        case .streamed: return .image
        case .readBack: return []
        }
    }

    func consume(_ chunk: SegmentChunk) throws {
        let w = chunk.window
        switch mode {
        case .readBack: return
        case .whole:
            if sliceMask.isEmpty {
                sliceMask = [UInt16](repeating: 0, count: width * height)
                if needs.contains(.probability) {
                    sliceProbability = [[UInt16]](repeating: sliceMask, count: chunk.probability.count)
                }
            }
            for r in 0..<w.height {
                let to = (w.y + r) * width + w.x, from = r * w.width
                for x in 0..<w.width { sliceMask[to + x] = chunk.labels[from + x] }
                for c in sliceProbability.indices {
                    for x in 0..<w.width { sliceProbability[c][to + x] = chunk.probability[c][from + x] }
                }
            }
        case .streamed:
            if labellerSlice != chunk.slice { try startSlice(chunk.slice) }
            guard let image = chunk.image else { throw FileError(file: source.file, reason: "no input pixels") }
            var ids: [UInt32] = []
            labeller?.label(
                keys: chunk.labels.map { UInt32($0) }, x: w.x, y: w.y, width: w.width, height: w.height,
                intensity: InstanceStage.planes(image), into: &ids)
            if keepIDs {
                for r in 0..<w.height {
                    for c in 0..<w.width { wholeIDs[(w.y + r) * width + w.x + c] = ids[r * w.width + c] }
                }
            } else {
                try spill?.write(contentsOf: ids.withUnsafeBytes { Data($0) })
            }
        }
    }

    /// A fresh labeller (and scratch file or id array) for slice `s`.
    private func startSlice(_ s: Int) throws {
        labellerSlice = s
        labeller = ObjectLabeller(
            width: width, height: height, connectivity: stage.settings.connectivity, channels: source.channels)
        if keepIDs {
            wholeIDs = [UInt32](repeating: 0, count: width * height)
        } else {
            try? spill?.close()
            guard FileManager.default.createFile(atPath: scratch.path, contents: nil) else {
                throw FileError(file: scratch.path, reason: "cannot create the scratch file")
            }
            spill = try FileHandle(forWritingTo: scratch)
        }
    }

    func finishSlice(_ s: Int) throws {
        switch mode {
        case .readBack: return
        case .whole:
            let image = try source.window(PixelWindow(x: 0, y: 0, width: width, height: height), slice: s)
            let found = stage.objects(mask: sliceMask, probability: sliceProbability, image: image)
            (sliceMask, sliceProbability) = ([], [])
            try emit(s, found, table: nil, bands: nil)
        case .streamed:
            if labellerSlice != s { try startSlice(s) }  // a slice with no chunk cannot happen; kept total
            guard var labeller else { return }
            try spill?.close()
            spill = nil
            let table = labeller.finish { stage.settings.keeps($0, width: width, height: height) }
            if keepIDs { table.resolve(&wholeIDs) }
            let found = InstanceStage.Slice(ids: keepIDs ? wholeIDs : nil, objects: table.objects)
            wholeIDs = []
            self.labeller = nil
            try emit(s, found, table: table, bands: nil)
        }
    }

    /// Records, scores and writes one slice's objects (its TIFF page, or the PNG label image).
    private func emit(_ s: Int, _ found: InstanceStage.Slice, table: ObjectTable?, bands: [PixelWindow]?) throws {
        classes.append(found.objects.map(\.objectClass))
        tables.append(found.objects)
        channels = found.objects.first?.meanIntensity.count ?? channels
        if let truth, let ids = found.ids {
            let full = PixelWindow(x: 0, y: 0, width: width, height: height)
            let labels = try truthDecoder.labels(from: try truth.window(full, slice: s), file: truth.file)
            scores.append(score(ids, classes[s], labels))
        }
        if tiff {
            if pages == nil {
                let bytes = Double(width) * Double(height) * 4 * Double(slices)
                pages = try TIFFWriter(url: partial, bigTIFF: bytes > Double(1 << 31))
            }
            guard let pages else { return }
            try stage.writePage(
                pages, width: width, height: height, objects: found.objects.count,
                ids: bands == nil ? found.ids : nil, spill: found.ids == nil || bands != nil ? scratch : nil,
                table: table, blocks: bands)
        } else {
            guard found.objects.count <= Int(UInt16.max), let ids = found.ids else {
                throw FileError(
                    file: source.file,
                    reason: "\(found.objects.count) objects do not fit a 16-bit PNG label image: use "
                        + "--output-format tiff (32-bit labels)")
            }
            try ImageCodec.write(
                Image(
                    width: width, height: height, channels: 1,
                    samples: .uint16(ids.map { UInt16(truncatingIfNeeded: $0) })),
                to: url)
            lastIDs = ids
        }
    }

    /// Runs after the mask is in place: the read-back slices, then the label image and the table.
    func finish() throws {
        defer { removeScratch() }
        if mode == .readBack {
            let mask = try PixelSource(url: maskURL) { try ImageCodec.decode($0) }
            let bands = tiff && stage.settings.method == .watershed
            let probability =
                bands
                ? try PixelSource(url: probabilityURL, tiffPages: .slices) { try ImageCodec.decode($0) } : nil
            for s in 0..<slices {
                if let probability {
                    let r = try stage.watershedBands(
                        mask: mask, probability: probability, slices: slices, image: source, slice: s,
                        spill: stitched, resolved: scratch)
                    let ids =
                        truth == nil
                        ? nil
                        : try stage.resolvedIDs(scratch, blocks: r.blocks, table: r.table, width: width, height: height)
                    try emit(
                        s, InstanceStage.Slice(ids: ids, objects: r.table.objects), table: r.table, bands: r.blocks)
                } else {
                    let r = try stage.components(
                        mask: mask, image: source, slice: s, spill: keepIDs ? nil : scratch, keepIDs: keepIDs)
                    try emit(s, r.slice, table: r.table, bands: nil)
                }
            }
        }
        if let pages {
            try pages.close()
            try AtomicFile.commit(partial, to: url)
            self.pages = nil
        }
        try AtomicFile.write(Data(stage.table(tables, channels: channels).utf8), to: tableURL)
    }

    /// Objects per class and the mean scores of the slices.
    var result: SegmentRun.InstanceResult {
        SegmentRun.InstanceResult(counts: stage.counts(classes), metrics: SegmentationAgreement.mean(scores))
    }

    func discard() {
        try? pages?.close()
        try? FileManager.default.removeItem(at: partial)
        removeScratch()
    }

    private func removeScratch() {
        try? spill?.close()
        spill = nil
        try? FileManager.default.removeItem(at: scratch)
        try? FileManager.default.removeItem(at: stitched)
        if probabilityIsScratch { try? FileManager.default.removeItem(at: probabilityURL) }
    }
}
