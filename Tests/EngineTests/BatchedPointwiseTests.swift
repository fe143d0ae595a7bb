import Foundation
import TesseraEngine
import XCTest

/// 1x1 layers of a batch as one GEMM over every image's pixels give the per-image routes' numbers: forward with an
/// epilogue, input gradient (the swapped weights), at pixel counts around the kernels' panels.
final class BatchedPointwiseTests: XCTestCase {
    func testBatchedGEMMMatchesIm2col() {
        var gen = RandomGenerator(seed: 13)
        for (n, c, m, size) in [(3, 5, 7, 7), (2, 64, 9, 14), (8, 3, 50, 1), (2, 1, 1, 5)] {
            let x = Tensor.randn([n, c, size, size], generator: &gen), w = Tensor.randn([m, c, 1, 1], generator: &gen)
            let g = Tensor.randn([n, m, size, size], generator: &gen)
            let ep = ConvEpilogue(
                scale: (0..<m).map { 1 + Float($0) * 0.1 }, shift: (0..<m).map { Float($0 % 2) }, relu: true)
            func passes(_ route: ConvRoute) -> (Set<ConvRoute>, [[Float]]) {
                let (result, routes) = ConvRoute.taken { () -> [[Float]] in
                    ConvRoute.forcing(route) {
                        let fused = withNoGrad { Functional.conv(x, weight: w, epilogue: ep) }
                        x.grad = nil
                        x.requiresGrad = true
                        Functional.conv(x, weight: w).backward(g)
                        x.requiresGrad = false
                        return [fused.scalars, x.grad!.scalars]
                    }
                }
                return (routes, result)
            }
            let (batchedRoutes, batched) = passes(.batchedGEMM), (_, reference) = passes(.im2col)
            XCTAssertEqual(batchedRoutes, [.batchedGEMM], "n \(n) c \(c) m \(m)")
            for (a, b) in zip(batched, reference) {
                for i in a.indices {
                    XCTAssertEqual(a[i], b[i], accuracy: 1e-4 * max(1, abs(b[i])), "n \(n) c \(c) m \(m) [\(i)]")
                }
            }
        }
    }

    /// The weight gradient of 1x1 layers, whose im2col route reads the source planes in place, against a float64
    /// sum: batch > 1, two groups, pixel counts across the depth blocks (529 > GEMM.kc).
    func testPointwiseWeightGradientReadsTheSourceInPlace() {
        var gen = RandomGenerator(seed: 17)
        for (n, c, m, size, groups) in [(3, 5, 7, 7, 1), (2, 6, 4, 23, 2), (1, 70, 3, 2, 1)] {
            let x = Tensor.randn([n, c, size, size], generator: &gen)
            let w = Tensor.randn([m, c / groups, 1, 1], generator: &gen)
            let g = Tensor.randn([n, m, size, size], generator: &gen)
            w.requiresGrad = true
            ConvRoute.forcing(.im2col) { Functional.conv(x, weight: w, groups: groups).backward(g) }
            let got = w.grad!.scalars, xs = x.scalars, gs = g.scalars
            let (cg, mg, pixels) = (c / groups, m / groups, size * size)
            for o in 0..<m {
                for ci in 0..<cg {
                    var s = 0.0
                    for b in 0..<n {
                        for p in 0..<pixels {
                            s +=
                                Double(gs[(b * m + o) * pixels + p])
                                * Double(xs[(b * c + (o / mg) * cg + ci) * pixels + p])
                        }
                    }
                    XCTAssertEqual(
                        Double(got[o * cg + ci]), s, accuracy: 1e-4 * max(1, abs(s)), "n \(n) c \(c) [\(o), \(ci)]")
                }
            }
        }
    }
}
