import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraDistributed
import TesseraInference
import TesseraModels
import TesseraNN
import TesseraTraining

/// `tessera train`: trains a U-Net on image/mask folders into a run folder.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a U-Net on images/ + masks/ folders (paired by file stem).",
        discussion: """
            Writes RUN_DIR/config.json, last.safetensors (weights + optimizer state), best.safetensors, \
            metrics.jsonl and metrics.csv. A 0/255 mask maps 0 -> class 0 and 255 -> class 1. With the same seed, \
            data and TESSERA_THREADS a rerun gives bit-identical weights; --resume RUN_DIR continues a stopped run \
            to the same result.
            """)

    @Option(help: "Folder of images (PNG/JPEG).") var images: String?
    @Option(help: "Folder of masks named like the images.") var masks: String?
    @Option(help: "Architecture: the plain U-Net, or a U-Net on a ResNet encoder (smp's Unet).") var model =
        TrainingConfig.defaults.model
    @Option(help: "U-Net down-sampling steps.") var depth = TrainingConfig.defaults.depth
    @Option(help: "Channels of the first U-Net level.") var width = TrainingConfig.defaults.width
    @Option(help: "U-Net dropout at the end of the contracting path.") var dropout: Double?
    @Option(help: "U-Net up-sampling.") var upsampling: UNetConfig.Upsampling?
    @Option(help: "U-Net convolution padding: valid is the paper's (the output is smaller than the crop).") var padding:
        UNetConfig.ConvPadding?
    @Option(help: "torchvision ResNet weights (safetensors) for a resnetN-unet encoder.") var encoderWeights: String?
    @Option(help: "Number of classes (found from the masks when omitted).") var classes: Int?
    @Option(
        help: "Class names, comma-separated (kept in checkpoints; default class0, class1, ...).",
        transform: CommaSeparated.strings)
    var classNames: [String]?
    @Option(
        help:
            "Stop this invocation after N steps with a checkpoint (continue with --resume RUN_DIR), e.g. to fit a job's time limit."
    )
    var stopAfter: Int?
    @Option(
        help:
            "Input channels of the model (1 gray, 3 RGB): every image is converted to it. Default: the first image's colour channels; a folder mixing layouts is then refused."
    )
    var channels: Int?
    @Option(help: "Mask encoding (auto: 0/255 masks are binary, others label images).") var maskKind = TrainingConfig
        .defaults.maskKind
    @Option(help: "Training steps.") var steps: Int?
    @Option(help: "Epochs (when --steps is not given; default 50).") var epochs: Int?
    @Option(help: "Batch size.") var batch = TrainingConfig.defaults.batch
    @Option(help: "Random crop size.") var crop = TrainingConfig.defaults.crop
    @Option(help: "Learning rate.") var lr = TrainingConfig.defaults.learningRate
    @Option(help: "Optimizer.") var optimizer = TrainingConfig.defaults.optimizer
    @Option(help: "Weight decay.") var weightDecay = TrainingConfig.defaults.weightDecay
    @Option(help: "SGD momentum.") var momentum = TrainingConfig.defaults.momentum
    @Flag(help: "SGD with Nesterov momentum.") var nesterov = TrainingConfig.defaults.nesterov
    @Option(help: "Cross-entropy weight per class, comma-separated (e.g. 3,1).", transform: CommaSeparated.numbers)
    var classWeights: [Double]?
    @Option(help: "Learning-rate schedule.") var schedule = TrainingConfig.defaults.schedule.kind
    @Option(help: "Linear warm-up steps.") var warmup = TrainingConfig.defaults.schedule.warmupSteps
    @Option(help: "Loss.") var loss = TrainingConfig.defaults.loss
    @Flag(help: "Weight the loss with the U-Net paper's border map (w0 = 10, sigma = 5 px).") var borderWeights = false
    @Option(help: "Clip the gradient norm to this value.") var clipNorm: Double?
    @Option(help: "Fraction of pairs held out for validation.") var valSplit = TrainingConfig.defaults
        .validationFraction
    @Option(help: "Validate and checkpoint every N steps (default: every epoch, at least 50 steps apart).")
    var valEvery = TrainingConfig.defaults.validateEvery
    @Option(help: "Validation metric that picks best.safetensors.") var bestMetric = TrainingConfig.defaults.bestMetric
    @Option(help: "Stop after N validations without improvement.") var patience: Int?
    @Flag(inversion: .prefixedNo, help: "Flips and rot90.") var flips = TrainingConfig.defaults.flips
    @Flag(help: "Elastic deformation (U-Net paper).") var elastic = TrainingConfig.defaults.elastic
    @Flag(help: "Under an MPI launcher: batch-norm statistics over every rank's samples (SyncBatchNorm).")
    var syncBn = false
    @Flag(inversion: .prefixedNo, help: "Batch normalisation in the network.")
    var batchNorm = TrainingConfig.defaults.batchNorm
    @Option(help: "Random seed.") var seed = TrainingConfig.defaults.seed
    @Option(help: "Run folder.") var out: String?
    @Option(help: "Continue the run in this folder with its saved configuration.") var resume: String?

    @OptionGroup var output: OutputOptions

    func run() throws {
        let trainer: TrainRun
        if let resume {
            let dir = URL(fileURLWithPath: resume)
            trainer = TrainRun(config: try TrainRun.savedConfig(in: dir), runDirectory: dir)
        } else {
            guard let images, let masks, let out else {
                throw ValidationError("--images, --masks and --out are required (or --resume RUN_DIR)")
            }
            var c = TrainingConfig(images: images, masks: masks)
            c.model = model; c.depth = depth; c.width = width; c.classes = classes; c.maskKind = maskKind;
            c.channels = channels
            c.classNames = classNames
            c.dropout = dropout; c.upsampling = upsampling; c.padding = padding; c.encoderWeights = encoderWeights
            c.steps = steps; c.epochs = epochs; c.batch = batch; c.crop = crop; c.learningRate = lr
            c.optimizer = optimizer; c.weightDecay = weightDecay; c.momentum = momentum; c.nesterov = nesterov
            c.classWeights = classWeights
            c.schedule = LearningRateSchedule(schedule, warmupSteps: warmup)
            c.loss = loss; c.borderWeights = borderWeights ? true : nil; c.clipNorm = clipNorm;
            c.validationFraction = valSplit; c.validateEvery = valEvery
            c.bestMetric = bestMetric; c.patience = patience; c.flips = flips; c.elastic = elastic; c.seed = seed
            c.batchNorm = batchNorm
            do { try c.validate() } catch { throw ValidationError("\(error)") }
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
