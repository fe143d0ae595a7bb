import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraInference

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

    @Argument(help: "Images, folders or glob patterns (PNG, JPEG, TIFF).") var inputs: [String]
    @Option(help: "Checkpoint (.safetensors from tessera train).") var model: String
    @Option(help: "Output folder.") var out: String
    @Flag(help: "Descend into sub-folders.") var recursive = false
    @Option(
        help: "Outputs, comma-separated: mask, color, overlay, prob, logits (the mask is always written).",
        transform: CommaSeparated.choices)
    var outputs = SegmentOptions.defaults.outputs
    @Option(help: "Tile edge in pixels (default: the training crop).") var tile: Int?
    @Option(help: "Overlap of neighbouring tiles, 0 to < 1.") var overlap = SegmentOptions.defaults.overlap
    @Option(help: "Tile blending.") var blend = SegmentOptions.defaults.blend
    @Flag(help: "Test-time augmentation: average over flips and rotations by 90 degrees.") var tta = false
    @Option(help: "Ground-truth masks with the same relative paths: adds metrics to the report.") var masks: String?
    @Option(help: "Process shard i of n of the sorted inputs (e.g. 0/4).") var shard: Shard?
    @Flag(help: "Recompute outputs that already exist.") var overwrite = false
    @Flag(help: "Stop at the first image that cannot be segmented.") var strict = false
    @Option(help: "Overlay file format (PNG outputs; TIFF outputs have TIFF overlays).")
    var overlayFormat = SegmentOptions.defaults.overlayFormat
    @Option(help: "Output file format (default: tiff for TIFF inputs, png for the others).")
    var outputFormat: OutputFileFormat?
    @Option(help: "How the pages of a multi-page TIFF become images.") var tiffPages = SegmentOptions.defaults.tiffPages
    @Option(help: "Chunk edge in pixels, a multiple of 256: memory follows it, whatever the image size.")
    var chunk = SegmentOptions.defaults.chunk
    @OptionGroup var objects: InstanceOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var o = SegmentOptions()
        o.instances = objects.settings
        o.truth = objects.truth
        o.outputs = outputs
        guard (0..<1).contains(overlap) else { throw ValidationError("--overlap must be in [0, 1)") }
        if let tile, tile < 1 { throw ValidationError("--tile must be positive") }
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
