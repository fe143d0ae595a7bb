import ArgumentParser
import Foundation
import TesseraInference
import TesseraSettings

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
    static var table: OptionTable<EvalOptions> { EvalOptions.table }

    @Option(help: "Checkpoint (.safetensors from tessera train).") var model: String
    @Option(help: "Folder of images.") var images: String
    @Option(help: "Folder of masks.") var masks: String
    @Option(help: table.argumentHelp("tile")) var tile: Int?
    @Option(help: table.argumentHelp("overlap")) var overlap = EvalOptions.defaults.window.overlap
    @Option(help: table.argumentHelp("blend")) var blend = EvalOptions.defaults.window.blend
    @Flag(help: table.argumentHelp("tta")) var tta = false
    @OptionGroup var objects: InstanceOptions
    @OptionGroup var output: OutputOptions

    var options: EvalOptions {
        var o = EvalOptions()
        o.window.tile = tile
        o.window.overlap = overlap
        o.window.blend = blend
        o.window.tta = tta
        o.objects = objects.options
        return o
    }

    func validate() throws { try Self.table.usage { try options.validate() } }

    func run() throws {
        let report = try Evaluation.run(
            checkpoint: URL(fileURLWithPath: model), images: URL(fileURLWithPath: images),
            masks: URL(fileURLWithPath: masks), options: options)
        try output.result(report.metrics.merging(["pairs": Double(report.pairs)]) { a, _ in a }) {
            print("\(report.pairs) pairs")
            for (k, v) in report.metrics.sorted(by: { $0.key < $1.key }) { print(String(format: "%-18@ %.4f", k, v)) }
        }
        for e in report.failures { output.console.logger.error("\(e)") }
        if !report.failures.isEmpty { throw ExitCode(1) }
    }
}
