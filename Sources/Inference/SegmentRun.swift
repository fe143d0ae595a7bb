import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN
import TesseraObjects
import TesseraSettings

/// What `tessera segment` writes per image (nnU-Net's layout: the label mask at `OUT/<relative path>.png`, the
/// others under `OUT/color/`, `OUT/overlay/`, `OUT/prob/`, `OUT/logits/` with the same relative paths; `.tif`
/// instead of `.png` for TIFF outputs).
public enum SegmentOutput: String, Codable, CaseIterable, Sendable {
    /// Label mask: pixel = class id (8-bit, 16-bit beyond 256 classes).
    case mask
    /// The mask in the checkpoint's palette (indexed PNG, RGB TIFF).
    case color
    /// The mask blended over the image with class outlines.
    case overlay
    /// Probability x 65535 per class: one 16-bit PNG per class (`<name>_<class>.png`), or one TIFF page each.
    case prob
    /// Raw logits [classes, H, W]: safetensors, or one 32-bit float TIFF page per class.
    case logits
}

/// The file format of `segment`'s outputs.
public enum OutputFileFormat: String, Codable, CaseIterable, Sendable {
    /// Whole-image PNG (overlays PNG or JPEG), written when the image is done.
    case png
    /// Tiled, deflate-compressed (Big)TIFF written chunk by chunk as the image streams through, resumable.
    case tiff
}

/// One image's line in the report.
public struct SegmentRecord: BatchRecord {
    public var path: String
    public var status: BatchStatus
    public var width: Int = 0
    public var height: Int = 0
    public var seconds: Double = 0
    /// Pixels predicted per class.
    public var pixels: [Int] = []
    /// Objects found per class (with `--instances`).
    public var objects: [Int]?
    public var metrics: [String: Double]?
    public var error: String?
    /// The row a streamed image was resumed from after a killed run (absent when it ran from the start).
    public var resumedFromRow: Int?

    enum CodingKeys: String, CodingKey {
        case path, status, width, height, seconds, pixels, objects, metrics, error
        case resumedFromRow = "resumed_from_row"
    }

    public init(path: String, status: BatchStatus) {
        self.path = path
        self.status = status
    }
}

/// Segments a list of images with a checkpoint: sliding-window inference, outputs written atomically and
/// skipped when complete, the next image decoded while the current one runs, reports in `report.csv` and
/// `report.json`.
public final class SegmentRun {
    public let loaded: Checkpoint.Loaded
    /// The decoding of the model's truth masks (`--masks`), from the checkpoint.
    let maskKind: MaskKind
    public let options: SegmentOptions
    public let outDirectory: URL
    /// The model file and settings the outputs are made with (`provenance.json`).
    public let provenance: OutputProvenance
    /// Where messages and progress go.
    public var console = Console()

    public init(checkpoint: URL, options: SegmentOptions, out: URL) throws {
        try options.validate()
        loaded = try Checkpoint.load(checkpoint)
        maskKind = try loaded.info.maskKind(file: checkpoint)
        self.options = options
        outDirectory = out
        provenance = try OutputProvenance(
            command: "segment", model: checkpoint,
            settings: [
                "tile": "\(options.tile ?? loaded.info.crop)", "overlap": "\(options.overlap)",
                "blend": options.blend.rawValue,
                "tta": "\(options.tta)", "outputs": options.outputs.map(\.rawValue).sorted().joined(separator: ","),
                "overlay_format": options.overlayFormat.rawValue
            ].merging(Self.formatSettings(options)) { $1 }.merging(Self.instanceSettings(options)) { $1 })
    }

    /// The output format and TIFF page settings, recorded only when they differ from the defaults, so output
    /// folders made before they existed keep matching their record.
    static func formatSettings(_ options: SegmentOptions) -> [String: String] {
        var settings: [String: String] = [:]
        if let format = options.outputFormat { settings["output_format"] = format.rawValue }
        if options.tiffPages != .auto { settings["tiff_pages"] = options.tiffPages.rawValue }
        return settings
    }

