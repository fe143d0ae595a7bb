import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraNN

/// A classifier checkpoint's scores on a labelled folder (ImageFolder or `path,label` CSV, read with the
/// checkpoint's classes): top-1/top-5 accuracy, per-class precision/recall/F1, the confusion matrix, the expected
/// calibration error, and the same under FGSM attacks.
public enum ClassificationEvaluation {
    public struct Report {
        public let images: Int
        public let classNames: [String]
        public let scores: ClassificationScores
        /// Per epsilon, the scores of the perturbed images.
        public let attacked: [(epsilon: Double, scores: ClassificationScores)]
        public let failures: [Error]

        /// Every score by name (`ClassificationScores.summary`, with `top1_accuracy` for `accuracy`).
        public var metrics: [String: Double] {
            var m = scores.summary
            m["top1_accuracy"] = scores.accuracy
            return m
        }

        /// The confusion matrix as CSV: a row per true class, a column per predicted class (image counts).
        public var confusionCSV: String {
            let n = classNames.count, counts = scores.matrix.counts
            var lines = [
                "truth \\ predicted," + classNames.map(BatchReport<ClassifyRecord>.csvField).joined(separator: ",")
            ]
            for t in 0..<n {
                lines.append(
                    ([BatchReport<ClassifyRecord>.csvField(classNames[t])] + (0..<n).map { "\(counts[t * n + $0])" })
                        .joined(separator: ","))
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    /// Scores `checkpoint` on `images`; with `options.fgsm`, also under each attack (perturbed images written
    /// under `options.out/fgsm-<eps>/` with `writePerturbed`, as 8-bit PNGs at the network's input size).
    public static func run(checkpoint: URL, images: URL, options: EvalOptions, batch: Int = 32) throws -> Report {
        try options.validate()
        let loaded = try Checkpoint.loadClassifier(checkpoint)
        let info = loaded.info, model = loaded.model
        var dataset = try ClassificationDataset(images, classNames: info.classNames)
        dataset.channels = model.inChannels
        let mean = info.normalizationMean, std = info.normalizationStd
        let (scores, failures) = ClassificationInference.evaluate(
            model, on: dataset, size: info.crop, mean: mean, std: std, batch: batch)
        var names: [String: String] = [:]
        for s in dataset.samples { names[s.image.path] = s.name }
        var attacked: [(Double, ClassificationScores)] = []
        for epsilon in options.fgsm ?? [] {
            let attack = FGSM(epsilon: epsilon, mean: mean, std: std)
            let folder = options.writePerturbed ? options.out?.appendingPathComponent("fgsm-\(epsilon)") : nil
            var writeFailure: Error?
            let (under, _) = ClassificationInference.evaluate(
                model, on: dataset, size: info.crop, mean: mean, std: std, batch: batch
            ) { b in
                let perturbed = attack.perturb(b.images, target: b.labels, model: model)
                if let folder {
                    do { try write(attack.pixels(perturbed), like: b, names: names, to: folder) } catch {
                        writeFailure = writeFailure ?? error
                    }
                }
                return perturbed
            }
            if let writeFailure { throw writeFailure }
            attacked.append((epsilon, under))
        }
        return Report(
            images: scores.images, classNames: info.classNames, scores: scores, attacked: attacked, failures: failures)
    }

    /// Writes pixel planes [N, C, S, S] in [0, 1] as PNGs named like the batch's samples.
    static func write(_ pixels: [Float], like batch: ClassificationBatch, names: [String: String], to folder: URL)
        throws
    {
        let n = batch.images.shape[0], c = batch.images.shape[1], s = batch.images.shape[2], plane = s * s
        for i in 0..<n {
            var samples = [UInt8](repeating: 0, count: plane * c)
            for ch in 0..<c {
                for p in 0..<plane {
                    samples[p * c + ch] = UInt8((pixels[(i * c + ch) * plane + p] * 255).rounded())
                }
            }
            let name = names[batch.names[i]] ?? (batch.names[i] as NSString).lastPathComponent
            let url = folder.appendingPathComponent(name + ".png")
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try ImageCodec.write(Image(width: s, height: s, channels: c, samples: .uint8(samples)), to: url)
        }
    }
}
