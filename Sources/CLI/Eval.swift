import ArgumentParser
import Foundation
import TesseraInference

/// `tessera eval`: metrics of a checkpoint on image/mask folders.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pixel accuracy, IoU, Dice, precision and recall of a checkpoint.",
        discussion: """
            With --instances, predictions and truth masks are made into objects (truth by connected components \
            under the same rules) and scored as the ISBI 2012 challenge did (rand_error: 1 - the F-score of the \
            foreground-restricted Rand index after thinning the predicted boundaries; vi_split, vi_merge in nats) \
            and as Cellpose does (object_precision_50, object_recall_50, object_f1_50, average_precision over IoU \
            0.5-0.95): means over the pairs.
            """)

    @Option(help: "Checkpoint (.safetensors from tessera train).") var model: String
    @Option(help: "Folder of images.") var images: String
    @Option(help: "Folder of masks.") var masks: String
    @OptionGroup var objects: InstanceOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let report = try Evaluation.run(
            checkpoint: URL(fileURLWithPath: model), images: URL(fileURLWithPath: images),
            masks: URL(fileURLWithPath: masks), instances: objects.settings,
            truth: objects.truth)
        try output.result(report.metrics.merging(["pairs": Double(report.pairs)]) { a, _ in a }) {
            print("\(report.pairs) pairs")
            for (k, v) in report.metrics.sorted(by: { $0.key < $1.key }) { print(String(format: "%-18@ %.4f", k, v)) }
        }
        for e in report.failures { output.console.logger.error("\(e)") }
        if !report.failures.isEmpty { throw ExitCode(1) }
    }
}
