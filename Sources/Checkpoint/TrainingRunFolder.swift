import Foundation

/// The files of a training run's folder, named in one place: the trainer writes them, `train` resumes from `last`,
/// a pipeline segments with `best` (or `last`) and its report reads the configuration and the metrics log.
public struct TrainingRunFolder: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    /// The resolved training configuration (`TrainingConfig`), written before the first step.
    public var config: URL { url.appendingPathComponent("config.json") }
    /// The checkpoint of the last validation (what a resumed run starts from).
    public var last: URL { url.appendingPathComponent("last.safetensors") }
    /// The checkpoint with the best validation score so far.
    public var best: URL { url.appendingPathComponent("best.safetensors") }
    /// One JSON object per validation.
    public var metricsLog: URL { url.appendingPathComponent("metrics.jsonl") }
    /// The same rows as a table.
    public var metricsTable: URL { url.appendingPathComponent("metrics.csv") }

    /// The checkpoint to segment with: the best one where validation chose one, otherwise the last.
    public var finalCheckpoint: URL { FileManager.default.fileExists(atPath: best.path) ? best : last }
}
