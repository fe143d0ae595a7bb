import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraNN

/// One image's classes, most probable first.
public struct ClassifyRecord: BatchRecord {
    public struct Ranked: Codable, Equatable, Sendable {
        public var `class`: String
        public var index: Int
        public var probability: Double
    }
    public var path: String
    public var status: BatchStatus
    public var seconds: Double = 0
    public var top: [Ranked] = []
    public var error: String?

    public init(path: String, status: BatchStatus) {
        self.path = path
        self.status = status
    }
}

/// Classifies a list of images with a classifier checkpoint through the batch machinery `tessera segment` uses
/// (files, folders, globs, shards, provenance, bad files reported): each image seen as in validation (shorter side
/// resized to the training edge, centre crop, the training normalisation), its top-k classes written to
/// `OUT/<relative path>.json` (atomically; a rerun skips finished images) and to `report.csv` / `report.json`.
public final class ClassifyRun {
    public let loaded: Checkpoint.LoadedClassifier
    public let options: ClassifyOptions
    public let outDirectory: URL
    public let provenance: OutputProvenance
    public var console = Console()

    public init(checkpoint: URL, options: ClassifyOptions, out: URL) throws {
        try options.validate()
        loaded = try Checkpoint.loadClassifier(checkpoint)
        loaded.model.eval()
        self.options = options
        outDirectory = out
        provenance = try OutputProvenance(
            command: "classify", model: checkpoint, settings: ["top_k": "\(options.topK)"])
    }

    var settings: BatchSettings {
        BatchSettings(out: outDirectory, policy: options, provenance: provenance, console: console)
    }

    /// The result file of an input at `relative` path.
    public func outputURL(relative: String) -> URL {
        outDirectory.appendingPathComponent((relative as NSString).deletingPathExtension + ".json")
    }

    /// Classifies `inputs` (files, folders, globs) and writes the reports.
    public func run(inputs: [String]) throws -> (records: [ClassifyRecord], seconds: Double) {
        let info = loaded.info, channels = loaded.model.inChannels, size = info.crop
        let runner = ImageBatchRunner<ClassifyRecord>(settings: settings)
        return try runner.run(
            inputs: inputs,
            decode: { url in try ModelInput.decode(url, channels: channels).classifierView(size: size) },
            outputs: { [outputURL(relative: $0)] },
            process: { image, entry in
                var record = ClassifyRecord(path: entry.relativePath, status: .done)
                record.top = classify(image)
                let url = outputURL(relative: entry.relativePath)
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try AtomicFile.write(try JSONEncoder.pretty.encode(record.top), to: url)
                return record
            },
            existing: { entry in
                var record = ClassifyRecord(path: entry.relativePath, status: .existing)
                let url = outputURL(relative: entry.relativePath)
                do {
                    record.top = try JSONDecoder().decode([ClassifyRecord.Ranked].self, from: Data(contentsOf: url))
                } catch { throw FileError(file: url.path, reason: "cannot read an earlier result: \(error)") }
                return record
            },
            report: writeReports)
    }

    /// The top-k classes of one image (already at the network's input edge).
    func classify(_ image: Image) -> [ClassifyRecord.Ranked] {
        let info = loaded.info
        let planes = ModelInput.planes(of: image, mean: info.normalizationMean, std: info.normalizationStd)
        let logits = withNoGrad {
            loaded.model(Tensor(planes, shape: [1, image.channels, image.height, image.width]))
        }.scalars
        let top = logits.max() ?? 0
        let exps = logits.map { Foundation.exp(Double($0 - top)) }
        let total = exps.reduce(0, +)
        let ranked = exps.indices.sorted { exps[$0] > exps[$1] || (exps[$0] == exps[$1] && $0 < $1) }
        return ranked.prefix(options.topK).map {
            ClassifyRecord.Ranked(class: info.classNames[$0], index: $0, probability: exps[$0] / total)
        }
    }

    /// `report.csv` (path, status, class_1, probability_1, ... class_k, probability_k) and `report.json`.
    func writeReports(_ records: [ClassifyRecord], seconds: Double) throws {
        let k = min(options.topK, loaded.info.classes)
        var columns: [(name: String, value: (ClassifyRecord) -> String)] = []
        for i in 0..<k {
            columns.append(
                ("class_\(i + 1)", { i < $0.top.count ? BatchReport<ClassifyRecord>.csvField($0.top[i].class) : "" }))
            columns.append(
                ("probability_\(i + 1)", { i < $0.top.count ? String(format: "%.6f", $0.top[i].probability) : "" }))
        }
        struct Run: Encodable { let classes: [String] }
        try BatchReport(columns: columns).write(
            records, seconds: seconds, extra: Run(classes: loaded.info.classNames), to: outDirectory,
            stem: settings.reportStem)
    }
}
