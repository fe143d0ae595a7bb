import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN

/// Whole-image inference: normalise, pad to the network's multiple by mirroring, run, crop back.
public enum SegmentationInference {
    /// A sample's planes as [1, C, H, W], normalised with per-channel mean and std.
    public static func input(_ sample: AugmentationSample, mean: [Float], std: [Float]) -> Tensor {
        var s = sample
        IntensityNormalization.meanStd(mean: mean, std: std).apply(to: &s)
        return Tensor(s.image, shape: [1, s.channels, s.height, s.width])
    }

    /// Logits [N, classes, H, W] of `model` (evaluation mode, no history) for `x` of any height and width.
    public static func logits(_ model: UNet, _ x: Tensor) -> Tensor {
        let multiple = 1 << model.config.depth
        let h = x.shape[2], w = x.shape[3]
        let ph = (multiple - h % multiple) % multiple, pw = (multiple - w % multiple) % multiple
        return withNoGrad {
            var input = x
            if ph > 0 || pw > 0 {
                let mode: PaddingMode = ph < h && pw < w ? .reflect : .replicate
                input = x.padded(spatial: [(ph / 2, ph - ph / 2), (pw / 2, pw - pw / 2)], mode: mode)
            }
            let y = model(input)
            guard ph > 0 || pw > 0 else { return y }
            return y.sliced(axis: 2, (ph / 2)..<(ph / 2 + h)).sliced(axis: 3, (pw / 2)..<(pw / 2 + w)).contiguous()
        }
    }

    /// The confusion matrix of `model` over every pair of `dataset`; unreadable pairs are returned, not thrown.
    public static func evaluate(_ model: UNet, on dataset: SegmentationDataset, classes: Int, mean: [Float],
                                std: [Float]) -> (matrix: ConfusionMatrix, failures: [Error]) {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        var matrix = ConfusionMatrix(classes: classes)
        var failures: [Error] = []
        for i in dataset.pairs.indices {
            do {
                let sample = AugmentationSample(try dataset.load(i))
                let logits = Self.logits(model, input(sample, mean: mean, std: std))
                matrix.add(predictions: logits.argmax(axis: 1).scalars.map { Int($0) }, truth: sample.labels.map { Int($0) })
            } catch {
                failures.append(error)
            }
        }
        return (matrix, failures)
    }
}
