import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN

/// What `tessera segment` writes per image (nnU-Net's layout: the label mask at `OUT/<relative path>.png`, the
/// others under `OUT/color/`, `OUT/overlay/`, `OUT/prob/`, `OUT/logits/` with the same relative paths).
public enum SegmentOutput: String, Codable, CaseIterable, Sendable {
    /// Label mask PNG: pixel = class id (8-bit, 16-bit beyond 256 classes).
    case mask
    /// Indexed PNG with the checkpoint's palette.
    case color
    /// The mask blended over the image with class outlines.
    case overlay
    /// One 16-bit PNG per class: probability x 65535 (`<name>_<class>.png`).
    case prob
    /// Raw logits [classes, H, W] as safetensors.
    case logits
}

/// Settings of a segmentation run.
public struct SegmentOptions: Sendable {
    /// What is written per input; always includes the label mask, which completeness and the report read back.
    public var outputs: Set<SegmentOutput> = [.mask] {
        didSet { outputs.insert(.mask) }
    }
    /// Input tile edge; nil: the checkpoint's training crop.
    public var tile: Int?
    public var overlap = 0.5
    public var blend = TiledInference.Blend.gaussian
    public var tta = false
    /// Ground-truth masks (same relative paths) for per-image and overall metrics.
    public var masks: URL?
    public var shard: Shard?
    public var overwrite = false
    public var strict = false
    /// `png` or `jpg`.
    public var overlayFormat = OverlayFormat.png
    public var recursive = false
    /// Outputs made by another model or other settings are recomputed instead of stopping the run.
    public var recomputeStale = false

    public init() {}

    /// The defaults, which the command line's options start from too.
    public static let defaults = SegmentOptions()
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
    public var metrics: [String: Double]?
    public var error: String?

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
    public let options: SegmentOptions
    public let outDirectory: URL
    /// The model file and settings the outputs are made with (`provenance.json`).
    public let provenance: OutputProvenance
    /// Where messages and progress go.
    public var console = Console()

    public init(checkpoint: URL, options: SegmentOptions, out: URL) throws {
        loaded = try Checkpoint.load(checkpoint)
        self.options = options
        outDirectory = out
        if let tile = options.tile, !(1...65536).contains(tile) {
            throw TrainingError(reason: "tile must be 1-65536, not \(tile)")
        }
        guard (0..<1).contains(options.overlap) else {
            throw TrainingError(reason: "overlap must be in [0, 1), not \(options.overlap)")
        }
        provenance = try OutputProvenance(
            command: "segment", model: checkpoint,
            settings: [
                "tile": "\(options.tile ?? loaded.info.crop)", "overlap": "\(options.overlap)",
                "blend": options.blend.rawValue,
                "tta": "\(options.tta)", "outputs": options.outputs.map(\.rawValue).sorted().joined(separator: ","),
                "overlay_format": options.overlayFormat.rawValue
            ])
    }

    var classes: Int { loaded.info.classes }
    var inference: TiledInference {
        TiledInference(
            tile: options.tile ?? loaded.info.crop, overlap: options.overlap, blend: options.blend, tta: options.tta)
    }

