import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN

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
    public static func evaluate(
        _ model: any SegmentationNetwork, on dataset: SegmentationDataset, classes: Int, mean: [Float],
        std: [Float], inference: TiledInference
    ) -> (matrix: ConfusionMatrix, failures: [Error]) {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        var matrix = ConfusionMatrix(classes: classes)
        var failures: [Error] = []
        for i in dataset.pairs.indices {
            do {
                let sample = AugmentationSample(try dataset.load(i))
                let logits = Self.logits(model, normalised(sample, mean: mean, std: std), inference: inference)
                matrix.add(
                    predictions: logits.argmax(axis: 1).scalars.map { Int($0) }, truth: sample.labels.map { Int($0) })
            } catch {
                failures.append(error)
            }
        }
        return (matrix, failures)
    }
}
