/// Guided backpropagation (Springenberg et al. 2015), the gradient pytorch-grad-cam's `GuidedBackpropReLUModel`
/// takes: while on for this thread, every ReLU's backward passes a gradient only where the ReLU's input was
/// positive **and** the gradient arriving is positive (`max(0, g * (x > 0))`). Forward passes are unchanged. Per
/// thread, as `GradMode`, so one explanation's backward never changes another's.
public enum GuidedReLU {
    private static let flag = ThreadFlag()

    /// True inside `withGuidedReLU`.
    public static var isOn: Bool {
        get { flag.isSet }
        set { flag.set(newValue) }
    }
}

/// Runs `body` (a backward pass) with guided ReLU gradients.
public func withGuidedReLU<T>(_ body: () throws -> T) rethrows -> T {
    let previous = GuidedReLU.isOn
    GuidedReLU.isOn = true
    defer { GuidedReLU.isOn = previous }
    return try body()
}