    var classes: Int { loaded.info.classes }
    var inference: TiledInference {
        TiledInference(
            tile: options.tile ?? loaded.info.crop, overlap: options.overlap, blend: options.blend, tta: options.tta)
    }

    /// The format of the outputs for an input at `relative` path.
    public func outputFormat(for relative: String) -> OutputFileFormat {
        options.outputFormat ?? (ImageFormat.forExtension(of: URL(fileURLWithPath: relative)) == .tiff ? .tiff : .png)
    }

    /// Output file of `kind` for an input at `relative` path (`className`: PNG probabilities, one file a class).
    public func outputURL(_ kind: SegmentOutput, relative: String, className: String? = nil) -> URL {
        let stem = (relative as NSString).deletingPathExtension
        if outputFormat(for: relative) == .tiff {
            let folder = kind == .mask ? "" : kind.rawValue + "/"
            return outDirectory.appendingPathComponent(folder + stem + ".tif")
        }
        switch kind {
        case .mask: return outDirectory.appendingPathComponent(stem + ".png")
        case .color: return outDirectory.appendingPathComponent("color/" + stem + ".png")
        case .overlay:
            return outDirectory.appendingPathComponent("overlay/" + stem + "." + options.overlayFormat.fileExtension)
        case .prob: return outDirectory.appendingPathComponent("prob/" + stem + "_" + (className ?? "") + ".png")
        case .logits: return outDirectory.appendingPathComponent("logits/" + stem + ".safetensors")
        }
    }

    /// Every file the requested outputs make for one input.
    func outputFiles(relative: String) -> [URL] {
        options.outputs.sorted { $0.rawValue < $1.rawValue }.flatMap { kind -> [URL] in
            kind == .prob ? probURLs(relative) : [outputURL(kind, relative: relative)]
        } + (options.instances == nil ? [] : [instancesURL(relative: relative), objectsURL(relative: relative)])
    }

    func probURLs(_ relative: String) -> [URL] {
        outputFormat(for: relative) == .tiff
            ? [outputURL(.prob, relative: relative)]
            : loaded.info.classNames.map { outputURL(.prob, relative: relative, className: $0) }
    }

    func targets(_ relative: String) -> SegmentTargets {
        var t = SegmentTargets(
            outputs: options.outputs, mask: outputURL(.mask, relative: relative),
            color: outputURL(.color, relative: relative),
            logits: outputURL(.logits, relative: relative), prob: probURLs(relative))
        // The streamed watershed reads the probabilities back: written beside the instances when not asked for.
        if options.instances?.method == .watershed && outputFormat(for: relative) == .tiff && !t.outputs.contains(.prob)
        {
            t.outputs.insert(.prob)
            t.prob = [watershedProbabilityURL(relative: relative)]
        }
        return t
    }

    /// The summary of a run.
    public struct Summary {
        public let records: [SegmentRecord]
        public let metrics: [String: Double]?
        public let seconds: Double
        public var failed: Int { BatchCounts(records).failed }
    }

    var settings: BatchSettings {
        BatchSettings(out: outDirectory, policy: options, provenance: provenance, console: console)
    }

