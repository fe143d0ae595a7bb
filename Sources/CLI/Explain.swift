import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraExplain
import TesseraInference
import TesseraSettings

/// `tessera explain`: Grad-CAM (and Grad-CAM++, Layer-CAM, occlusion) heatmaps for classifiers and segmenters.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain a model's decisions with attribution heatmaps (Grad-CAM and relatives).",
        discussion: """
            MODEL is a checkpoint from tessera train (segmentation: the target is the sum of the class's logits over \
            the pixels predicted as it, or --target-mask / --box) or a torchvision-named ResNet classifier in \
            safetensors (target: --class or the top-1 class). Writes OUT/heatmap/, OUT/overlay/ and OUT/raw/ with \
            the inputs' relative paths and OUT/report.csv / report.json; folders, shards, skipping of finished \
            images and error handling work as in tessera segment.
            """)

    static var table: OptionTable<ExplainOptions> { ExplainOptions.table }
    static let defaults = ExplainOptions.defaults

    @Argument(help: "Images, folders or glob patterns (PNG, JPEG).") var inputs: [String]
    @Option(help: "Checkpoint or ResNet classifier (.safetensors).") var model: String
    @Option(help: "Output folder.") var out: String
    @Option(help: table.argumentHelp("layer")) var layer: String?
    @Option(name: .customLong("class"), help: table.argumentHelp("class")) var targetClass: String?
    @Option(help: table.argumentHelp("target_mask")) var targetMask: String?
    @Option(help: table.argumentHelp("box"), transform: Explain.box)
    var box: PixelWindow?
    @Option(help: table.argumentHelp("method")) var method = defaults.method
    @Option(help: table.argumentHelp("colormap")) var colormap = defaults.colormap
    @Option(help: table.argumentHelp("alpha")) var alpha = defaults.alpha
    @Option(help: table.argumentHelp("outputs"), transform: CommaSeparated.choices) var outputs = defaults.outputs
    @Option(help: table.argumentHelp("raw_format")) var rawFormat = defaults.rawFormat
    @Option(help: table.argumentHelp("overlay_format")) var overlayFormat = defaults.overlayFormat
    @Option(help: table.argumentHelp("patch")) var patch: Int?
    @Option(help: table.argumentHelp("stride")) var stride: Int?
    @Option(help: table.argumentHelp("tile")) var tile: Int?
    @Option(help: table.argumentHelp("overlap")) var overlap = defaults.overlap
    @Option(help: table.argumentHelp("segments")) var segments = defaults.segments
    @Option(help: table.argumentHelp("compactness")) var compactness = defaults.compactness
    @Option(help: table.argumentHelp("fill")) var fill = defaults.fill
    @Option(help: table.argumentHelp("samples")) var samples = defaults.samples
    @Option(help: table.argumentHelp("seed")) var seed = defaults.seed
    @Option(help: table.argumentHelp("top_k")) var topK = defaults.topK
    @Option(help: table.argumentHelp("masks")) var masks: String?
    @Option(help: table.argumentHelp("object")) var object: Int?
    @Option(help: table.argumentHelp("band")) var band = defaults.band
    @Option(help: table.argumentHelp("metrics"), transform: CommaSeparated.choices) var metrics = defaults.metrics
    @Option(help: table.argumentHelp("compare"), transform: CommaSeparated.choices) var compare = defaults.compare
    @Option(help: table.argumentHelp("max_pixels")) var maxPixels = defaults.maxPixels
    @Option(help: table.argumentHelp("mean"), transform: CommaSeparated.numbers) var mean: [Float]?
    @Option(help: table.argumentHelp("std"), transform: CommaSeparated.numbers) var std: [Float]?
    @Flag(help: table.argumentHelp("recursive")) var recursive = false
    @Option(help: table.argumentHelp("shard")) var shard: Shard?
    @Flag(help: table.argumentHelp("overwrite")) var overwrite = false
    @Flag(help: table.argumentHelp("strict")) var strict = false
    @OptionGroup var output: OutputOptions

    /// `--box X,Y,WIDTH,HEIGHT`, read by the table.
    @Sendable static func box(_ text: String) throws -> PixelWindow {
        try table.parse(text, "box", \.box, base: defaults)
    }

    var options: ExplainOptions {
        var o = ExplainOptions()
        o.box = box
        (o.method, o.layer, o.targetClass, o.colormap, o.alpha, o.outputs) = (
            method, layer, targetClass, colormap, alpha, outputs
        )
        o.targetMask = targetMask.map { URL(fileURLWithPath: $0) }
        o.object = object
        (o.rawFormat, o.overlayFormat, o.patch, o.stride, o.band, o.maxPixels) = (
            rawFormat, overlayFormat, patch, stride, band, maxPixels
        )
        o.masks = masks.map { URL(fileURLWithPath: $0) }
        o.mean = mean
        o.std = std
        (o.metrics, o.compare, o.tile, o.overlap) = (metrics, compare, tile, overlap)
        (o.segments, o.compactness, o.fill, o.samples, o.seed, o.topK) = (
            segments, compactness, fill, samples, seed, topK
        )
        (o.recursive, o.shard, o.overwrite, o.strict) = (recursive, shard, overwrite, strict)
        return o
    }

    func validate() throws { try Self.table.usage { try options.validate() } }

    func run() throws {
        if !compare.isEmpty { return try runComparison() }
        let run = try ExplainRun(model: URL(fileURLWithPath: model), options: options, out: URL(fileURLWithPath: out))
        run.console = output.console
        let summary = try run.run(inputs: inputs)
        let outcome = BatchOutcome(summary.records, seconds: summary.seconds)
        var result = outcome.json(out: out)
        if let mass = summary.meanMassInTruth { result["mean_mass_in_truth_band"] = mass }
        let scores = summary.meanScores(), random = summary.meanScores(random: true)
        if !scores.isEmpty { result["mean_faithfulness"] = scores }
        if !random.isEmpty { result["mean_random_faithfulness"] = random }
        try output.result(result) {
            print(outcome.line(verb: "explained"))
            if let mass = summary.meanMassInTruth {
                print(String(format: "  mean share of the map on the truth band: %.4f", mass))
            }
            for m in FaithfulnessMetric.allCases {
                guard let v = scores[m.rawValue] else { continue }
                print(
                    String(format: "  mean %@: %.4f", m.rawValue, v)
                        + (random[m.rawValue].map { String(format: " (random map %.4f)", $0) } ?? ""))
            }
            print("  outputs in \(out)")
        }
        if summary.failed > 0 {
            throw output.fail("\(summary.failed) of \(summary.records.count) images could not be explained")
        }
    }

    /// `--compare`: every method on the same inputs, and the table of methods by faithfulness.
    func runComparison() throws {
        let comparison = try ExplainComparison(
            model: URL(fileURLWithPath: model), options: options, out: URL(fileURLWithPath: out))
        comparison.console = output.console
        let summary = try comparison.run(inputs: inputs)
        let result: [String: Any] = [
            "out": out, "compare": "\(out)/compare.csv", "failed": summary.failed,
            "rows": summary.rows.map { r -> [String: Any] in
                [
                    "method": r.method, "images": r.images, "scores": r.scores,
                    "seconds_per_image": r.secondsPerImage ?? NSNull()
                ]
            }
        ]
        try output.result(result) {
            print("  outputs in \(out)/METHOD/, table in \(out)/compare.csv")
        }
        if summary.failed > 0 { throw output.fail("\(summary.failed) explanations failed") }
    }
}
