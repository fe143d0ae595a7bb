import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN

/// What `tessera segment` writes per image (nnU-Net's layout: the label mask at `OUT/<relative path>.png`, the
/// others under `OUT/color/`, `OUT/overlay/`, `OUT/prob/`, `OUT/logits/` with the same relative paths).
public enum SegmentOutput: String, CaseIterable, Sendable {
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

/// A deterministic slice of a sorted input list: shard `index` of `count` takes items index, index + count, ...
public struct Shard: Equatable, Sendable {
    public let index: Int, count: Int

    /// Parses `i/n` (0 <= i < n).
    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n > 0, (0..<n).contains(i) else { return nil }
        index = i
        count = n
    }

    public func select<T>(_ items: [T]) -> [T] { stride(from: index, to: items.count, by: count).map { items[$0] } }
}

/// Settings of a segmentation run.
public struct SegmentOptions: Sendable {
    public var outputs: Set<SegmentOutput> = [.mask]
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
    public var overlayFormat = "png"
    public var recursive = false

    public init() {}
}

/// One image's line in the report.
public struct SegmentRecord: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        /// Computed by this run.
        case segmented
        /// All outputs were already there (an earlier, possibly killed, run); not recomputed.
        case existing
        case failed
    }
    public var path: String
    public var status: Status
    public var width: Int = 0
    public var height: Int = 0
    public var seconds: Double = 0
    /// Pixels predicted per class.
    public var pixels: [Int] = []
    public var metrics: [String: Double]?
    public var error: String?
}

/// Segments a list of images with a checkpoint: sliding-window inference, outputs written atomically and
/// skipped when complete, the next image decoded while the current one runs, reports in `report.csv` and
/// `report.json`.
public final class SegmentRun {
    public let loaded: Checkpoint.Loaded
    public let options: SegmentOptions
    public let outDirectory: URL
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(checkpoint: URL, options: SegmentOptions, out: URL) throws {
        loaded = try Checkpoint.load(checkpoint)
        self.options = options
        outDirectory = out
        guard ["png", "jpg", "jpeg"].contains(options.overlayFormat.lowercased()) else {
            throw TrainingError(reason: "overlay format must be png or jpg, not '\(options.overlayFormat)'")
        }
    }

    var classes: Int { loaded.info.classes }
    var inference: TiledInference {
        TiledInference(tile: options.tile ?? loaded.info.crop, overlap: options.overlap, blend: options.blend, tta: options.tta)
    }

    /// Output file of `kind` for an input at `relative` path.
    public func outputURL(_ kind: SegmentOutput, relative: String, className: String? = nil) -> URL {
        let stem = (relative as NSString).deletingPathExtension
        switch kind {
        case .mask: return outDirectory.appendingPathComponent(stem + ".png")
        case .color: return outDirectory.appendingPathComponent("color/" + stem + ".png")
        case .overlay:
            let ext = options.overlayFormat.lowercased() == "png" ? "png" : "jpg"
            return outDirectory.appendingPathComponent("overlay/" + stem + "." + ext)
        case .prob: return outDirectory.appendingPathComponent("prob/" + stem + "_" + (className ?? "") + ".png")
        case .logits: return outDirectory.appendingPathComponent("logits/" + stem + ".safetensors")
        }
    }

    /// Every file the requested outputs make for one input.
    func outputFiles(relative: String) -> [URL] {
        options.outputs.sorted { $0.rawValue < $1.rawValue }.flatMap { kind -> [URL] in
            kind == .prob ? loaded.info.classNames.map { outputURL(.prob, relative: relative, className: $0) }
                          : [outputURL(kind, relative: relative)]
        }
    }

    /// Whether every output exists and has a readable header (files appear by rename, so existing means whole).
    func isComplete(relative: String) -> Bool {
        outputFiles(relative: relative).allSatisfy { url in
            guard FileManager.default.fileExists(atPath: url.path) else { return false }
            if url.pathExtension == "safetensors" { return (try? SafeTensorsFile(contentsOf: url)) != nil }
            return (try? ImageCodec.info(of: url)) != nil
        }
    }

    /// The summary of a run.
    public struct Summary {
        public let records: [SegmentRecord]
        public let metrics: [String: Double]?
        public let seconds: Double
        public var failed: Int { records.filter { $0.status == .failed }.count }
    }

