import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Guided backpropagation (Springenberg et al. 2015), the gradient pytorch-grad-cam's `GuidedBackpropReLUModel`
/// takes: while on for this thread, every ReLU's backward passes a gradient only where the ReLU's input was
/// positive **and** the gradient arriving is positive (`max(0, g * (x > 0))`). Forward passes are unchanged. Per
/// thread, as `GradMode`, so one explanation's backward never changes another's.
public enum GuidedReLU {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// True inside `withGuidedReLU`.
    public static var isOn: Bool {
        get { pthread_getspecific(key) != nil }
        set { pthread_setspecific(key, newValue ? UnsafeRawPointer(bitPattern: 1) : nil) }
    }
}

/// Runs `body` (a backward pass) with guided ReLU gradients.
public func withGuidedReLU<T>(_ body: () throws -> T) rethrows -> T {
    let previous = GuidedReLU.isOn
    GuidedReLU.isOn = true
    defer { GuidedReLU.isOn = previous }
    return try body()
}
