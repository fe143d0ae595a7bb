import Foundation
import TesseraData
import TesseraEngine

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

/// What happened to one input of a batch run.
public enum BatchStatus: String, Codable, Sendable {
    /// Computed by this run.
    case done
    /// All outputs were already there (an earlier, possibly killed, run); not recomputed.
    case existing
    case failed
}

/// One input's line in a batch report.
public protocol BatchRecord: Codable, Sendable {
    init(path: String, status: BatchStatus)
    var path: String { get }
    var status: BatchStatus { get set }
    var seconds: Double { get set }
    var error: String? { get set }
}

/// Where and how a batch run works: the input list, its shard, the output folder and the failure policy.
public struct BatchSettings: Sendable {
    public var out: URL
    public var recursive = false
    public var shard: Shard?
    /// Recompute inputs whose outputs already exist.
    public var overwrite = false
    /// Stop at the first input that fails.
    public var strict = false
    /// What makes this run's outputs (model hash and settings), recorded beside them; outputs made by another
    /// model or other settings are never reused.
    public var provenance: OutputProvenance?
    /// When the folder holds outputs made otherwise: recompute them (`tessera run`, whose folders are its own), or
    /// stop and say so (the default, unless `overwrite`).
    public var recomputeStale = false

    public init(out: URL) { self.out = out }

    /// Report file stem: `report`, or `report-<i>-of-<n>` for a shard (shards share one output folder).
    public var reportStem: String { shard.map { "report-\($0.index)-of-\($0.count)" } ?? "report" }
}

/// A batch run that cannot start, and why.
public struct BatchError: Error, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The loop `tessera segment` and `tessera explain` share: expands files, folders and globs, stops before any
/// work when two inputs would write the same file or the folder holds outputs of another model or settings, takes
/// its shard, skips inputs whose outputs are complete, decodes the next image while the current one runs, turns an
/// input's error into a failed record (or stops, when strict), and rewrites the reports after a strict stop and at
/// the end.
public struct ImageBatchRunner<Record: BatchRecord> {
    public let settings: BatchSettings

    /// Failures are logged as errors and each image at debug level through `Console.logger`; progress is drawn.
    public init(settings: BatchSettings) {
        self.settings = settings
    }

    /// Runs `process` on each decoded input, or `existing` on inputs whose outputs are all there.
    /// - Parameters:
    ///   - outputs: the files an input (by relative path) makes.
    ///   - report: writes the reports for the records so far and the elapsed seconds.
    public func run(inputs: [String], decode: @escaping (URL) throws -> Image, outputs: (String) -> [URL],
                    process: (Image, InputFiles.Entry) throws -> Record, existing: (InputFiles.Entry) throws -> Record,
                    report: ([Record], Double) throws -> Void) throws -> (records: [Record], seconds: Double) {
        let all = try InputFiles(inputs, extensions: ["png", "jpg", "jpeg"], recursive: settings.recursive).entries
        try Self.checkDistinctOutputs(all, outputs: outputs)
        let entries = settings.shard.map { $0.select(all) } ?? all
        try FileManager.default.createDirectory(at: settings.out, withIntermediateDirectories: true)
        TemporaryFiles.removeStale(under: settings.out)
        try reconcileProvenance(all, outputs: outputs)
        let started = Date()
        var records: [Record] = []
        let progress = ProgressReporter(unit: "image")
        progress.start(total: entries.count)
        defer { progress.finish() }
        let prefetch = Prefetcher(entries.map {
            settings.overwrite || !OutputFiles.complete(outputs($0.relativePath)) ? $0.url : nil
        }, decode: decode)
        for (i, entry) in entries.enumerated() {
            let t0 = Date()
            var record: Record
            do {
                if let problem = SafeName.problem(relativePath: entry.relativePath) {
                    throw ImageError(file: entry.url.path, reason: "the file name \(problem)")
                }
                if let image = try prefetch.take(i) {
                    record = try process(image, entry)
                    record.status = .done
                } else {
                    record = try existing(entry)
                    record.status = .existing
                }
            } catch {
                record = Record(path: entry.relativePath, status: .failed)
                record.error = "\(error)"
                Console.logger.error("\(error)")
                if settings.strict {
                    records.append(record)
                    try report(records, Date().timeIntervalSince(started))
                    throw error
                }
            }
            record.seconds = Date().timeIntervalSince(t0)
            records.append(record)
            Console.logger.debug("\(record.status.rawValue) \(entry.relativePath)", metadata: [
                "index": "\(i + 1)", "of": "\(entries.count)", "seconds": "\(String(format: "%.3f", record.seconds))"])
            progress.update(i + 1)
        }
        let seconds = Date().timeIntervalSince(started)
        try report(records, seconds)
        return (records, seconds)
    }