    /// Segments `inputs` (files and folders) and writes the reports.
    public func run(inputs: [String]) throws -> Summary {
        let all = try InputFiles(inputs, extensions: ["png", "jpg", "jpeg"], recursive: options.recursive).entries
        let entries = options.shard.map { $0.select(all) } ?? all
        try FileManager.default.createDirectory(at: outDirectory, withIntermediateDirectories: true)
        removeStaleTemporaryFiles()
        let started = Date()
        var records: [SegmentRecord] = []
        var total = options.masks == nil ? nil : ConfusionMatrix(classes: classes)
        let prefetch = Prefetcher(entries.map { entry -> URL? in
            options.overwrite || !isComplete(relative: entry.relativePath) ? entry.url : nil
        }, decode: decode)
        for (i, entry) in entries.enumerated() {
            var record = SegmentRecord(path: entry.relativePath, status: .segmented)
            let t0 = Date()
            do {
                var matrix = options.masks == nil ? nil : ConfusionMatrix(classes: classes)
                if let image = try prefetch.take(i) {
                    let labels = try segment(image, relative: entry.relativePath)
                    record.width = image.width
                    record.height = image.height
                    record.pixels = counts(labels)
                    if matrix != nil { matrix!.add(predictions: labels, truth: try truth(for: entry.relativePath, size: image)) }
                } else {
                    // Complete from an earlier run: read the saved mask for the report, recompute nothing.
                    record.status = .existing
                    let mask = try ImageCodec.decode(outputURL(.mask, relative: entry.relativePath))
                    let labels = try MaskDecoder(kind: .label, classes: classes)
                        .labels(from: mask, file: outputURL(.mask, relative: entry.relativePath).path)
                    record.width = mask.width
                    record.height = mask.height
                    record.pixels = counts(labels)
                    if matrix != nil { matrix!.add(predictions: labels, truth: try truth(for: entry.relativePath, size: mask)) }
                }
                if let m = matrix {
                    record.metrics = m.summary
                    total!.merge(m)
                }
            } catch {
                record.status = .failed
                record.error = "\(error)"
                log("failed: \(error)")
                if options.strict {
                    records.append(record)
                    try writeReports(records, metrics: total?.summary, seconds: Date().timeIntervalSince(started))
                    throw error
                }
            }
            record.seconds = Date().timeIntervalSince(t0)
            records.append(record)
            log(String(format: "[%d/%d] %@ %@ (%.2f s)", i + 1, entries.count, record.status.rawValue, entry.relativePath,
                       record.seconds))
        }
        let seconds = Date().timeIntervalSince(started)
        try writeReports(records, metrics: total?.summary, seconds: seconds)
        return Summary(records: records, metrics: total?.summary, seconds: seconds)
    }

    /// Deletes `.<name>.tmp-<pid>-<n>` files left in the output tree by a killed run (whose process is gone).
    func removeStaleTemporaryFiles() {
        guard let walker = FileManager.default.enumerator(at: outDirectory, includingPropertiesForKeys: nil) else { return }
        for case let url as URL in walker {
            let name = url.lastPathComponent
            guard name.hasPrefix("."), let range = name.range(of: ".tmp-") else { continue }
            let pid = name[range.upperBound...].prefix { $0.isNumber }
            guard let p = Int32(pid), kill(p, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: url)
        }
    }

    /// Decodes an input with the channels the model takes (gray to one plane; RGB(A) to three).
    func decode(_ url: URL) throws -> Image {
        let wanted = loaded.model.inChannels
        var image = try ImageCodec.decode(url)
        if image.channels == wanted { return image }
        var options = ImageCodec.Options()
        if wanted == 1 { options.gray = true } else if wanted == 3 { options.rgba8 = true } else {
            throw ImageError(file: url.path, reason: "image has \(image.channels) channels, the model takes \(wanted)")
        }
        image = try ImageCodec.decode(url, options: options)
        if wanted == 3, case .uint8(let v) = image.samples, image.channels == 4 {
            var rgb = [UInt8](repeating: 0, count: image.width * image.height * 3)
            for i in 0..<(image.width * image.height) { for k in 0..<3 { rgb[i * 3 + k] = v[i * 4 + k] } }
            image = Image(width: image.width, height: image.height, channels: 3, samples: .uint8(rgb))
        }
        return image
    }

