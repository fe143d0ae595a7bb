import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraExplain
import TesseraInference

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

    @Argument(help: "Images, folders or glob patterns (PNG, JPEG).") var inputs: [String]
    @Option(help: "Checkpoint or ResNet classifier (.safetensors).") var model: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Layer by dotted path (default: the last convolutional stage).") var layer: String?
    @Option(
        name: .customLong("class"), help: "Class index or name (default: top-1 / most predicted non-background class).")
    var targetClass: String?
    @Option(help: "Segmentation target region: a mask PNG (nonzero = region), or a folder of them by relative path.")
    var targetMask: String?
    @Option(
        help: "Segmentation target region as a box X,Y,WIDTH,HEIGHT in image pixels.", transform: CommaSeparated.numbers
    )
    var box: [Int]?
    @Option(help: "Attribution method.") var method = ExplainOptions.defaults.method
    @Option(help: "Heatmap colours.") var colormap = ExplainOptions.defaults.colormap
    @Option(help: "Weight of the heatmap in the overlay, 0-1.") var alpha = ExplainOptions.defaults.alpha
    @Option(help: "Outputs, comma-separated: heatmap, overlay, raw.", transform: CommaSeparated.choices)
    var outputs = ExplainOptions.defaults.outputs
    @Option(help: "Raw map format: png (16-bit) or npy (float32).") var rawFormat = ExplainOptions.defaults.rawFormat
    @Option(help: "Overlay file format.") var overlayFormat = ExplainOptions.defaults.overlayFormat
    @Option(help: "Occlusion patch edge in pixels (default: an eighth of the shorter side).") var patch: Int?
    @Option(help: "Occlusion step in pixels (default: half the patch).") var stride: Int?
    @Option(help: "Ground-truth masks (same relative paths): report the map's share on the class's pixels.") var masks:
        String?
    @Option(
        help:
            "Explain one object: its pixels in --target-mask (segment --instances' instances/ folder), or object ID of the prediction's connected components."
    )
    var object: Int?
    @Option(help: "Band around the true pixels counted with them, in pixels.") var band = ExplainOptions.defaults.band
    @Option(help: "Largest image explained (pixels); larger ones are reported as failed.") var maxPixels =
        ExplainOptions.defaults.maxPixels
    @Option(
        help: "Normalisation mean per channel, comma-separated (default: the model's).",
        transform: CommaSeparated.numbers)
    var mean: [Float]?
    @Option(
        help: "Normalisation std per channel, comma-separated (default: the model's).",
        transform: CommaSeparated.numbers)
    var std: [Float]?
    @Flag(help: "Descend into sub-folders.") var recursive = false
    @Option(help: "Process shard i of n of the sorted inputs (e.g. 0/4).") var shard: Shard?
    @Flag(help: "Recompute outputs that already exist.") var overwrite = false
    @Flag(help: "Stop at the first image that cannot be explained.") var strict = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be in [0, 1]") }
        guard !outputs.isEmpty else { throw ValidationError("--outputs names nothing") }
        if let v = box {
            guard v.count == 4, v[0] >= 0, v[1] >= 0, v[2] > 0, v[3] > 0, v.allSatisfy({ $0 <= 1 << 24 }) else {
                throw ValidationError("--box takes X,Y,WIDTH,HEIGHT: x, y >= 0, a positive size, each at most 2^24")
            }
        }
        if let patch, patch < 1 { throw ValidationError("--patch must be positive") }
        if let stride, stride < 1 { throw ValidationError("--stride must be positive") }
        guard (0...4096).contains(band), maxPixels > 0 else {
            throw ValidationError("--band must be 0-4096 and --max-pixels positive")
        }
    }

    func run() throws {
        var o = ExplainOptions()
        o.box = box.map { PixelWindow(x: $0[0], y: $0[1], width: $0[2], height: $0[3]) }
        let kinds = outputs
        (o.method, o.layer, o.targetClass, o.colormap, o.alpha, o.outputs) = (
            method, layer, targetClass, colormap, alpha, kinds
        )
        o.targetMask = targetMask.map { URL(fileURLWithPath: $0) }
        o.object = object
        (o.rawFormat, o.overlayFormat, o.patch, o.stride, o.band, o.maxPixels) = (
            rawFormat, overlayFormat, patch, stride, band, maxPixels
        )
        o.masks = masks.map { URL(fileURLWithPath: $0) }
        o.mean = mean
        o.std = std
        var settings = BatchSettings(out: URL(fileURLWithPath: out))
        settings.console = output.console
        settings.recursive = recursive
        settings.shard = shard
        settings.overwrite = overwrite
        settings.strict = strict
        let run = try ExplainRun(model: URL(fileURLWithPath: model), options: o, settings: settings)
        let summary = try run.run(inputs: inputs)
        let outcome = BatchOutcome(summary.records, seconds: summary.seconds)
        var result = outcome.json(out: out)
        if let mass = summary.meanMassInTruth { result["mean_mass_in_truth_band"] = mass }
        try output.result(result) {
            print(outcome.line(verb: "explained"))
            if let mass = summary.meanMassInTruth {
                print(String(format: "  mean share of the map on the truth band: %.4f", mass))
            }
            print("  outputs in \(out)")
        }
        if summary.failed > 0 {
            throw output.fail("\(summary.failed) of \(summary.records.count) images could not be explained")
        }
    }
}
