import ArgumentParser
import Foundation
import TesseraInference

/// `tessera eval`: metrics of a checkpoint on image/mask folders.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pixel accuracy, IoU, Dice, precision and recall of a checkpoint.")

    @Option(help: "Checkpoint (.safetensors from tessera train).") var model: String
    @Option(help: "Folder of images.") var images: String
    @Option(help: "Folder of masks.") var masks: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let report = try Evaluation.run(
            checkpoint: URL(fileURLWithPath: model), images: URL(fileURLWithPath: images),
            masks: URL(fileURLWithPath: masks))
        try output.result(report.metrics.merging(["pairs": Double(report.pairs)]) { a, _ in a }) {
            print("\(report.pairs) pairs")
            for (k, v) in report.metrics.sorted(by: { $0.key < $1.key }) { print(String(format: "%-18@ %.4f", k, v)) }
        }
        for e in report.failures { output.console.logger.error("\(e)") }
        if !report.failures.isEmpty { throw ExitCode(1) }
    }
}
