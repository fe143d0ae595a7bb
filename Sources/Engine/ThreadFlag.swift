import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A per-thread boolean, off on every thread until set there: the engine's modes (`GradMode`, `GuidedReLU`) are
/// per thread so that one caller's setting never changes another's computation (no process-wide mutable state).
struct ThreadFlag: Sendable {
    private let key: pthread_key_t

    init() {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        key = k
    }

    var isSet: Bool { pthread_getspecific(key) != nil }

    func set(_ on: Bool) { pthread_setspecific(key, on ? UnsafeRawPointer(bitPattern: 1) : nil) }
}
