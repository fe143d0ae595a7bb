import ArgumentParser
import Foundation
import TesseraInference
import TesseraSettings

/// `tessera classify`: the top-k classes of each image with a classifier checkpoint.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Classify images (files, folders, globs) with a classifier checkpoint (tessera train --task classify).",
        discussion: """
            Each image is seen as in validation: the shorter side resized to the model's input edge, the centre \
            cropped, the training normalisation. Writes OUT/<relative path>.json (the top-k classes with \
            probabilities) and OUT/report.csv (path, status, class_1, probability_1, ...) and OUT/report.json \
            (report-I-of-N.* for --shard I/N). Finished images are skipped on a rerun (--overwrite redoes them); \
            unreadable images are reported and the others go on; the exit status is non-zero if any failed.
            """)

    static var table: OptionTable<ClassifyOptions> { ClassifyOptions.table }
    static let defaults = ClassifyOptions.defaults

    @Argument(help: "Images, folders or glob patterns (PNG, JPEG, TIFF).") var inputs: [String]
    @Option(help: "Classifier checkpoint (.safetensors).") var model: String
    @Option(help: "Output folder.") var out: String
    @Option(help: table.argumentHelp("top_k")) var topK = defaults.topK
    @Flag(help: table.argumentHelp("recursive")) var recursive = false
    @Option(help: table.argumentHelp("shard")) var shard: Shard?
    @Flag(help: table.argumentHelp("overwrite")) var overwrite = false
    @Flag(help: table.argumentHelp("strict")) var strict = false
    @OptionGroup var output: OutputOptions

    var options: ClassifyOptions {
        var o = ClassifyOptions()
        o.topK = topK
        o.recursive = recursive
        o.shard = shard
        o.overwrite = overwrite
        o.strict = strict
        return o
    }

    func validate() throws { try Self.table.usage { try options.validate() } }

    func run() throws {
        let run = try ClassifyRun(
            checkpoint: URL(fileURLWithPath: model), options: options, out: URL(fileURLWithPath: out))
        run.console = output.console
        let (records, seconds) = try run.run(inputs: inputs)
        let outcome = BatchOutcome(records, seconds: seconds)
        try output.result(outcome.json(out: out)) {
            print(outcome.line(verb: "classified"))
        }
        let failed = records.filter { $0.status == .failed }.count
        if failed > 0 { throw output.fail("\(failed) of \(records.count) images could not be classified") }
    }
}
