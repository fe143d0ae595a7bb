import Foundation
import TesseraCheckpoint
import TesseraConsole
import TesseraData
import TesseraDistributed
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN

/// Trains a segmenter or a classifier (its `TrainingTask`) from a `TrainingConfig` into a run folder: `config.json`, `last.safetensors`,
/// `best.safetensors`, `metrics.jsonl`, `metrics.csv`. A run folder with `last.safetensors` resumes where it
/// stopped and ends with the same weights as an uninterrupted run (same seed, data and thread count).
public final class TrainRun {
    public let config: TrainingConfig
    public let runDirectory: URL
    /// Where progress goes (a TTY gets one updating line).
    /// Where messages and progress go.
    public var console = Console() {
        didSet { progress = console.progress() }
    }
    /// Receives the run's messages instead of the console's logger when set.
    public var log: ((String) -> Void)?
    public var progress: ProgressReporter
    /// Stops this invocation after this many steps (the run folder can be resumed), e.g. to time-box a job.
    public var stopAfterSteps: Int?
    /// The processes training together (`mpirun -np N tessera train`): each computes its share of every global
    /// batch and the gradients are averaged; rank 0 alone writes the run folder and reports.
    public var group = ProcessGroup.single
    /// Batch-norm statistics over every rank's share of the batch (SyncBatchNorm); false: each rank's own (DDP's
    /// default).
    public var syncBatchNorm = false

    public init(config: TrainingConfig, runDirectory: URL) {
        self.config = config
        self.runDirectory = runDirectory
        progress = ProgressReporter()
    }

    /// The configuration saved in a run folder.
    public static func savedConfig(in runDirectory: URL) throws -> TrainingConfig {
        let url = TrainingRunFolder(runDirectory).config
        do { return try JSONDecoder().decode(TrainingConfig.self, from: Data(contentsOf: url)) } catch {
            throw FileError(file: url.path, reason: "cannot read the run's configuration: \(error)")
        }
    }

    /// What a finished (or stopped) run reports.
    public struct Summary {
        public let steps: Int
        public let best: [String: Double]
        public let last: [String: Double]
        public let trainSecondsPerStep: Double
        public let skipped: [Error]
    }

    func say(_ message: String) {
        guard group.rank == 0 else { return }
        if let log { log(message) } else { console.logger.info("\(message)") }
    }

