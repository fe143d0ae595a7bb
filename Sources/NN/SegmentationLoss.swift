import Foundation
import TesseraEngine

/// Losses for logits [N, C, H, W] against class ids [N, H, W].
public enum SegmentationLoss: String, Codable, Sendable, CaseIterable {
    /// Cross-entropy (class weights and ignore index from the caller).
    case ce
    /// Soft Dice over softmax probabilities.
    case dice
    /// Dice + cross-entropy, equally weighted (nnU-Net's default).
    case diceCE = "dice_ce"
    /// Binary cross-entropy of each class channel (sigmoid) against the one-hot target, as multi-label models use.
    case bce
    /// Focal loss (Lin et al. 2017) with gamma 2: cross-entropy down-weighted by (1 - p_true)^gamma.
    case focal

    /// The loss, averaged over pixels. `pixelWeights` [N, H, W] (e.g. the U-Net paper's border weights) scale
    /// each pixel's cross-entropy, BCE or focal term; Dice takes no pixel weights.
    public func callAsFunction(
        _ logits: Tensor, _ target: Tensor, classWeights: [Float]? = nil,
        pixelWeights: Tensor? = nil
    ) -> Tensor {
        switch self {
        case .ce:
            return SegmentationLoss.crossEntropy(logits, target, classWeights: classWeights, pixelWeights: pixelWeights)
        case .dice: return Functional.diceLoss(logits, target: target)
        case .diceCE:
            return Functional.diceLoss(logits, target: target)
                + SegmentationLoss.crossEntropy(logits, target, classWeights: classWeights, pixelWeights: pixelWeights)
        case .bce: return SegmentationLoss.binaryCrossEntropy(logits, target, pixelWeights: pixelWeights)
        case .focal: return SegmentationLoss.focal(logits, target, gamma: 2, pixelWeights: pixelWeights)
        }
    }

    /// Cross-entropy; with pixel weights, sum of w(x) c(y) (-log p_y(x)) over sum of c(y), where c are the class
    /// weights (1 without): torch's class-weighted mean when every w(x) is 1.
    public static func crossEntropy(
        _ logits: Tensor, _ target: Tensor, classWeights: [Float]? = nil,
        pixelWeights: Tensor? = nil
    ) -> Tensor {
        guard let pixelWeights else {
            return Functional.crossEntropy(logits, target: target, classWeights: classWeights)
        }
        let oneHot = Functional.oneHot(target, classes: logits.shape[1])
        let nll = -(Functional.logSoftmax(logits, axis: 1) * oneHot).sum(axes: [1])
        guard let classWeights else { return (nll * pixelWeights).mean() }
        let cw = Tensor(classWeights, shape: [1, classWeights.count] + Array(repeating: 1, count: logits.rank - 2))
        let perPixel = (oneHot * cw).sum(axes: [1])
        return (nll * pixelWeights * perPixel).sum() / perPixel.sum().item
    }

    /// Mean over classes and pixels of the sigmoid cross-entropy against the one-hot target (times pixel weights).
    public static func binaryCrossEntropy(_ logits: Tensor, _ target: Tensor, pixelWeights: Tensor? = nil) -> Tensor {
        let oneHot = Functional.oneHot(target, classes: logits.shape[1])
        guard let pixelWeights else { return Functional.binaryCrossEntropyWithLogits(logits, target: oneHot) }
        // Stable per element: (1 - t) v + max(-v, 0) + log(1 + exp(-|v|)).
        let perElement = (1 - oneHot) * logits + Functional.relu(-logits) + ((-logits.abs()).exp() + 1).log()
        return (perElement * pixelWeights.unsqueezed(1)).mean()
    }

    /// mean over pixels of -(1 - p_t)^gamma log p_t (times pixel weights).
    public static func focal(_ logits: Tensor, _ target: Tensor, gamma: Float, pixelWeights: Tensor? = nil) -> Tensor {
        let logp = Functional.logSoftmax(logits, axis: 1)
        let logpt = (logp * Functional.oneHot(target, classes: logits.shape[1])).sum(axes: [1])
        let weight = (1 - logpt.exp()).clamped(min: 0).pow(gamma)
        let terms = -(weight * logpt)
        return (pixelWeights.map { terms * $0 } ?? terms).mean()
    }
}