    /// Runs the model on one decoded image, writes its outputs, and returns the predicted class per pixel.
    func segment(_ image: Image, relative: String) throws -> [UInt16] {
        let w = image.width, h = image.height, n = w * h
        var planes = AugmentationSample.planes(of: image)
        IntensityNormalization.meanStd(mean: loaded.info.normalizationMean, std: loaded.info.normalizationStd)
            .apply(toPlanes: &planes, channels: image.channels)
        var labels = [UInt16](repeating: 0, count: n)
        let wantsProb = options.outputs.contains(.prob), wantsLogits = options.outputs.contains(.logits)
        var prob = wantsProb ? [[UInt16]](repeating: [UInt16](repeating: 0, count: n), count: classes) : []
        var logits = wantsLogits ? [Float](repeating: 0, count: classes * n) : []
        let classes = self.classes
        inference.run(model: loaded.model, image: planes, width: w, height: h, channels: image.channels) { y0, rows, band in
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
                    for c in 0..<classes { scores[c] = Foundation.exp(scores[c] - band[best * m + i]); total += scores[c] }
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
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
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
                try ImageCodec.write(Image(width: w, height: h, channels: 1, samples: .uint8(labels.map { UInt8(min($0, 255)) })),
                                     to: url, palette: Array(palette))
            case .overlay:
                let url = outputURL(.overlay, relative: relative)
                try ensureFolder(url)
                try ImageCodec.write(Overlay.render(image: image, labels: labels, colors: paletteColors), to: url, quality: 90)
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

    var paletteColors: [[Int]] {
        let colors = loaded.info.classColors
        return colors.count >= classes ? colors : CheckpointInfo.vocColors(classes)
    }

    func counts<L: BinaryInteger>(_ labels: [L]) -> [Int] {
        var c = [Int](repeating: 0, count: classes)
        for l in labels where l >= 0 && l < classes { c[Int(l)] += 1 }
        return c
    }

    /// The ground-truth class ids for an input, from `--masks` at the same relative path (any image extension).
    func truth(for relative: String, size image: Image) throws -> [Int32] {
        guard let root = options.masks else { return [] }
        let stem = (relative as NSString).deletingPathExtension
        let candidates = ["png", "jpg", "jpeg", "PNG", "JPG"].map { root.appendingPathComponent(stem + "." + $0) }
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw ImageError(file: root.appendingPathComponent(stem).path, reason: "no mask for \(relative) in \(root.path)")
        }
        guard let kind = MaskKind(name: loaded.info.maskKind) else {
            throw ImageError(file: url.path, reason: "the checkpoint's mask kind '\(loaded.info.maskKind)' is unknown")
        }
        let (width, height, ids) = try MaskDecoder(kind: kind, classes: classes).labels(of: url)
        guard width == image.width && height == image.height else {
            throw ImageError(file: url.path, reason: "mask is \(width)x\(height) but the image is \(image.width)x\(image.height)")
        }
        return ids
    }

    /// Report file stem: `report`, or `report-<i>-of-<n>` for a shard (shards share one output folder).
    var reportStem: String { options.shard.map { "report-\($0.index)-of-\($0.count)" } ?? "report" }

    /// `report.csv` and `report.json` in the output folder, written atomically.
    func writeReports(_ records: [SegmentRecord], metrics: [String: Double]?, seconds: Double) throws {
        let names = loaded.info.classNames
        let metricKeys = metrics.map { $0.keys.sorted() } ?? []
        var csv = (["path", "status", "width", "height", "seconds"] + names.map { "pixels_\($0)" } + metricKeys + ["error"])
            .joined(separator: ",") + "\n"
        for r in records {
            var fields = [csvField(r.path), r.status.rawValue, "\(r.width)", "\(r.height)", String(format: "%.4f", r.seconds)]
            fields += (0..<names.count).map { $0 < r.pixels.count ? "\(r.pixels[$0])" : "" }
            fields += metricKeys.map { k in r.metrics?[k].map { String(format: "%.6f", $0) } ?? "" }
            fields.append(csvField(r.error ?? ""))
            csv += fields.joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: outDirectory.appendingPathComponent(reportStem + ".csv"))
        let segmented = records.filter { $0.status == .segmented }
        let computeSeconds = segmented.map(\.seconds).reduce(0, +)
        var summary: [String: Double] = [
            "images": Double(records.count), "segmented": Double(segmented.count),
            "existing": Double(records.filter { $0.status == .existing }.count),
            "failed": Double(records.filter { $0.status == .failed }.count), "seconds": seconds,
        ]
        if !segmented.isEmpty {
            summary["images_per_second"] = Double(segmented.count) / max(computeSeconds, 1e-9)
            summary["seconds_per_image"] = computeSeconds / Double(segmented.count)
        }
        struct Report: Encodable {
            let summary: [String: Double]
            let metrics: [String: Double]?
            let classes: [String]
            let images: [SegmentRecord]
        }
        let json = try JSONEncoder.pretty.encode(Report(summary: summary, metrics: metrics, classes: names, images: records))
        try AtomicFile.write(json, to: outDirectory.appendingPathComponent(reportStem + ".json"))
    }

    func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// Decodes item i + 1 on a background queue while item i is processed.
final class Prefetcher: @unchecked Sendable {
    private let urls: [URL?]
    private let decode: (URL) throws -> Image
    private var pending: (index: Int, group: DispatchGroup, box: ResultBox)?
    private let queue = DispatchQueue(label: "tessera.segment.prefetch")

    final class ResultBox: @unchecked Sendable { var result: Result<Image, Error>? }

    init(_ urls: [URL?], decode: @escaping (URL) throws -> Image) {
        self.urls = urls
        self.decode = decode
    }

    private func start(_ i: Int) {
        guard i < urls.count, let url = urls[i] else { pending = nil; return }
        let group = DispatchGroup(), box = ResultBox(), decode = self.decode
        group.enter()
        queue.async {
            box.result = Result { try decode(url) }
            group.leave()
        }
        pending = (i, group, box)
    }

    /// The decoded image for item `i` (nil when the item is not to be decoded); starts decoding the next one.
    func take(_ i: Int) throws -> Image? {
        if pending?.index != i { start(i) }
        guard let p = pending else { start(i + 1); return nil }
        p.group.wait()
        start(i + 1)
        return try p.box.result!.get()
    }
}
