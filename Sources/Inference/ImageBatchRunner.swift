import Foundation
import TesseraConsole
import TesseraData
import TesseraEngine

/// The loop `tessera segment` and `tessera explain` share: expands files, folders and globs, stops before any
/// work when two inputs would write the same file or the folder holds outputs of another model or settings, takes
/// its shard, skips inputs whose outputs are complete, decodes the next image while the current one runs, turns an
/// input's error into a failed record (or stops, when strict), and rewrites the reports after a strict stop and at
/// the end.
public struct ImageBatchRunner<Record: BatchRecord> {
    public let settings: BatchSettings

    /// Failures are logged as errors and each image at debug level through `settings.console`; progress is drawn.
    public init(settings: BatchSettings) {
        self.settings = settings
    }

    /// Runs `process` on each decoded input, or `existing` on inputs whose outputs are all there.
    /// - Parameters:
    ///   - outputs: the files an input (by relative path) makes.
    ///   - report: writes the reports for the records so far and the elapsed seconds.
    public func run<Input: Sendable>(
        inputs: [String], decode: @escaping @Sendable (URL) throws -> Input, outputs: (String) -> [URL],
        process: (Input, InputFiles.Entry) throws -> Record, existing: (InputFiles.Entry) throws -> Record,
        report: ([Record], Double) throws -> Void
    ) throws -> (records: [Record], seconds: Double) {
        let all = try InputFiles(inputs, extensions: ImageFormat.fileExtensions, recursive: settings.recursive).entries
        try Self.checkDistinctOutputs(all, outputs: outputs)
        let entries = settings.shard.map { $0.select(all) } ?? all
        try FileManager.default.createDirectory(at: settings.out, withIntermediateDirectories: true)
        TemporaryFiles.removeStale(under: settings.out)
        try reconcileProvenance(all, outputs: outputs)
        let started = Date()
        var records: [Record] = []
        let progress = settings.console.progress(unit: "image")
        progress.start(total: entries.count)
        defer { progress.finish() }
        // Decodes input i + 1 while input i runs (nil: its outputs are complete, nothing to decode).
        let urls = entries.map { settings.overwrite || !OutputFiles.complete(outputs($0.relativePath)) ? $0.url : nil }
        let decoded = PrefetchQueue<Result<Input, Error>?>.producing(count: urls.count) { i in
            urls[i].map { url in Result { try decode(url) } }
        }
        for (i, entry) in entries.enumerated() {
            let image = decoded.next() ?? nil
            let t0 = Date()
            var record: Record
            do {
                if let problem = SafeName.problem(relativePath: entry.relativePath) {
                    throw FileError(file: entry.url.path, reason: "the file name \(problem)")
                }
                if let image {
                    record = try process(image.get(), entry)
                    record.status = .done
                } else {
                    record = try existing(entry)
                    record.status = .existing
                }
            } catch {
                record = Record(path: entry.relativePath, status: .failed)
                record.error = "\(error)"
                settings.console.logger.error("\(error)")
                if settings.strict {
                    records.append(record)
                    try report(records, Date().timeIntervalSince(started))
                    throw error
                }
            }
            record.seconds = Date().timeIntervalSince(t0)
            records.append(record)
            settings.console.logger.debug(
                "\(record.status.rawValue) \(entry.relativePath)",
                metadata: [
                    "index": "\(i + 1)", "of": "\(entries.count)",
                    "seconds": "\(String(format: "%.3f", record.seconds))"
                ])
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
                    throw BatchError(
                        reason: "\(other.url.path) and \(entry.url.path) would both write \(key); give the "
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
            let why =
                recorded.map { "were made with something else: " + current.changes(from: $0).joined(separator: ", ") }
                ?? "have no record of the model and settings that made them (\(OutputProvenance.fileName))"
            guard settings.overwrite || settings.recomputeStale else {
                throw FileError(
                    file: settings.out.path,
                    reason: "the outputs of \(made.count) input(s) \(why); "
                        + "--overwrite recomputes them, or choose another --out")
            }
            settings.console.logger.notice(
                "\(settings.out.path): recomputing the outputs of \(made.count) input(s), which \(why)")
            for entry in made {
                for url in outputs(entry.relativePath) where fm.fileExists(atPath: url.path) {
                    try fm.removeItem(at: url)
                }
            }
        }
        try current.write(in: settings.out)
    }
}