    /// Segments `inputs` (files and folders) and writes the reports.
    public func run(inputs: [String]) throws -> Summary {
        var total = options.masks == nil || options.truth == .objects ? nil : ConfusionMatrix(classes: classes)
        var objectScores: [[String: Double]] = []
        func overall() -> [String: Double]? {
            guard options.masks != nil else { return nil }
            return (total?.summary ?? [:]).merging(SegmentationAgreement.mean(objectScores)) { $1 }
        }
        let classes = self.classes, channels = loaded.model.inChannels, pages = options.tiffPages
        // PNG and JPEG inputs are decoded whole (checked against the memory budget with what the whole-image
        // outputs keep per pixel); TIFF inputs are opened and read chunk by chunk.
        let perPixel =
            2 + 4 + (options.outputs.contains(.prob) ? 2 * classes : 0)
            + (options.outputs.contains(.logits) ? 4 * classes : 0)
        func scored(_ record: inout SegmentRecord, _ result: ImageResult) {
            record.width = result.width
            record.height = result.height
            record.pixels = result.pixels
            record.resumedFromRow = result.resumedFromRow
            record.objects = result.objects
            if !result.objectMetrics.isEmpty { objectScores.append(result.objectMetrics) }
            let metrics = (result.matrix?.summary ?? [:]).merging(result.objectMetrics) { $1 }
            record.metrics = metrics.isEmpty ? nil : metrics
            if let matrix = result.matrix { total?.merge(matrix) }
        }
        let runner = ImageBatchRunner<SegmentRecord>(settings: settings)
        let (records, seconds) = try runner.run(
            inputs: inputs,
            decode: { url in
                try PixelSource(url: url, tiffPages: pages) {
                    try ModelInput.decode($0, channels: channels, bytesPerPixel: perPixel)
                }
            },
            outputs: outputFiles(relative:),
            process: { source, entry in
                var record = SegmentRecord(path: entry.relativePath, status: .done)
                scored(&record, try segment(source, relative: entry.relativePath))
                return record
            },
            existing: { entry in
                // Complete from an earlier run: read the saved mask for the report, recompute nothing.
                var record = SegmentRecord(path: entry.relativePath, status: .existing)
                scored(&record, try rescore(relative: entry.relativePath))
                return record
            },
            report: { records, seconds in try writeReports(records, metrics: overall(), seconds: seconds) })
        return Summary(records: records, metrics: overall(), seconds: seconds)
    }

    var truthMasks: TruthMasks? {
        guard let root = options.masks else { return nil }
        return TruthMasks(root: root, kind: maskKind, classes: classes)
    }

    /// What one image gave: its size, pixels per predicted class (over every slice) and, with truth masks, the
    /// confusion matrix.
    struct ImageResult {
        var width: Int, height: Int
        var pixels: [Int]
        var matrix: ConfusionMatrix?
        /// Where a resumed image went on from: rows of the slices before it plus rows of its slice.
        var resumedFromRow: Int? = nil
        /// Objects per class and their scores against the truth (with `--instances`).
        var objects: [Int]? = nil
        var objectMetrics: [String: Double] = [:]
    }

