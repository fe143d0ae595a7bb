import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraDistributed
import TesseraInference
import TesseraModels
import TesseraNN
import TesseraSettings
import TesseraTraining

/// `tessera train`: trains a U-Net on image/mask folders into a run folder.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a U-Net on images/ + masks/ folders (paired by file stem), or a classifier (--task classify).",
        discussion: """
            Classification (--task classify --model lenet5|resnetN) reads --images as class sub-folders \
            (torchvision's ImageFolder: class names the folder names, sorted) or a CSV of path,label. \
            Writes RUN_DIR/config.json, last.safetensors (weights + optimizer state), best.safetensors, \
            metrics.jsonl and metrics.csv. A 0/255 mask maps 0 -> class 0 and 255 -> class 1. With the same seed, \
            data and TESSERA_THREADS a rerun gives bit-identical weights; --resume RUN_DIR continues a stopped run \
            to the same result.
            """)

    static var table: OptionTable<TrainingConfig> { TrainingConfig.table }
    static let defaults = TrainingConfig.defaults

    @Option(help: table.argumentHelp("task")) var task: NetworkTask?
    @Option(help: table.argumentHelp("images")) var images: String?
    @Option(help: table.argumentHelp("masks")) var masks: String?
    @Option(help: table.argumentHelp("arch")) var model = defaults.model
    @Option(help: table.argumentHelp("depth")) var depth = defaults.depth
    @Option(help: table.argumentHelp("width")) var width = defaults.width
    @Option(help: table.argumentHelp("dropout")) var dropout: Double?
    @Option(help: table.argumentHelp("upsampling")) var upsampling: UNetConfig.Upsampling?
    @Option(help: table.argumentHelp("padding")) var padding: UNetConfig.ConvPadding?
    @Option(help: table.argumentHelp("encoder_weights")) var encoderWeights: String?
    @Flag(help: table.argumentHelp("freeze_encoder")) var freezeEncoder = defaults.freezesEncoder
    @Option(help: table.argumentHelp("classes")) var classes: Int?
    @Option(help: table.argumentHelp("class_names"), transform: CommaSeparated.strings) var classNames: [String]?
    @Option(help: table.argumentHelp("val_names"), transform: CommaSeparated.strings) var valNames: [String] = []
    @Option(help: table.argumentHelp("test_names"), transform: CommaSeparated.strings) var testNames: [String]?
    @Option(
        help:
            "Stop this invocation after N steps with a checkpoint (continue with --resume RUN_DIR), e.g. to fit a job's time limit."
    )
    var stopAfter: Int?
    @Option(help: table.argumentHelp("channels")) var channels: Int?
    @Option(help: table.argumentHelp("mask_kind")) var maskKind = defaults.maskKind
    @Option(help: table.argumentHelp("steps")) var steps: Int?
    @Option(help: table.argumentHelp("epochs")) var epochs: Int?
    @Option(help: table.argumentHelp("batch")) var batch = defaults.batch
    @Option(help: table.argumentHelp("crop")) var crop: Int?
    @Option(help: table.argumentHelp("lr")) var lr = defaults.learningRate
    @Option(help: table.argumentHelp("optimizer")) var optimizer = defaults.optimizer
    @Option(help: table.argumentHelp("weight_decay")) var weightDecay = defaults.weightDecay
    @Option(help: table.argumentHelp("momentum")) var momentum = defaults.momentum
    @Flag(help: table.argumentHelp("nesterov")) var nesterov = defaults.nesterov
    @Option(help: table.argumentHelp("class_weights"), transform: CommaSeparated.numbers) var classWeights: [Double]?
    @Option(help: table.argumentHelp("schedule")) var schedule = defaults.schedule.kind
    @Option(help: table.argumentHelp("warmup")) var warmup = defaults.schedule.warmupSteps
    @Option(help: table.argumentHelp("loss")) var loss = defaults.loss
    @Option(help: table.argumentHelp("label_smoothing")) var labelSmoothing: Double?
    @Flag(help: table.argumentHelp("border_weights")) var borderWeights = defaults.usesBorderWeights
    @Option(help: table.argumentHelp("clip_norm")) var clipNorm: Double?
    @Option(help: table.argumentHelp("val_split")) var valSplit = defaults.validationFraction
    @Option(help: table.argumentHelp("val_every")) var valEvery = defaults.validateEvery
    @Option(help: table.argumentHelp("best_metric")) var bestMetric: ValidationMetric?
    @Option(help: table.argumentHelp("patience")) var patience: Int?
    @Flag(inversion: .prefixedNo, help: table.argumentHelp("flips")) var flips = defaults.flips
    @Flag(help: table.argumentHelp("elastic")) var elastic = defaults.elastic
    @Flag(help: table.argumentHelp("intensity")) var intensity = defaults.usesIntensity
    @Flag(help: "Under an MPI launcher: batch-norm statistics over every rank's samples (SyncBatchNorm).")
    var syncBn = false
    @Flag(inversion: .prefixedNo, help: table.argumentHelp("batch_norm")) var batchNorm = defaults.batchNorm
    @Option(help: table.argumentHelp("seed")) var seed = defaults.seed
    @Option(help: "Run folder.") var out: String?
    @Option(help: "Continue the run in this folder with its saved configuration.") var resume: String?

    @OptionGroup var output: OutputOptions

    /// The configuration the options ask for.
    func config(images: String, masks: String) -> TrainingConfig {
        var c = TrainingConfig(images: images, masks: masks)
        c.task = task; c.freezesEncoder = freezeEncoder; c.labelSmoothing = labelSmoothing
        c.model = model; c.depth = depth; c.width = width; c.classes = classes; c.maskKind = maskKind;
        c.channels = channels
        c.classNames = classNames
        c.validationNames = valNames
        c.testNames = testNames
        c.dropout = dropout; c.upsampling = upsampling; c.padding = padding; c.encoderWeights = encoderWeights
        c.steps = steps; c.epochs = epochs; c.batch = batch; c.crop = crop; c.learningRate = lr
        c.optimizer = optimizer; c.weightDecay = weightDecay; c.momentum = momentum; c.nesterov = nesterov
        c.classWeights = classWeights
        c.schedule = LearningRateSchedule(schedule, warmupSteps: warmup)
        c.loss = loss; c.usesBorderWeights = borderWeights; c.clipNorm = clipNorm;
        c.validationFraction = valSplit; c.validateEvery = valEvery
        c.bestMetric = bestMetric; c.patience = patience; c.seed = seed
        c.flips = flips; c.elastic = elastic; c.usesIntensity = intensity
        c.batchNorm = batchNorm
        return c
    }

    func validate() throws {
        guard resume == nil else { return }
        guard let images, masks != nil || task == .classify, out != nil else {
            throw ValidationError(
                "--images, --masks and --out are required (--images and --out with --task classify; or --resume RUN_DIR)"
            )
        }
        try Self.table.usage { try config(images: images, masks: masks ?? "").validate() }
        if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be at least 1") }
    }

    func run() throws {
        let trainer: TrainRun
        if let resume {
            let dir = URL(fileURLWithPath: resume)
            trainer = TrainRun(config: try TrainRun.savedConfig(in: dir), runDirectory: dir)
        } else {
            guard let images, let out else {
                throw ValidationError("--images and --out are required (or --resume RUN_DIR)")
            }
            let c = config(images: images, masks: masks ?? "")
            let dir = URL(fileURLWithPath: out)
            if FileManager.default.fileExists(atPath: TrainingRunFolder(dir).last.path) {
                throw ValidationError(
                    "\(out) already holds a run; use --resume \(out) to continue it or choose another --out")
            }
            trainer = TrainRun(config: c, runDirectory: dir)
        }
        if let stopAfter {
            guard stopAfter >= 1 else { throw ValidationError("--stop-after must be at least 1") }
            trainer.stopAfterSteps = stopAfter
        }
        // Under an MPI launcher: one rank of a data-parallel job (rank 0 reports; the others are quiet unless
        // debugging). A launched run whose MPI library cannot load stops here, saying so.
        let group = try ProcessGroup.start(environment: ProcessInfo.processInfo.environment)
        let debugging = ["debug", "trace"].contains(output.logLevel)
        trainer.group = group
        trainer.syncBatchNorm = syncBn
        trainer.console = output.console(quiet: output.quiet || (group.rank != 0 && !debugging))
        if group.usesMPI {
            let bound =
                ProcessInfo.processInfo.environment[ProcessGroup.waitVariable].flatMap(Double.init)
                ?? ProcessGroup.defaultWait
            guard bound.isFinite, bound > 0 else {
                throw ValidationError("\(ProcessGroup.waitVariable) must be a positive number of seconds")
            }
            try group.bound(
                waits: bound,
                message: "rank \(group.rank) of \(group.size): the other ranks stopped answering (one died or hangs); "
                    + "ending the job; continue with tessera train --resume \(trainer.runDirectory.path)")
            group.reportTermination(
                "rank \(group.rank) of \(group.size): stopped by the launcher (another rank failed or the job was "
                    + "cancelled); continue with tessera train --resume \(trainer.runDirectory.path)")
        }
        let summary: TrainRun.Summary
        do {
            summary = try trainer.run()
        } catch {
            // A rank that fails leaves the others inside a collective: end the whole job now (MPI_Abort), saying
            // why, rather than wait in MPI_Finalize for ranks that will never get there.
            if group.usesMPI && group.size > 1 {
                output.console.logger.error("rank \(group.rank) of \(group.size): \(error)")
                group.abort(code: 1)
            }
            throw error
        }
        try group.finish()
        guard group.rank == 0 else { return }
        try output.result([
            "steps": summary.steps, "seconds_per_step": summary.trainSecondsPerStep,
            "last": summary.last, "skipped": summary.skipped.count
        ]) {
            print(
                String(format: "trained %d steps, %.3f s per training step", summary.steps, summary.trainSecondsPerStep)
            )
            for (k, v) in summary.last.sorted(by: { $0.key < $1.key }) where !k.contains("_seconds") {
                print(String(format: "  %@ %.4f", k, v))
            }
        }
        if !summary.skipped.isEmpty {
            throw output.fail("\(summary.skipped.count) samples could not be read and were skipped")
        }
    }
}
