import CKernels
import Foundation

/// The arithmetic ceiling of this machine for one instruction set: a register-only FMA loop, no memory traffic.
///
/// Every kernel's GFLOP/s is stated as a fraction of this (`tessera bench --peak`, `--conv`). Measured on an AMD
/// EPYC KVM guest (2026-12-05, a slow phase of the host): AVX2 38-40 GFLOP/s on one core, 70-77 on two; the
/// same machine kind has shown 94 per core.
public struct FMAPeak: Sendable {
    /// Variant measured (scalar | avx2 | avx512).
    public let isa: String
    /// GFLOP/s of one thread alone.
    public let perCore: Double
    /// GFLOP/s of `threads` threads running at once.
    public let allCores: Double
    public let threads: Int

    /// The best of `rounds` measurements: a shared host's slow phases only ever lower a peak (one 0.2 s
    /// measurement on a noisy KVM guest once read 25% low, and layers then showed 125% of "peak").
    public static func best(isa: String = GEMM.kernelName, rounds: Int = 3) -> FMAPeak? {
        (0..<max(1, rounds)).compactMap { _ in measure(isa: isa) }.max { $0.allCores < $1.allCores }
    }

    /// Measures the named variant (the active one by default); nil if this CPU does not support it.
    public static func measure(isa: String = GEMM.kernelName, seconds: Double = 0.2) -> FMAPeak? {
        guard tk_kernel_named(isa) != nil else { return nil }
        // Calibrate the loop count to about `seconds` on one thread.
        var iterations = 1 << 16
        var single = 0.0
        while true {
            let (flops, elapsed) = timed { tk_fma_peak_loop(isa, iterations) }
            single = flops / elapsed / 1e9
            if elapsed >= seconds / 4 { break }
            iterations *= 4
        }
        let perCore = max(single, rate(isa: isa, iterations: iterations, threads: 1))
        let threads = Parallel.threadCount
        let all = rate(isa: isa, iterations: iterations, threads: threads)
        return FMAPeak(isa: isa, perCore: perCore, allCores: all, threads: threads)
    }

    private static func rate(isa: String, iterations: Int, threads: Int) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        let flops = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
        defer { flops.deallocate() }
        // Each thread writes its own slot.
        let slots = UncheckedSendable(flops)
        DispatchQueue.concurrentPerform(iterations: threads) { t in slots.value[t] = tk_fma_peak_loop(isa, iterations) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return flops.reduce(0, +) / elapsed / 1e9
    }

    private static func timed(_ body: () -> Double) -> (Double, Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let flops = body()
        return (flops, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
