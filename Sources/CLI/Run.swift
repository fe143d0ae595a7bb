import ArgumentParser
import Foundation
import TesseraConsole
import TesseraRun

/// `tessera run`: runs a declared pipeline (`pipelines/*.yaml`).
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a YAML pipeline: ingest, model, train, segment, explain and the HTML report.",
        discussion: """
            Writes the run folder (`out`, default runs/<name>): train/ (checkpoints, metrics), segment/, explain/, \
            pipeline.json (the configuration as resolved) and report.html. Running the same command again resumes \
            training and skips finished images. Keys are overridden with --set section.key=value (YAML values, \
            e.g. --set train.steps=100 --set 'segment.outputs=[mask, overlay]').
            """)

    @Argument(help: "Pipeline file (YAML).") var pipeline: String
    @Option(name: .customLong("set"), help: "Override a key: section.key=value (repeatable).") var overrides: [String] =
        []
    @Flag(help: "Validate the file (keys, types, paths) without running.") var check = false
    @Option(help: "Run folder (overrides the file's 'out').") var out: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        var config: PipelineConfig
        do { config = try PipelineReader.read(URL(fileURLWithPath: pipeline), overrides: overrides) } catch let e
            as PipelineError
        {
            output.console.logger.error("\(e)")
            throw ExitCode(2)
        }
        if let out { config.out = out }
        let stages = [
            config.training.map { _ in "train" }, config.segment.map { _ in "segment" },
            config.explain.map { _ in "explain" }, config.report ? "report" : nil
        ].compactMap { $0 }
        if check {
            try output.result(["pipeline": pipeline, "valid": true, "stages": stages, "out": config.out]) {
                print("\(pipeline): valid; stages \(stages.joined(separator: ", ")); run folder \(config.out)")
            }
            return
        }
        let run = PipelineRun(config: config)
        run.console = output.console
        let summary = try run.run()
        var result: [String: Any] = [
            "name": config.name, "out": config.out, "failures": summary.failures,
            "stage_seconds": Dictionary(summary.stageSeconds, uniquingKeysWith: { a, _ in a })
        ]
        if let t = summary.training { result["training"] = ["steps": t.steps, "last": t.last] as [String: Any] }
        if let s = summary.segment {
            result["segment"] = ["images": s.records.count, "metrics": s.metrics ?? [:]] as [String: Any]
        }
        if let e = summary.explain {
            result["explain"] =
                ["images": e.records.count, "mean_mass_in_truth_band": e.meanMassInTruth as Any] as [String: Any]
        }
        if config.report { result["report"] = "\(config.out)/report.html" }
        try output.result(result) {
            print("run \(config.name) finished in \(config.out):")
            for (stage, seconds) in summary.stageSeconds { print(String(format: "  %-8@ %7.1f s", stage, seconds)) }
            if let t = summary.training {
                let keys = ["pixel_accuracy", "mean_iou", "mean_dice", "accuracy", "mean_f1"]
                print(
                    "  training: \(t.steps) steps; last validation "
                        + keys.compactMap { k in t.last[k].map { String(format: "%@ %.4f", k, $0) } }.joined(
                            separator: ", "))
                print("    checkpoints: \(run.trainDirectory.path)/best.safetensors, last.safetensors")
            }
            if let s = summary.segment {
                print(
                    "  segment: \(s.records.count) images -> \(config.out)/segment"
                        + (s.metrics?["mean_dice"].map { String(format: " (mean Dice %.4f)", $0) } ?? ""))
            }
            if let e = summary.explain {
                print(
                    "  explain: \(e.records.count) images -> \(config.out)/explain"
                        + (e.meanMassInTruth.map { String(format: " (share on truth band %.3f)", $0) } ?? ""))
            }
            if config.report { print("  report: \(config.out)/report.html") }
        }
        if summary.failures > 0 {
            throw output.fail("\(summary.failures) inputs could not be processed (see the reports)")
        }
    }
}
