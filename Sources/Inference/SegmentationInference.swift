import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN
import TesseraObjects

/// Inference on whole images: normalise, run through `TiledInference` (one window or sliding tiles), evaluate.
public enum SegmentationInference {
    /// A sample with its planes normalised by per-channel mean and std.
    public static func normalised(_ sample: AugmentationSample, mean: [Float], std: [Float]) -> AugmentationSample {
        var s = sample
        IntensityNormalization.meanStd(mean: mean, std: std).apply(to: &s)
        return s
    }

    /// Logits [1, classes, H, W] of `model` for the normalised planes of one image, through `inference`
    /// (default: one window over the whole image, mirrored outward to a size the network takes).
    public static func logits(
        _ model: any SegmentationNetwork, _ sample: AugmentationSample,
        inference: TiledInference = TiledInference(tile: .max)
    ) -> Tensor {
        let out = Tensor(zeros: [1, model.classes, sample.height, sample.width], zeroed: false)
        let plane = sample.height * sample.width, p = out.pointer
        inference.run(
            model: model, image: sample.image, width: sample.width, height: sample.height,
            channels: sample.channels
        ) { window, logits in
            let n = window.width * window.height
            for c in 0..<model.classes {
                for y in 0..<window.height {
                    (p + c * plane + (window.y + y) * sample.width + window.x).update(
                        from: logits.baseAddress! + c * n + y * window.width, count: window.width)
                }
            }
        }
        return out
    }

    /// The confusion matrix of `model` over every pair of `dataset`; unreadable pairs are returned, not thrown.
    /// With `instances`, also each pair's object scores (`SegmentationAgreement`: predictions and truth made into
    /// objects, the truth by connected components under the same rules). `attack`, when given, perturbs each
    /// normalised sample first (`FGSM`); a sample it refuses is a failure.
    public static func evaluate(
        _ model: any SegmentationNetwork, on dataset: SegmentationDataset, classes: Int, mean: [Float],
        std: [Float], inference: TiledInference, instances: InstanceSettings? = nil, objectTruth: Bool = false,
        attack: ((AugmentationSample, Int) throws -> AugmentationSample)? = nil
    ) -> (matrix: ConfusionMatrix, failures: [Error], objects: [[String: Double]]) {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        var matrix = ConfusionMatrix(classes: classes)
        var failures: [Error] = []
        var objects: [[String: Double]] = []
        for i in dataset.pairs.indices {
            do {
                let sample = AugmentationSample(try dataset.load(i))
                var input = normalised(sample, mean: mean, std: std)
                if let attack { input = try attack(input, i) }
                let logits = Self.logits(model, input, inference: inference)
                let predicted = logits.argmax(axis: 1).scalars.map { Int($0) }
                if !objectTruth { matrix.add(predictions: predicted, truth: sample.labels.map { Int($0) }) }
                if let instances {
                    objects.append(
                        objectScores(
                            predicted: predicted, logits: logits, truth: sample.labels, objectTruth: objectTruth,
                            width: sample.width, height: sample.height, settings: instances))
                }
            } catch {
                failures.append(error)
            }
        }
        return (matrix, failures, objects)
    }

    /// Object scores of one prediction (class per pixel, logits [1, classes, H, W]) against its truth (class ids,
    /// or object ids with `objectTruth`).
    static func objectScores(
        predicted: [Int], logits: Tensor, truth: [Int32], objectTruth: Bool, width w: Int, height h: Int,
        settings: InstanceSettings
    ) -> [String: Double] {
        let classes = logits.shape[1], n = w * h
        // The probabilities `segment` gives the watershed (`ClassProbabilities`), so both find the same objects.
        let probabilities = ClassProbabilities.labels(
            UnsafeBufferPointer(start: logits.pointer, count: classes * n), classes: classes, pixels: n,
            probability: settings.method.usesProbability
        ).probability
        let probability = { (c: Int) -> [Float] in ClassProbabilities.fractions(probabilities[c]) }
        let found = Instances(
            mask: predicted.map { UInt16(clamping: $0) }, width: w, height: h, settings: settings,
            probability: probability)
        if objectTruth {
            return SegmentationAgreement(
                truth: truth.map { UInt32(clamping: max(0, $0)) }, prediction: found.ids, width: w, height: h
            ).metrics
        }
        return SegmentationAgreement(
            prediction: found.ids, classes: found.objects.map(\.objectClass),
            truthMask: truth.map { UInt16(clamping: max(0, $0)) }, width: w, height: h, settings: settings
        ).metrics
    }

    /// `sample` (normalised) perturbed by `attack` against its own labels, the whole image in one pass (the
    /// gradient needs it); an image the network does not take whole is refused, naming its size.
    public static func attacked(
        _ sample: AugmentationSample, by attack: FGSM, model: any SegmentationNetwork, file: String
    ) throws -> AugmentationSample {
        let w = sample.width, h = sample.height
        guard model.outputSize(forInput: w) == w, model.outputSize(forInput: h) == h else {
            throw FileError(
                file: file,
                reason: "FGSM runs the whole \(w)x\(h) image through the network at once, and this network "
                    + "does not take (or keep) that size; crop the images to a size it takes")
        }
        var out = sample
        out.image =
            attack.perturb(
                Tensor(sample.image, shape: [1, sample.channels, h, w]),
                target: Tensor(sample.labels.map(Float.init), shape: [1, h, w]), model: model
            ).scalars
        return out
    }
}
