import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraSettings

/// `tessera eval`: metrics of a checkpoint on image/mask folders, or of a classifier on a labelled folder.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Pixel accuracy, IoU, Dice, precision and recall of a segmentation checkpoint; accuracy, per-class scores, confusion and calibration of a classifier.",
        discussion: """
            Segmentation: --images and --masks. With --instances, predictions and truth masks are made into objects \
            (truth by connected components under the same rules) and scored as the ISBI 2012 challenge did \
            (rand_error: 1 - the F-score of the foreground-restricted Rand index after thinning the predicted \
            boundaries; vi_split, vi_merge in nats) and as Cellpose does (object_precision_50, object_recall_50, \
            object_f1_50, average_precision over IoU 0.5-0.95): means over the pairs.
            Classification (--task classify, or any classifier checkpoint): --images holds class sub-folders or a \
            path,label CSV; top1_accuracy, top5_accuracy, precision_/recall_/f1_<class> and their means, loss, ece \
            (expected calibration error, 15 bins); --out writes metrics.json and confusion.csv.
            --fgsm EPS,... scores the model under the fast gradient sign attack (pixel units): accuracy for a \
            classifier, Dice and the other pixel metrics for a segmenter.
            """)
    static var table: OptionTable<EvalOptions> { EvalOptions.table }

    @Option(help: "Checkpoint (.safetensors from tessera train).") var model: String
    @Option(help: "What the checkpoint does (default: what it holds); a mismatch is refused.") var task: NetworkTask?
    @Option(help: "Folder of images (classification: class sub-folders or a path,label CSV).") var images: String
    @Option(help: "Folder of masks (segmentation).") var masks: String?
    @Option(help: table.argumentHelp("tile")) var tile: Int?
    @Option(help: table.argumentHelp("overlap")) var overlap = EvalOptions.defaults.window.overlap
    @Option(help: table.argumentHelp("blend")) var blend = EvalOptions.defaults.window.blend
    @Flag(help: table.argumentHelp("tta")) var tta = false
    @Option(help: table.argumentHelp("fgsm"), transform: CommaSeparated.numbers) var fgsm: [Double]?
    @Option(help: table.argumentHelp("out")) var out: String?
    @Flag(help: table.argumentHelp("write_perturbed")) var writePerturbed = false
    @OptionGroup var objects: InstanceOptions
    @OptionGroup var output: OutputOptions

    var options: EvalOptions {
        var o = EvalOptions()
        o.window.tile = tile
        o.window.overlap = overlap
        o.window.blend = blend
        o.window.tta = tta
        o.objects = objects.options
        o.fgsm = fgsm
        o.out = out.map { URL(fileURLWithPath: $0) }
        o.writePerturbed = writePerturbed
        return o
    }

    func validate() throws { try Self.table.usage { try options.validate() } }

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let held = try Checkpoint.read(url).info.network.task
        if let task, task != held {
            throw ValidationError(
                "\(model) holds a \(held == .classify ? "classifier" : "segmentation model"), not --task \(task.rawValue)"
            )
        }
        if let out { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }
        if held == .classify {
            guard masks == nil else {
                throw ValidationError("--masks is for segmentation; a classifier's classes come from --images")
            }
            try classify(url)
        } else {
            guard let masks else { throw ValidationError("--masks is required to evaluate a segmentation model") }
            try segment(url, masks: masks)
        }
    }

    func segment(_ url: URL, masks: String) throws {
        let report = try Evaluation.run(
            checkpoint: url, images: URL(fileURLWithPath: images), masks: URL(fileURLWithPath: masks), options: options)
        let attacked = report.attacked.map { a in a.metrics.merging(["epsilon": a.epsilon]) { x, _ in x } }
        var result: [String: Any] = report.metrics.merging(["pairs": Double(report.pairs)]) { a, _ in a }
        if !attacked.isEmpty { result["fgsm"] = attacked }
        try save(result)
        try output.result(result) {
            print("\(report.pairs) pairs")
            for (k, v) in report.metrics.sorted(by: { $0.key < $1.key }) { print(String(format: "%-18@ %.4f", k, v)) }
            for a in report.attacked {
                print(
                    String(
                        format: "fgsm eps %-8g pixel_accuracy %.4f  mean_dice %.4f", a.epsilon,
                        a.metrics["pixel_accuracy"] ?? 0, a.metrics["mean_dice"] ?? 0))
            }
        }
        for e in report.failures { output.console.logger.error("\(e)") }
        if !report.failures.isEmpty { throw ExitCode(1) }
    }

    func classify(_ url: URL) throws {
        let report = try ClassificationEvaluation.run(
            checkpoint: url, images: URL(fileURLWithPath: images), options: options)
        let attacked = report.attacked.map { a in
            ["epsilon": a.epsilon, "accuracy": a.scores.accuracy, "top5_accuracy": a.scores.top5Accuracy]
        }
        var result: [String: Any] = report.metrics.merging(["images": Double(report.images)]) { a, _ in a }
        if !attacked.isEmpty { result["fgsm"] = attacked }
        try save(result)
        if let out {
            try AtomicFile.write(
                Data(report.confusionCSV.utf8), to: URL(fileURLWithPath: out).appendingPathComponent("confusion.csv"))
        }
        try output.result(result) {
            print("\(report.images) images")
            let m = report.metrics
            for key in ["top1_accuracy", "top5_accuracy", "mean_precision", "mean_recall", "mean_f1", "loss", "ece"] {
                print(String(format: "%-16@ %.4f", key, m[key] ?? 0))
            }
            for (c, name) in report.classNames.enumerated() {
                print(
                    String(
                        format: "  %-14@ precision %.4f  recall %.4f  f1 %.4f", name, m["precision_\(c)"] ?? 0,
                        m["recall_\(c)"] ?? 0, m["f1_\(c)"] ?? 0))
            }
            print(report.confusionCSV, terminator: "")
            for a in report.attacked {
                print(String(format: "fgsm eps %-8g accuracy %.4f", a.epsilon, a.scores.accuracy))
            }
        }
        for e in report.failures { output.console.logger.error("\(e)") }
        if !report.failures.isEmpty { throw ExitCode(1) }
    }

    /// `OUT/metrics.json`, when --out is given.
    func save(_ result: [String: Any]) throws {
        guard let out else { return }
        let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: URL(fileURLWithPath: out).appendingPathComponent("metrics.json"))
    }
}