    /// The key of a streamed image's progress file: the model, the settings and the input file as it was.
    func progressKey(_ source: PixelSource, relative: String) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: source.file)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let time = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let record = (try? JSONEncoder.pretty.encode(provenance)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let text = "\(record)|\(relative)|\(size)|\(time)|\(options.chunk)|\(source.slices)|\(masksKey)"
        return OutputProvenance.sha256(of: Data(text.utf8))
    }

    var masksKey: String { options.masks?.path ?? "" }

    /// Runs the model over every slice of `source` chunk by chunk and hands each chunk to the image's consumers
    /// (`consumers`): one path for every input format, output set and instance mode. Streamed (TIFF) outputs
    /// resume from a killed run's last chunk row.
    func segment(_ source: PixelSource, relative: String) throws -> ImageResult {
        let classes = self.classes, channels = loaded.model.inChannels, w = source.width, h = source.height
        let mean = loaded.info.normalizationMean, std = loaded.info.normalizationStd
        let tiff = outputFormat(for: relative) == .tiff
        let stage = instanceStage, wholeSlices = stage?.needsWholeSlice(tiff: tiff) ?? false
        try stage?.check(width: w, height: h, tiff: tiff, file: source.file)
        // Hole filling gathers whole slices, which a resumed image no longer has: such images start over (a key
        // no progress file matches).
        let key = !tiff ? "" : wholeSlices ? UUID().uuidString : progressKey(source, relative: relative)
        let image = try consumers(for: source, relative: relative, key: key)
        do {
            let saved = image.sink.resumed
            let consumers = image.all
            var needs: ChunkNeeds = []
            for c in consumers { needs.formUnion(c.needs) }
            let first = saved?.slice ?? 0
            for slice in first..<source.slices {
                try inference.run(
                    model: loaded.model, width: w, height: h, channels: channels, chunk: options.chunk,
                    firstChunkRow: slice == first ? (saved?.rows ?? 0) / options.chunk : 0,
                    read: { window in
                        ModelInput.planes(
                            of: try source.window(window, slice: slice).converted(
                                toChannels: channels, file: source.file),
                            mean: mean, std: std)
                    },
                    emit: { window, logits in
                        let (labels, probability) = ClassProbabilities.labels(
                            logits, classes: classes, pixels: window.width * window.height,
                            probability: needs.contains(.probability))
                        let chunk = SegmentChunk(
                            window: window, slice: slice, labels: labels, probability: probability, logits: logits,
                            image: needs.contains(.image) ? try source.window(window, slice: slice) : nil)
                        for c in consumers { try c.consume(chunk) }
                        AllocatorTuning.releaseFreedMemory()  // the chunk's transient arrays, each chunk
                        if window.x + window.width == w && window.y + window.height < h {
                            let progress = image.tally.progress(key: key, slice: slice, rows: window.y + window.height)
                            for c in consumers { try c.finishedChunkRow(progress) }
                        }
                    })
                for c in consumers { try c.finishSlice(slice) }
                if slice + 1 < source.slices {
                    let progress = image.tally.progress(key: key, slice: slice + 1, rows: 0)
                    for c in consumers { try c.finishedChunkRow(progress) }
                }
            }
            for c in consumers { try c.finish() }
            var result = ImageResult(
                width: w, height: h, pixels: image.tally.pixels, matrix: image.tally.matrix,
                resumedFromRow: saved.map { $0.slice * h + $0.rows })
            if let objects = image.objects?.result {
                result.objects = objects.counts
                result.objectMetrics = objects.metrics
            }
            return result
        } catch {
            for c in image.all { c.discard() }
            throw error
        }
    }

    /// The consumers of one image, in the order they finish: the pixel tally, the output files, the objects
    /// (after the mask is in place), the overlay (last, with the objects' outlines).
    struct ImageConsumers {
        let tally: PixelTally
        let sink: any SegmentSink
        let objects: InstanceConsumer?
        let overlay: OverlayRenderer?
        var all: [any ChunkConsumer] {
            let later: [(any ChunkConsumer)?] = [objects, overlay]
            return [tally, sink] + later.compactMap { $0 }
        }
    }

    func consumers(for source: PixelSource, relative: String, key: String) throws -> ImageConsumers {
        let classes = self.classes, w = source.width, h = source.height
        let tiff = outputFormat(for: relative) == .tiff
        let wantsOverlay = options.outputs.contains(.overlay)
        var t = targets(relative)
        t.outputs.remove(.overlay)
        let sink: any SegmentSink =
            tiff
            ? try TIFFSegmentSink(
                targets: t, width: w, height: h, slices: source.slices, classes: classes,
                classNames: loaded.info.classNames, palette: paletteColors, key: key)
            : try WholeImageSink(
                targets: t, width: w, height: h, slices: source.slices, classes: classes, palette: paletteColors,
                file: source.file, overlay: wantsOverlay)
        do {
            let truth = try truthMasks?.source(for: relative, width: w, height: h, slices: source.slices)
            let saved = sink.resumed
            let matrix =
                truth == nil || options.truth == .objects
                ? nil
                : saved?.confusion.flatMap { ConfusionMatrix(classes: classes, counts: $0) }
                    ?? ConfusionMatrix(classes: classes)
            let tally = PixelTally(
                classes: classes, truth: truth, decoder: truthDecoder, matrix: matrix, resumed: saved)
            let objects = try instanceStage.map { stage in
                try InstanceConsumer(
                    stage: stage, tiff: tiff, resumed: saved != nil, source: source, truth: truth,
                    truthDecoder: truthDecoder, url: instancesURL(relative: relative),
                    tableURL: objectsURL(relative: relative), maskURL: outputURL(.mask, relative: relative),
                    probabilityURL: watershedProbabilityURL(relative: relative),
                    probabilityIsScratch: !options.outputs.contains(.prob)
                        && t.prob == [watershedProbabilityURL(relative: relative)],
                    score: { [self] ids, classes, truth in
                        score(ids: ids, classes: classes, truth: truth, width: w, height: h)
                    })
            }
            let overlay =
                wantsOverlay
                ? try OverlayRenderer(
                    url: outputURL(.overlay, relative: relative), tiff: tiff, source: source, palette: paletteColors,
                    chunk: options.chunk, maskURL: outputURL(.mask, relative: relative), objects: objects) : nil
            return ImageConsumers(tally: tally, sink: sink, objects: objects, overlay: overlay)
        } catch {
            sink.discard()
            throw error
        }
    }

    /// The report's numbers of an image whose outputs an earlier run completed, from its saved mask (read chunk
    /// by chunk, as it was written).
    func rescore(relative: String) throws -> ImageResult {
        let url = outputURL(.mask, relative: relative)
        let mask = try PixelSource(url: url) { try ImageCodec.decode($0) }
        let truth = try truthMasks?.source(for: relative, width: mask.width, height: mask.height, slices: mask.slices)
        let saved = MaskDecoder(kind: .label, classes: classes)
        let decoder = truthDecoder
        var pixels = [Int](repeating: 0, count: classes)
        var matrix = truth == nil || options.truth == .objects ? nil : ConfusionMatrix(classes: classes)
        for slice in 0..<mask.slices {
            for y in stride(from: 0, to: mask.height, by: options.chunk) {
                for x in stride(from: 0, to: mask.width, by: options.chunk) {
                    let window = PixelWindow(
                        x: x, y: y, width: min(options.chunk, mask.width - x),
                        height: min(options.chunk, mask.height - y))
                    let labels = try saved.labels(from: try mask.window(window, slice: slice), file: url.path)
                    for l in labels { pixels[Int(l)] += 1 }
                    if let truth, matrix != nil {
                        matrix?.add(
                            predictions: labels,
                            truth: try decoder.labels(from: try truth.window(window, slice: slice), file: truth.file))
                    }
                }
            }
        }
        var result = ImageResult(width: mask.width, height: mask.height, pixels: pixels, matrix: matrix)
        if instanceStage != nil {
            let objects = try rescoreInstances(relative: relative, truth: truth, truthDecoder: decoder)
            result.objects = objects.counts
            result.objectMetrics = objects.metrics
        }
        return result
    }

    var paletteColors: [[Int]] { loaded.info.palette }

    /// `report.csv` and `report.json` in the output folder (`report-i-of-n.*` for a shard), written atomically.
    func writeReports(_ records: [SegmentRecord], metrics: [String: Double]?, seconds: Double) throws {
        let names = loaded.info.classNames
        let metricKeys = metrics.map { $0.keys.sorted() } ?? []
        var columns: [(name: String, value: (SegmentRecord) -> String)] = [
            ("width", { "\($0.width)" }), ("height", { "\($0.height)" })
        ]
        for (c, name) in names.enumerated() {
            columns.append(("pixels_\(name)", { c < $0.pixels.count ? "\($0.pixels[c])" : "" }))
        }
        if options.instances != nil {
            for (c, name) in names.enumerated().dropFirst() {
                columns.append(("objects_\(name)", { r in r.objects.map { c < $0.count ? "\($0[c])" : "" } ?? "" }))
            }
        }
        for key in metricKeys {
            columns.append((key, { r in r.metrics?[key].map { String(format: "%.6f", $0) } ?? "" }))
        }
        struct Run: Encodable {
            let metrics: [String: Double]?
            let classes: [String]
        }
        try BatchReport(columns: columns).write(
            records, seconds: seconds, extra: Run(metrics: metrics, classes: names),
            to: outDirectory, stem: settings.reportStem)
    }
}
