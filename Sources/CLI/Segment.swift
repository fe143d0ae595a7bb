import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraInference
import TesseraSettings

/// `tessera segment`: batch-segments images with a checkpoint through tiled inference.
struct Segment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment images (files, folders, globs) with a trained checkpoint.",
        discussion: """
            Writes OUT/<relative path>.png (class ids) and, as asked, OUT/color/, OUT/overlay/, OUT/prob/, OUT/logits/ \
            with the same relative paths, plus OUT/report.csv and OUT/report.json (report-I-of-N.* for --shard I/N). Outputs that already exist are \
            skipped (--overwrite redoes them); files appear by rename, so a killed run is finished by running the \
            same command again. Unreadable images are reported and the others go on; the exit status is non-zero \
            if any failed (--strict stops at the first). TIFF inputs (whole-slide images of any size) are read and \
            their TIFF outputs written chunk by chunk in bounded memory; a killed run resumes from the last chunk \
            row. With --instances, the objects of each mask go to OUT/instances/ (16-bit label images; 32-bit TIFF \
            past 65535 objects) and OUT/objects/ (a CSV row per object: id, class, area, centroid, bounding box, \
            equivalent diameter, eccentricity, intensities); the report counts them per class and, with --masks, \
            scores them (rand_error, vi_split, vi_merge, object_f1_50, average_precision).
            """)

    static var table: OptionTable<SegmentOptions> { SegmentOptions.table }
    static let defaults = SegmentOptions.defaults

    @Argument(help: "Images, folders or glob patterns (PNG, JPEG, TIFF).") var inputs: [String]
    @Option(help: "Checkpoint (.safetensors from tessera train).") var model: String
    @Option(help: "Output folder.") var out: String
    @Flag(help: table.argumentHelp("recursive")) var recursive = false
    @Option(help: table.argumentHelp("outputs"), transform: CommaSeparated.choices) var outputs = defaults.outputs
    @Option(help: table.argumentHelp("tile")) var tile: Int?
    @Option(help: table.argumentHelp("overlap")) var overlap = defaults.overlap
    @Option(help: table.argumentHelp("blend")) var blend = defaults.blend
    @Flag(help: table.argumentHelp("tta")) var tta = false
    @Option(help: table.argumentHelp("masks")) var masks: String?
    @Option(help: table.argumentHelp("shard")) var shard: Shard?
    @Flag(help: table.argumentHelp("overwrite")) var overwrite = false
    @Flag(help: table.argumentHelp("strict")) var strict = false
    @Option(help: table.argumentHelp("overlay_format")) var overlayFormat = defaults.overlayFormat
    @Option(help: table.argumentHelp("output_format")) var outputFormat: OutputFileFormat?
    @Option(help: table.argumentHelp("tiff_pages")) var tiffPages = defaults.tiffPages
    @Option(help: table.argumentHelp("chunk")) var chunk = defaults.chunk
    @OptionGroup var objects: InstanceOptions
    @OptionGroup var output: OutputOptions

    var options: SegmentOptions {
        var o = SegmentOptions()
        o.objects = objects.options
        o.outputs = outputs
        o.tile = tile
        o.overlap = overlap
        o.blend = blend
        o.tta = tta
        o.masks = masks.map { URL(fileURLWithPath: $0) }
        o.shard = shard
        o.overwrite = overwrite
        o.strict = strict
        o.overlayFormat = overlayFormat
        o.outputFormat = outputFormat
        o.tiffPages = tiffPages
        o.chunk = chunk
        o.recursive = recursive
        return o
    }

    func validate() throws { try Self.table.usage { try options.validate() } }

    func run() throws {
        let o = options
        let run = try SegmentRun(checkpoint: URL(fileURLWithPath: model), options: o, out: URL(fileURLWithPath: out))
        run.console = output.console
        let summary = try run.run(inputs: inputs)
        let outcome = BatchOutcome(summary.records, seconds: summary.seconds)
        var result = outcome.json(out: out)
        if let metrics = summary.metrics { result["metrics"] = metrics }
        try output.result(result) {
            let perImage = outcome.secondsPerImage
            print(outcome.line(verb: "segmented") + String(format: ", %.2f images/s", perImage > 0 ? 1 / perImage : 0))
            if let metrics = summary.metrics {
                for key in ["pixel_accuracy", "mean_iou", "mean_dice", "rand_error", "object_f1_50"] {
                    if let v = metrics[key] { print(String(format: "  %@ %.4f", key, v)) }
                }
            }
        }
        if summary.failed > 0 {
            throw output.fail("\(summary.failed) of \(summary.records.count) images could not be segmented")
        }
    }
}