    /// Two inputs that would write the same file (`x.png` and `x.jpg` in one folder, two folders holding `x.png`,
    /// a glob over several folders) stop the run before any work, naming both; the whole list is checked, not the
    /// shard, so every shard agrees.
    static func checkDistinctOutputs(_ entries: [InputFiles.Entry], outputs: (String) -> [URL]) throws {
        var writer: [String: InputFiles.Entry] = [:]
        for entry in entries {
            for url in outputs(entry.relativePath) {
                let key = url.standardizedFileURL.path
                if let other = writer[key], other != entry {
                    throw BatchError(reason: "\(other.url.path) and \(entry.url.path) would both write \(key); give the "
                                     + "folders separately with --out each, or their common parent with --recursive")
                }
                writer[key] = entry
            }
        }
    }

    /// Keeps `provenance.json` true: with no outputs yet, or outputs made by the same model and settings, the run
    /// goes on (and records them); outputs made otherwise (or with no record) stop the run naming what changed,
    /// unless asked to recompute, when they are deleted first, so a killed recomputation never leaves an old
    /// output that a later run would take as made by the new model.
    func reconcileProvenance(_ entries: [InputFiles.Entry], outputs: (String) -> [URL]) throws {
        guard let current = settings.provenance else { return }
        let fm = FileManager.default
        let recorded = try? OutputProvenance.read(in: settings.out)
        let made = entries.filter { e in outputs(e.relativePath).contains { fm.fileExists(atPath: $0.path) } }
        if !made.isEmpty && recorded == current { return }
        if !made.isEmpty {
            let why = recorded.map { "were made with something else: " + current.changes(from: $0).joined(separator: ", ") }
                ?? "have no record of the model and settings that made them (\(OutputProvenance.fileName))"
            guard settings.overwrite || settings.recomputeStale else {
                throw BatchError(reason: "\(settings.out.path): the outputs of \(made.count) input(s) \(why); "
                                 + "--overwrite recomputes them, or choose another --out")
            }
            Console.logger.notice("\(settings.out.path): recomputing the outputs of \(made.count) input(s), which \(why)")
            for entry in made {
                for url in outputs(entry.relativePath) where fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
            }
        }
        try current.write(in: settings.out)
    }
}

/// `report.csv` (one line per input, the given columns) and `report.json` (a summary, run-level results and the
/// records), written atomically.
public struct BatchReport<Record: BatchRecord> {
    public var columns: [(name: String, value: (Record) -> String)]

    public init(columns: [(name: String, value: (Record) -> String)]) { self.columns = columns }

    /// Counts and throughput of `records` over `seconds` of wall time.
    public static func summary(_ records: [Record], seconds: Double) -> [String: Double] {
        let done = records.filter { $0.status == .done }
        let computeSeconds = done.map(\.seconds).reduce(0, +)
        var summary: [String: Double] = [
            "images": Double(records.count), "done": Double(done.count),
            "existing": Double(records.filter { $0.status == .existing }.count),
            "failed": Double(records.filter { $0.status == .failed }.count), "seconds": seconds,
        ]
        if !done.isEmpty {
            summary["images_per_second"] = Double(done.count) / max(computeSeconds, 1e-9)
            summary["seconds_per_image"] = computeSeconds / Double(done.count)
        }
        return summary
    }

