import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN

/// A classifier's scores on a labelled data set, as validation during training and `tessera eval --task classify`
/// compute them: each image resized (shorter side) to the network's input and centre-cropped, normalised as in
/// training, in batches; unreadable images are reported and left out.
public enum ClassificationInference {
    /// The scores of `model` on `dataset` at `size` x `size` inputs; `attack`, when given, perturbs each batch
    /// first (FGSM) and may keep the perturbed images.
    public static func evaluate(
        _ model: any ClassificationNetwork, on dataset: ClassificationDataset, size: Int, mean: [Float],
        std: [Float], batch: Int = 32, attack: ((ClassificationBatch) -> Tensor)? = nil
    ) -> (scores: ClassificationScores, failures: [Error]) {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        var scores = ClassificationScores(classes: model.classes)
        var failures: [Error] = []
        guard !dataset.samples.isEmpty else { return (scores, failures) }
        let loader = ClassificationLoader(
            dataset: dataset, batchSize: batch, size: size, view: .centre,
            normalization: .meanStd(mean: mean, std: std), shuffle: false)
        for result in loader.batches(epoch: 0) {
            switch result {
            case .failure(let error): failures.append(error)
            case .success(let b):
                failures += b.skipped
                let images = attack?(b) ?? b.images
                let logits = withNoGrad { model(images) }
                scores.add(logits: logits, labels: b.labels.scalars.map { Int($0) })
            }
        }
        return (scores, failures)
    }
}
