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

    /// Logits [N, classes, H, W] of `model` (evaluation mode, no history) for `x` of any height and width: the
    /// image is mirrored outward to the nearest size the network takes (and, for valid convolutions, by the
    /// border the network consumes: the U-Net paper's overlap-tile input), and the output cropped back.
    public static func logits(_ model: any SegmentationNetwork, _ x: Tensor) -> Tensor {
        let h = x.shape[2], w = x.shape[3]
        let sh = model.inputSize(covering: h), sw = model.inputSize(covering: w)
        let oh = model.outputSize(forInput: sh)!, ow = model.outputSize(forInput: sw)!
        // Image placement inside the padded input so that the output (centred in the input) covers it.
        let top = (sh - oh) / 2 + (oh - h) / 2, left = (sw - ow) / 2 + (ow - w) / 2
        return withNoGrad {
            var input = x
            if sh != h || sw != w {
                input = mirrorPadded(x, [(top, sh - h - top), (left, sw - w - left)])
            }
            let y = model(input)
            guard oh != h || ow != w else { return y }
            let y0 = top - (sh - oh) / 2, x0 = left - (sw - ow) / 2
            return y.sliced(axis: 2, y0..<(y0 + h)).sliced(axis: 3, x0..<(x0 + w)).contiguous()
        }
    }

    /// Mirror padding of [N, C, H, W] by any amounts: reflection repeated (as a tiled mirror image) when a pad is
    /// wider than the image.
    static func mirrorPadded(_ x: Tensor, _ pads: [(Int, Int)]) -> Tensor {
        var y = x
        for axis in 0..<2 {
            var (before, after) = pads[axis]
            while before > 0 || after > 0 {
                let size = y.shape[2 + axis]
                let mode: PaddingMode = size > 1 ? .reflect : .replicate
                let b = min(before, max(size - 1, 1)), a = min(after, max(size - 1, 1))
                var spec = [(0, 0), (0, 0)]
                spec[axis] = (b, a)
                y = y.padded(spatial: spec, mode: mode)
                before -= b
                after -= a
            }
        }
        return y
    }

    /// The confusion matrix of `model` over every pair of `dataset`; unreadable pairs are returned, not thrown.
    public static func evaluate(_ model: any SegmentationNetwork, on dataset: SegmentationDataset, classes: Int, mean: [Float],
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
