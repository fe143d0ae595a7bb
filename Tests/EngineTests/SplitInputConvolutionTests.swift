import Foundation
import TesseraEngine
import XCTest

/// A convolution of a channel concatenation read in place (U-Net's decoder) gives the concatenated convolution's
/// numbers on every route that reads split inputs, and falls back to concatenating where none applies.
final class SplitInputConvolutionTests: XCTestCase {
    func testSplitInputsMatchTheConcatenation() {
        var gen = RandomGenerator(seed: 11)
        for (a, b, m, size, pad) in [(3, 5, 7, 9, 1), (16, 16, 8, 21, 1), (1, 2, 3, 6, 0), (17, 4, 9, 13, 2)] {
            let x = Tensor.randn([2, a, size, size + 3], generator: &gen)
            let y = Tensor.randn([2, b, size, size + 3], generator: &gen)
            let w = Tensor.randn([m, a + b, 3, 3], generator: &gen)
            let ep = ConvEpilogue(
                scale: (0..<m).map { 0.5 + Float($0) * 0.1 }, shift: (0..<m).map { Float($0 % 3) - 1 },
                relu: true)
            for route in [ConvRoute.rowBand, .winograd] {
                // The same route on the concatenation: the same arithmetic.
                let joined = ConvRoute.forcing(route) {
                    withNoGrad {
                        Functional.conv(
                            Tensor.concat([x, y], axis: 1), weight: w, padding: .explicit([pad]), epilogue: ep)
                    }
                }.scalars
                let (split, routes) = ConvRoute.taken {
                    ConvRoute.forcing(route) {
                        withNoGrad {
                            Functional.conv(concatenating: [x, y], weight: w, padding: .explicit([pad]), epilogue: ep)
                        }
                    }
                }
                XCTAssertEqual(routes, [route], "channels \(a)+\(b), pad \(pad)")
                XCTAssertEqual(split.shape, [2, m, size + 2 * pad - 2, size + 3 + 2 * pad - 2])
                for i in joined.indices {
                    XCTAssertEqual(
                        split.scalars[i], joined[i], accuracy: 1e-4 * max(1, abs(joined[i])), "\(route) [\(i)]")
                }
            }
        }
    }

    /// Strided layers have no split route: the concatenation is built and convolved, same numbers.
    func testOtherGeometriesConcatenate() {
        var gen = RandomGenerator(seed: 12)
        let x = Tensor.randn([1, 2, 8, 8], generator: &gen), y = Tensor.randn([1, 3, 8, 8], generator: &gen)
        let w = Tensor.randn([4, 5, 5, 5], generator: &gen)
        let split = withNoGrad { Functional.conv(concatenating: [x, y], weight: w, padding: .same) }
        let joined = withNoGrad { Functional.conv(Tensor.concat([x, y], axis: 1), weight: w, padding: .same) }
        XCTAssertEqual(split.shape, joined.shape)
        for (s, j) in zip(split.scalars, joined.scalars) { XCTAssertEqual(s, j, accuracy: 1e-4 * max(1, abs(j))) }
    }
}