    public func run() throws -> Summary {
        try config.validate()
        let parallel = DataParallel(group: group)
        if parallel.isLead {
            try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        }
        let task = try config.makeTask(rank: group.rank, of: group.size)
        if parallel.isParallel {
            guard config.batch % group.size == 0 else {
                throw TrainingError(
                    reason: "the batch (\(config.batch)) must split evenly over the \(group.size) ranks")
            }
            guard task.trainingSamples >= config.batch else {
                throw TrainingError(
                    reason: "\(task.trainingSamples) training samples fill no whole batch of \(config.batch) for "
                        + "\(group.size) ranks: lower --batch")
            }
        }
        var cfg = config
        cfg.validationNames = task.validationNames
        cfg.classes = task.classes
        let folder = TrainingRunFolder(runDirectory)
        let last = folder.last
        let resuming = FileManager.default.fileExists(atPath: last.path)
        if resuming { try TrainRun.checkSameConfiguration(cfg, in: runDirectory) }
        if parallel.isLead { try AtomicFile.write(try JSONEncoder.pretty.encode(cfg), to: folder.config) }
        // The recipe every checkpoint of the run carries (its `training` metadata).
        let recipe = String(decoding: try JSONEncoder().encode(cfg), as: UTF8.self)
        let model = task.model
        let optimizer = try cfg.makeOptimizer(task.trainable)
        let perEpoch = max(1, task.batchesPerEpoch)
        let total = cfg.totalSteps(batchesPerEpoch: perEpoch)
        // Default: every epoch, but no more often than every 50 steps (a 16-image set has 4-step epochs).
        let validateEvery = cfg.validateEvery > 0 ? cfg.validateEvery : perEpoch * ((50 + perEpoch - 1) / perEpoch)
        var info = task.info
        let bestMetric = cfg.scoredBy.rawValue
        let log = MetricsLog(directory: runDirectory)
        var best = -Double.infinity, bestMetrics: [String: Double] = [:], sinceBest = 0
        var step = 0, bestStep = -1
        let bestURL = folder.best
        if resuming {
            let saved = try Checkpoint.read(last)
            do { try model.load(saved.weights) } catch { throw TrainingError(reason: "\(last.path): \(error)") }
            try optimizer.loadState(saved.optimizerState)
            step = saved.info.step
            if parallel.isLead { try log.truncate(after: step) }
            (best, bestMetrics, sinceBest) = log.best(metric: bestMetric)
            // best.safetensors may be newer than last.safetensors (killed between the two writes): its own score
            // stands, so no model worse than it replaces it; its step, recomputed, counts as the improvement it was.
            if let saved = try? SafeTensorsFile(contentsOf: bestURL).metadata["info"],
                let info = try? JSONDecoder().decode(CheckpointInfo.self, from: Data(saved.utf8))
            {
                let score = info.metrics[bestMetric] ?? -(info.metrics["train_loss"] ?? 0)
                if score > best || info.step > step {
                    (best, bestMetrics, bestStep) = (score, info.metrics, info.step)
                }
            }
            self.say("resuming \(runDirectory.path) at step \(step) of \(total)")
        }
        try parallel.broadcast(model.parameters)
        if syncBatchNorm && parallel.isParallel { parallel.synchronizeBatchNorm(in: model) }
        let buckets = parallel.isParallel ? GradientBuckets(task.trainable, group: group) : nil
        var communicationSeconds = 0.0
        if !parallel.isLead {
            var quiet = ConsoleOptions()
            quiet.quiet = true
            progress = ProgressReporter(options: quiet)  // only rank 0 shows progress
        }
        model.train()
        var lossSum = 0.0, lossCount = 0, trainSeconds = 0.0, trainSteps = 0
        var skipped: [Error] = []
        let started = Date()
        let stopAt = stopAfterSteps.map { min(total, step + $0) } ?? total
        var savedStep = step
        progress.start(total: total, at: step)
        epochs: while step < stopAt {
            let epoch = step / perEpoch
            for result in task.batches(epoch: epoch, from: step % perEpoch) {
                let batch: TrainingBatch
                switch result {
                case .success(let b): batch = b
                case .failure(let e): throw e
                }
                skipped += batch.skipped
                for e in batch.skipped { self.say("skipped: \(e)") }
                if !(try parallel.all(task.canTrain(batch))) {
                    // Unreadable samples left one image at a size batch norm cannot train on: reported, not used.
                    skipped.append(
                        TrainingError(reason: "step \(step + 1): one value per channel left after skipped samples"))
                    self.say("skipped step \(step + 1): one image left in the batch, too small for batch norm")
                    continue
                }
                let t0 = DispatchTime.now().uptimeNanoseconds
                optimizer.learningRate = Float(cfg.schedule.rate(step: step, total: total, base: cfg.learningRate))
                optimizer.zeroGrad()
                model.reseedDropout(cfg.seed &+ UInt64(step))
                let loss = task.loss(batch)
                if let buckets {
                    buckets.reset()
                    var failure: Error?
                    loss.backward { leaf in
                        do { try buckets.ready(leaf) } catch { failure = failure ?? error }
                    }
                    if let failure { throw failure }
                    try buckets.finish()
                    communicationSeconds += buckets.communicationSeconds
                } else {
                    loss.backward()
                }
                if let clip = cfg.clipNorm { clipGradientNorm(task.trainable, maxNorm: Float(clip)) }
                optimizer.step()
                let value = try parallel.mean(Double(loss.scalars[0]))
                guard value.isFinite else {
                    throw TrainingError(reason: "loss became \(value) at step \(step + 1); lower the learning rate")
                }
                lossSum += value
                lossCount += 1
                trainSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                trainSteps += 1
                step += 1
                progress.update(step: step, loss: value)
                if step % validateEvery == 0 || step == total {
                    var (metrics, failures) = try task.validate(parallel)
                    skipped += failures
                    metrics["train_loss"] = lossSum / Double(max(1, lossCount))
                    metrics["lr"] = Double(optimizer.learningRate)
                    metrics["step_seconds"] = trainSeconds / Double(max(1, trainSteps))
                    if let buckets {
                        // Time inside MPI per step (rank 0's; the all-reduces overlap the backward pass) and the
                        // gradient bytes each rank contributes per step.
                        metrics["allreduce_seconds"] = communicationSeconds / Double(max(1, trainSteps))
                        metrics["allreduce_bytes"] = Double(buckets.bytes)
                    }
                    metrics["elapsed_seconds"] = Date().timeIntervalSince(started)
                    lossSum = 0
                    lossCount = 0
                    info.step = step
                    info.epoch = (step + perEpoch - 1) / perEpoch
                    info.metrics = metrics
                    let score = metrics[bestMetric] ?? -(metrics["train_loss"] ?? 0)
                    // Order for a kill at any instant: the metrics row first (a resumed run drops rows past
                    // last.safetensors and recomputes them), then best, then last (see the resume above).
                    if parallel.isLead { try log.append(step: step, epoch: info.epoch, metrics: metrics) }
                    if score > best || step == bestStep {
                        best = score
                        bestMetrics = metrics
                        sinceBest = 0
                        if parallel.isLead {
                            try Checkpoint.write(model: model, optimizer: nil, info: info, recipe: recipe, to: bestURL)
                        }
                    } else {
                        sinceBest += 1
                    }
                    if parallel.isLead {
                        try Checkpoint.write(model: model, optimizer: optimizer, info: info, recipe: recipe, to: last)
                    }
                    savedStep = step
                    progress.report(
                        step: step, metrics: metrics, keys: task.progressKeys + [bestMetric])
                    if let patience = cfg.patience, sinceBest >= patience {
                        self.say(
                            "early stop at step \(step): \(bestMetric) did not improve for \(patience) validations"
                        )
                        break epochs
                    }
                }
                if step >= stopAt { break epochs }
            }
        }
        if step > savedStep && step < total {
            // Stopped between validations (`--stop-after`): keep the work done, so a resumed run starts here.
            info.step = step
            info.epoch = (step + perEpoch - 1) / perEpoch
            if parallel.isLead {
                try Checkpoint.write(model: model, optimizer: optimizer, info: info, recipe: recipe, to: last)
            }
        }
        progress.finish()
        return Summary(
            steps: step, best: bestMetrics, last: info.metrics,
            trainSecondsPerStep: trainSeconds / Double(max(1, trainSteps)), skipped: skipped)
    }
}

