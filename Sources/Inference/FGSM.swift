import Foundation
import TesseraEngine
import TesseraNN

/// The fast gradient sign method (Goodfellow et al. 2015) in pixel units, as a PyTorch user writes it on images
/// in [0, 1] before the normalisation: x' = clamp(x + eps * sign(grad_x loss), 0, 1), the loss the cross-entropy
/// of the model's logits against the true classes (per image or per pixel). The model sees normalised inputs
/// (x - mean) / std; the gradient through that keeps its sign (std > 0), so the step is eps / std_c in normalised
/// units and the clamp is at the normalised images of 0 and 1. The gradient with respect to the input comes from
/// the engine's autodiff, in evaluation mode (batch norm on its running statistics).
public struct FGSM: Sendable {
    public let epsilon: Double
    public let mean: [Float], std: [Float]

    public init(epsilon: Double, mean: [Float], std: [Float]) {
        self.epsilon = epsilon
        self.mean = mean
        self.std = std
    }

    /// The perturbed copy of normalised `images` [N, C, ...] for targets `target` (class ids [N] or per-pixel
    /// ids [N, ...] as the logits' shape without C; ids outside the classes add nothing).
    public func perturb(_ images: Tensor, target: Tensor, model: Module) -> Tensor {
        let x = Tensor(images.contiguous().scalars, shape: images.shape)
        guard epsilon > 0 else { return x }
        x.requiresGrad = true
        let logits = model(x)
        let classes = logits.shape[1]
        let ids = Tensor(
            target.contiguous().scalars.map { $0 >= 0 && Int($0) < classes ? $0 : -100 }, shape: target.shape)
        Functional.crossEntropy(logits, target: ids).backward()
        for p in model.parameters { p.grad = nil }
        let gradient = x.grad?.contiguous().scalars ?? []
        var out = x.scalars
        let channels = images.shape[1], plane = images.count / max(1, images.shape[0] * channels)
        for i in out.indices where i < gradient.count {
            let c = (i / plane) % channels
            let step = Float(epsilon) / std[c]
            let low = (0 - mean[c]) / std[c], high = (1 - mean[c]) / std[c]
            let sign: Float = gradient[i] > 0 ? 1 : (gradient[i] < 0 ? -1 : 0)
            out[i] = min(max(out[i] + step * sign, low), high)
        }
        return Tensor(out, shape: images.shape)
    }

    /// The perturbed images back in pixel units [0, 1] (to write them).
    public func pixels(_ normalised: Tensor) -> [Float] {
        let channels = normalised.shape[1], plane = normalised.count / max(1, normalised.shape[0] * channels)
        return normalised.contiguous().scalars.enumerated().map { i, v in
            let c = (i / plane) % channels
            return min(max(v * std[c] + mean[c], 0), 1)
        }
    }
}