    /// Output file of `kind` for an input at `relative` path.
    public func outputURL(_ kind: SegmentOutput, relative: String, className: String? = nil) -> URL {
        let stem = (relative as NSString).deletingPathExtension
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
            kind == .prob
                ? loaded.info.classNames.map { outputURL(.prob, relative: relative, className: $0) }
                : [outputURL(kind, relative: relative)]
        }
    }

    /// The summary of a run.
    public struct Summary {
        public let records: [SegmentRecord]
        public let metrics: [String: Double]?
        public let seconds: Double
        public var failed: Int { BatchCounts(records).failed }
    }

    var settings: BatchSettings {
        var s = BatchSettings(out: outDirectory)
        s.console = console
        s.recursive = options.recursive
        s.shard = options.shard
        s.overwrite = options.overwrite
        s.strict = options.strict
        s.provenance = provenance
        s.recomputeStale = options.recomputeStale
        return s
    }

    /// Segments `inputs` (files and folders) and writes the reports.
    public func run(inputs: [String]) throws -> Summary {
        var total = options.masks == nil ? nil : ConfusionMatrix(classes: classes)
        let classes = self.classes, channels = loaded.model.inChannels
        // Kept for the whole image: labels, an overlay, and 16-bit probabilities and float logits when asked.
        let perPixel =
            2 + 4 + (options.outputs.contains(.prob) ? 2 * classes : 0)
            + (options.outputs.contains(.logits) ? 4 * classes : 0)
        func scored(_ record: inout SegmentRecord, labels: [UInt16], width: Int, height: Int) throws {
            record.width = width
            record.height = height
            record.pixels = counts(labels)
            guard let truth = try truthMasks?.labels(for: record.path, width: width, height: height) else { return }
            var matrix = ConfusionMatrix(classes: classes)
            matrix.add(predictions: labels, truth: truth)
            record.metrics = matrix.summary
            total!.merge(matrix)
        }
        let runner = ImageBatchRunner<SegmentRecord>(settings: settings)
        let (records, seconds) = try runner.run(
            inputs: inputs, decode: { try ModelInput.decode($0, channels: channels, bytesPerPixel: perPixel) },
            outputs: outputFiles(relative:),
            process: { image, entry in
                var record = SegmentRecord(path: entry.relativePath, status: .done)
                try scored(
                    &record, labels: try segment(image, relative: entry.relativePath), width: image.width,
                    height: image.height)
                return record
            },
            existing: { entry in
                // Complete from an earlier run: read the saved mask for the report, recompute nothing.
                var record = SegmentRecord(path: entry.relativePath, status: .existing)
                let url = outputURL(.mask, relative: entry.relativePath)
                let mask = try ImageCodec.decode(url)
                let labels = try MaskDecoder(kind: .label, classes: classes).labels(from: mask, file: url.path)
                try scored(&record, labels: labels.map { UInt16($0) }, width: mask.width, height: mask.height)
                return record
            },
            report: { records, seconds in try writeReports(records, metrics: total?.summary, seconds: seconds) })
        return Summary(records: records, metrics: total?.summary, seconds: seconds)
    }

    var truthMasks: TruthMasks? {
        guard let root = options.masks else { return nil }
        return TruthMasks(root: root, kind: MaskKind(name: loaded.info.maskKind) ?? .label, classes: classes)
    }

    /// Runs the model on one decoded image, writes its outputs, and returns the predicted class per pixel.
    func segment(_ image: Image, relative: String) throws -> [UInt16] {
        let w = image.width, h = image.height, n = w * h
        let planes = ModelInput.planes(
            of: image, mean: loaded.info.normalizationMean, std: loaded.info.normalizationStd)
        var labels = [UInt16](repeating: 0, count: n)
        let wantsProb = options.outputs.contains(.prob), wantsLogits = options.outputs.contains(.logits)
        var prob = wantsProb ? [[UInt16]](repeating: [UInt16](repeating: 0, count: n), count: classes) : []
        var logits = wantsLogits ? [Float](repeating: 0, count: classes * n) : []
        let classes = self.classes
        inference.run(model: loaded.model, image: planes, width: w, height: h, channels: image.channels) {
            y0, rows, band in
            let m = rows * w
            var scores = [Float](repeating: 0, count: classes)
            for i in 0..<m {
                var best = 0
                for c in 0..<classes {
                    scores[c] = band[c * m + i]
                    if scores[c] > scores[best] { best = c }
                }
                labels[y0 * w + i] = UInt16(best)
                if wantsProb {
                    var total: Float = 0
                    for c in 0..<classes {
                        scores[c] = Foundation.exp(scores[c] - band[best * m + i]); total += scores[c]
                    }
                    for c in 0..<classes { prob[c][y0 * w + i] = UInt16((scores[c] / total * 65535).rounded()) }
                }
            }
            if wantsLogits {
                for c in 0..<classes {
                    for i in 0..<m { logits[c * n + y0 * w + i] = band[c * m + i] }
                }
            }
        }
        try writeOutputs(image: image, labels: labels, prob: prob, logits: logits, relative: relative)
        return labels
    }

    func writeOutputs(image: Image, labels: [UInt16], prob: [[UInt16]], logits: [Float], relative: String) throws {
        let w = image.width, h = image.height
        func ensureFolder(_ url: URL) throws {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        }
        for kind in options.outputs.sorted(by: { $0.rawValue < $1.rawValue }) {
            switch kind {
            case .mask:
                let url = outputURL(.mask, relative: relative)
                try ensureFolder(url)
                let samples: Image.Samples = classes <= 256 ? .uint8(labels.map { UInt8($0) }) : .uint16(labels)
                try ImageCodec.write(Image(width: w, height: h, channels: 1, samples: samples), to: url)
            case .color:
                let url = outputURL(.color, relative: relative)
                try ensureFolder(url)
                let palette = paletteColors.prefix(256).map { $0.map { UInt8(clamping: $0) } }
                try ImageCodec.write(
                    Image(width: w, height: h, channels: 1, samples: .uint8(labels.map { UInt8(min($0, 255)) })),
                    to: url, palette: Array(palette))
            case .overlay:
                let url = outputURL(.overlay, relative: relative)
                try ensureFolder(url)
                try ImageCodec.write(
                    Overlay.render(image: image, labels: labels, colors: paletteColors), to: url, quality: 90)
            case .prob:
                for (c, name) in loaded.info.classNames.enumerated() where c < prob.count {
                    let url = outputURL(.prob, relative: relative, className: name)
                    try ensureFolder(url)
                    try ImageCodec.write(Image(width: w, height: h, channels: 1, samples: .uint16(prob[c])), to: url)
                }
            case .logits:
                let url = outputURL(.logits, relative: relative)
                try ensureFolder(url)
                try SafeTensorsFile.write([("logits", Tensor(logits, shape: [classes, h, w]))], to: url)
            }
        }
    }

    var paletteColors: [[Int]] { loaded.info.palette }

    func counts<L: BinaryInteger>(_ labels: [L]) -> [Int] {
        var c = [Int](repeating: 0, count: classes)
        for l in labels where l >= 0 && l < classes { c[Int(l)] += 1 }
        return c
    }

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