extension TrainRun {
    /// Keys a resumed run may change: how long it trains and when it stops early.
    static let resumableChanges: Set<String> = ["steps", "epochs", "patience"]

    /// Throws, naming the changed keys, unless `config` equals the configuration the run in `runDirectory` was
    /// started with (apart from `resumableChanges`): resuming under other settings would silently mix two runs.
    static func checkSameConfiguration(_ config: TrainingConfig, in runDirectory: URL) throws {
        let saved = try savedConfig(in: runDirectory)
        func fields(_ c: TrainingConfig) throws -> [String: String] {
            let object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(c)) as? [String: Any] ?? [:]
            return object.mapValues { v in
                (try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? "\(v)"
            }
        }
        let old = try fields(saved), new = try fields(config)
        let changed = Set(old.keys).union(new.keys).subtracting(resumableChanges).sorted().filter { old[$0] != new[$0] }
        guard changed.isEmpty else {
            let list = changed.map { "\($0) (was \(old[$0] ?? "unset"), now \(new[$0] ?? "unset"))" }.joined(
                separator: ", ")
            throw TrainingError(
                reason: "\(runDirectory.path) holds a run trained with other settings: \(list); resume it "
                    + "with its own settings or train into a new folder")
        }
    }

    /// The U-Net paper's weight map of each label map in [N, H, W], computed in parallel.
    static func borderWeights(_ labels: Tensor) -> Tensor {
        let n = labels.shape[0], h = labels.shape[1], w = labels.shape[2]
        let ids = labels.contiguous().scalars.map { Int32($0) }
        let out = Tensor(zeros: [n, h, w], zeroed: false)
        let map = BorderWeightMap(), base = out.pointer
        // Each image writes its own plane.
        Parallel.forEach(n) { i in
            let weights = map.weights(labels: Array(ids[(i * h * w)..<((i + 1) * h * w)]), width: w, height: h)
            weights.withUnsafeBufferPointer { (base + i * h * w).update(from: $0.baseAddress!, count: h * w) }
        }
        return out
    }

}
