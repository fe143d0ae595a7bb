import Foundation

/// Learning rate as a function of the step, with an optional linear warm-up (as torch.optim.lr_scheduler).
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    /// The decay after warm-up.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The base rate throughout.
        case constant
        /// Multiplied by `gamma` every `stepSize` steps (StepLR).
        case step
        /// Half a cosine from the base rate down to `minimum` at the last step (CosineAnnealingLR).
        case cosine
        /// base * (1 - step / total)^power, nnU-Net's default with power 0.9 (PolynomialLR).
        case poly
    }

    public var kind: Kind
    public var warmupSteps: Int
    public var stepSize: Int
    public var gamma: Double
    public var minimum: Double
    public var power: Double

    public init(
        _ kind: Kind = .constant, warmupSteps: Int = 0, stepSize: Int = 100, gamma: Double = 0.1,
        minimum: Double = 0, power: Double = 0.9
    ) {
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.stepSize = stepSize
        self.gamma = gamma
        self.minimum = minimum
        self.power = power
    }

    /// The rate for 0-based `step` of `total` steps, starting from `base`.
    public func rate(step: Int, total: Int, base: Double) -> Double {
        if step < warmupSteps { return base * Double(step + 1) / Double(warmupSteps) }
        let t = Double(step - warmupSteps), span = Double(max(1, total - warmupSteps))
        switch kind {
        case .constant: return base
        case .step: return base * Foundation.pow(gamma, Double(Int(t) / max(1, stepSize)))
        case .cosine: return minimum + (base - minimum) * (1 + Foundation.cos(Double.pi * min(t, span) / span)) / 2
        case .poly: return base * Foundation.pow(max(0, 1 - t / span), power)
        }
    }
}