    /// Writes `<stem>.csv` and `<stem>.json` into `folder`; `extra` is encoded beside the summary and records.
    public func write<Extra: Encodable>(_ records: [Record], seconds: Double, extra: Extra, to folder: URL,
                                        stem: String) throws {
        var csv = (["path", "status"] + columns.map(\.name) + ["seconds", "error"]).map(Self.csvField)
            .joined(separator: ",") + "\n"
        for r in records {
            let fields = [Self.csvField(r.path), r.status.rawValue] + columns.map { $0.value(r) }
                + [String(format: "%.4f", r.seconds), Self.csvField(r.error ?? "")]
            csv += fields.joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: folder.appendingPathComponent(stem + ".csv"))
        let json = try JSONEncoder.pretty.encode(BatchReportFile(summary: Self.summary(records, seconds: seconds),
                                                                 extra: extra, images: records))
        try AtomicFile.write(json, to: folder.appendingPathComponent(stem + ".json"))
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// `report.json`: the summary, the run-level keys of `extra`, and the records under `images`.
struct BatchReportFile<Record: Encodable, Extra: Encodable>: Encodable {
    let summary: [String: Double]
    let extra: Extra
    let images: [Record]

    enum Key: String, CodingKey { case summary, images }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(summary, forKey: .summary)
        try c.encode(images, forKey: .images)
        try extra.encode(to: encoder)
    }
}

/// Ground-truth masks found by an input's relative path under a folder (any image extension).
struct TruthMasks {
    let root: URL
    let kind: MaskKind
    let classes: Int

    /// The image file under `root` with `relative`'s path and any image extension.
    static func file(for relative: String, under root: URL) throws -> URL {
        let stem = (relative as NSString).deletingPathExtension
        let candidates = ["png", "jpg", "jpeg", "PNG", "JPG"].map { root.appendingPathComponent(stem + "." + $0) }
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw ImageError(file: root.appendingPathComponent(stem).path, reason: "no mask for \(relative) in \(root.path)")
        }
        return url
    }

    /// Class ids of the mask for `relative`, checked against the image's size.
    func labels(for relative: String, width: Int, height: Int) throws -> [Int32] {
        let url = try Self.file(for: relative, under: root)
        let (w, h, ids) = try MaskDecoder(kind: kind, classes: classes).labels(of: url)
        guard w == width && h == height else {
            throw ImageError(file: url.path, reason: "mask is \(w)x\(h) but the image is \(width)x\(height)")
        }
        return ids
    }
}

/// Decodes item i + 1 on a background queue while item i is processed.
final class Prefetcher: @unchecked Sendable {
    private let urls: [URL?]
    private let decode: (URL) throws -> Image
    private var pending: (index: Int, group: DispatchGroup, box: ResultBox)?
    private let queue = DispatchQueue(label: "tessera.batch.prefetch")

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

/// Images as a model takes them: decoded with the model's channel count, normalised planes.
public enum ModelInput {
    /// What one image may take on its way into a model: its decoded samples, the converted samples, the float
    /// planes and what the caller keeps per pixel (labels, probabilities). 4 GiB: an 8192 x 8192 gray image
    /// segmented into a mask needs 0.5 GiB; 2^28 pixels of 16-bit RGBA would need 7.5 GiB.
    public static let memoryBudget = 4 << 30

    /// Decodes `url` and converts it to the channels the model takes (`Image.converted(toChannels:file:)`),
    /// after checking from the header that the image fits `memoryBudget` with `bytesPerPixel` more per pixel.
    public static func decode(_ url: URL, channels wanted: Int, bytesPerPixel extra: Int = 0) throws -> Image {
        let data = try ImageCodec.readFile(url)
        let info = try ImageCodec.info(of: data, file: url.path)
        let sampleBytes = info.bitDepth > 8 ? 2 : 1
        let perPixel = (info.channels + wanted) * sampleBytes + 4 * wanted + extra
        let (bytes, overflow) = (info.width * info.height).multipliedReportingOverflow(by: perPixel)
        guard !overflow, bytes <= memoryBudget else {
            throw ImageError(file: url.path, reason: String(format: "a %dx%d image needs %.1f GiB on its way through the model "
                             + "(samples, float planes, outputs), over the %d GiB budget", info.width, info.height,
                             Double(info.width * info.height) * Double(perPixel) / Double(1 << 30), memoryBudget >> 30))
        }
        return try ImageCodec.decode(data, file: url.path).converted(toChannels: wanted, file: url.path)
    }

    /// Planar float samples [channels][height][width] normalised by per-channel mean and std.
    public static func planes(of image: Image, mean: [Float], std: [Float]) -> [Float] {
        var planes = AugmentationSample.planes(of: image)
        IntensityNormalization.meanStd(mean: mean, std: std).apply(toPlanes: &planes, channels: image.channels)
        return planes
    }
}
