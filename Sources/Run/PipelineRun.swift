import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraInference
import TesseraTraining

/// Runs a `PipelineConfig` into its run folder: `train/` (a `TrainRun` run; resumes when rerun), `segment/`,
/// `explain/`, `pipeline.json` (the resolved configuration) and `report.html`. Every stage skips work a killed
/// earlier run finished.
public final class PipelineRun {
    public let config: PipelineConfig
    public let runDirectory: URL
    /// Where messages and progress go (every stage's).
    public var console = Console()
    /// Receives the run's messages instead of the console's logger when set (every stage's).
    public var log: ((String) -> Void)?

    func say(_ message: String) {
        if let log { log(message) } else { console.logger.info("\(message)") }
    }

    public init(config: PipelineConfig, runDirectory: URL? = nil) {
        self.config = config
        self.runDirectory = runDirectory ?? URL(fileURLWithPath: config.out)
    }

    /// What a run did: seconds per stage, the trainer's summary, and the segment and explain summaries.
    public struct Summary {
        public var stageSeconds: [(String, Double)] = []
        public var training: TrainRun.Summary?
        public var segment: SegmentRun.Summary?
        public var explain: ExplainRun.Summary?
        /// The explain stage's table of methods when it compares several (`compare`).
        public var comparison: ExplainComparison.Summary?
        public var classify: [ClassifyRecord]?
        public var evaluation: ClassificationEvaluation.Report?
        public var failures: Int {
            (segment?.failed ?? 0) + (explain?.failed ?? 0) + (comparison?.failed ?? 0) + (training?.skipped.count ?? 0)
                + (classify?.filter { $0.status == .failed }.count ?? 0) + (evaluation?.failures.count ?? 0)
        }
    }

    /// The run folder's files and stage folders, named once.
    public var trainDirectory: URL { runDirectory.appendingPathComponent("train") }
    public var segmentDirectory: URL { runDirectory.appendingPathComponent("segment") }
    public var explainDirectory: URL { runDirectory.appendingPathComponent("explain") }
    public var classifyDirectory: URL { runDirectory.appendingPathComponent("classify") }
    public var evalDirectory: URL { runDirectory.appendingPathComponent("eval") }
    public var resolvedConfiguration: URL { runDirectory.appendingPathComponent("pipeline.json") }
    public var reportFile: URL { runDirectory.appendingPathComponent("report.html") }

    /// The checkpoint segment and explain use when they name none.
    public var trainedCheckpoint: URL { TrainingRunFolder(trainDirectory).finalCheckpoint }

    public func run() throws -> Summary {
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        let resolved = try JSONSerialization.data(
            withJSONObject: config.resolved, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(resolved, to: resolvedConfiguration)
        var summary = Summary()
        func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
            say("== \(stage)")
            let t0 = Date()
            defer { summary.stageSeconds.append((stage, Date().timeIntervalSince(t0))) }
            return try body()
        }
        if let training = config.training {
            summary.training = try timed("train") {
                let trainer = TrainRun(config: training, runDirectory: trainDirectory)
                trainer.console = console
                trainer.log = log
                return try trainer.run()
            }
        }
        if let stage = config.segment {
            summary.segment = try timed("segment") {
                // The pipeline's folders are its own: after more training (or other settings) outputs are recomputed.
                var options = stage.options
                options.recomputeStale = true
                let run = try SegmentRun(
                    checkpoint: checkpoint(named: stage.model), options: options, out: segmentDirectory)
                run.console = console
                return try run.run(inputs: stage.inputs)
            }
        }
        if let stage = config.classify {
            summary.classify = try timed("classify") {
                var options = stage.options
                options.recomputeStale = true
                let run = try ClassifyRun(
                    checkpoint: checkpoint(named: stage.model), options: options, out: classifyDirectory)
                run.console = console
                return try run.run(inputs: stage.inputs).records
            }
        }
        if let stage = config.evaluate {
            summary.evaluation = try timed("eval") {
                var options = stage.options
                options.out = evalDirectory
                let report = try ClassificationEvaluation.run(
                    checkpoint: checkpoint(named: stage.model), images: URL(fileURLWithPath: stage.inputs[0]),
                    options: options)
                try FileManager.default.createDirectory(at: evalDirectory, withIntermediateDirectories: true)
                try AtomicFile.write(
                    Data(report.confusionCSV.utf8), to: evalDirectory.appendingPathComponent("confusion.csv"))
                var metrics: [String: Any] = report.metrics
                metrics["fgsm"] = report.attacked.map { ["epsilon": $0.epsilon, "accuracy": $0.scores.accuracy] }
                try AtomicFile.write(
                    try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys]),
                    to: evalDirectory.appendingPathComponent("metrics.json"))
                for e in report.failures { console.logger.error("\(e)") }
                let accuracy = String(format: "%.4f", report.scores.accuracy)
                say("eval: \(report.images) images, top-1 accuracy \(accuracy)")
                return report
            }
        }
        if let stage = config.explain {
            try timed("explain") {
                var options = stage.options
                options.recomputeStale = true
                let model = checkpoint(named: stage.model)
                if options.compare.isEmpty {
                    let run = try ExplainRun(model: model, options: options, out: explainDirectory)
                    run.console = console
                    summary.explain = try run.run(inputs: stage.inputs)
                } else {
                    let comparison = try ExplainComparison(model: model, options: options, out: explainDirectory)
                    comparison.console = console
                    summary.comparison = try comparison.run(inputs: stage.inputs)
                }
            }
        }
        if config.report {
            try RunReport(run: self, summary: summary).write(to: reportFile)
        }
        return summary
    }

    /// The checkpoint a stage names, or the one this run trained.
    func checkpoint(named path: String?) -> URL {
        path.map { URL(fileURLWithPath: $0) } ?? trainedCheckpoint
    }
}
