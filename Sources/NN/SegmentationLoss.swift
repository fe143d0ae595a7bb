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
    /// Focal loss (Lin et al. 2017) with gamma 2: cross-entropy down-weighted by (1 - p_true)^gamma.
    case focal

    /// The loss, averaged over pixels.
    public func callAsFunction(_ logits: Tensor, _ target: Tensor, classWeights: [Float]? = nil) -> Tensor {
        switch self {
        case .ce: return Functional.crossEntropy(logits, target: target, classWeights: classWeights)
        case .dice: return Functional.diceLoss(logits, target: target)
        case .diceCE:
            return Functional.diceLoss(logits, target: target)
                + Functional.crossEntropy(logits, target: target, classWeights: classWeights)
        case .focal: return SegmentationLoss.focal(logits, target, gamma: 2)
        }
    }

    /// mean over pixels of -(1 - p_t)^gamma log p_t.
    public static func focal(_ logits: Tensor, _ target: Tensor, gamma: Float) -> Tensor {
        let logp = Functional.logSoftmax(logits, axis: 1)
        let logpt = (logp * Functional.oneHot(target, classes: logits.shape[1])).sum(axes: [1])
        let weight = (1 - logpt.exp()).clamped(min: 0).pow(gamma)
        return -(weight * logpt).mean()
    }
}
