import Foundation
import TesseraEngine
import XCTest

/// The convolution core picks different kernels by shape (row-band reduction kernel, row-band packed product,
/// im2col tiles); fixtures are small, so each route is checked here against a direct sum.
final class ConvolutionPathTests: XCTestCase {
    /// Direct 2-d same-padded stride-1 convolution gradients for the weight and the input.
    func naiveGradients(x: Tensor, w: Tensor, g: Tensor) -> (dw: [Float], dx: [Float]) {
        let (ci, h, wd) = (x.shape[1], x.shape[2], x.shape[3])
        let (co, k) = (w.shape[0], w.shape[2])
        let p = k / 2
        let xs = x.scalars, ws = w.scalars, gs = g.scalars
        var dw = [Float](repeating: 0, count: w.count), dx = [Float](repeating: 0, count: x.count)
        for o in 0..<co {
            for c in 0..<ci {
                for ky in 0..<k {
                    for kx in 0..<k {
                        var s: Double = 0
                        for y in 0..<h {
                            for xx in 0..<wd {
                                let iy = y + ky - p, ix = xx + kx - p
                                guard iy >= 0 && iy < h && ix >= 0 && ix < wd else { continue }
                                let gv = gs[(o * h + y) * wd + xx]
                                s += Double(gv * xs[(c * h + iy) * wd + ix])
                                dx[(c * h + iy) * wd + ix] += gv * ws[((o * ci + c) * k + ky) * k + kx]
                            }
                        }
                        dw[((o * ci + c) * k + ky) * k + kx] = Float(s)
                    }
                }
            }
        }
        return (dw, dx)
    }

    func check(
        inChannels: Int, outChannels: Int, height: Int, width: Int, file: StaticString = #filePath, line: UInt = #line
    ) {
        var gen = RandomGenerator(seed: UInt64(inChannels * 1000 + outChannels))
        let x = Tensor.randn([1, inChannels, height, width], generator: &gen)
        let w = Tensor.randn([outChannels, inChannels, 3, 3], generator: &gen)
        let g = Tensor.randn([1, outChannels, height, width], generator: &gen)
        // Forward against a direct sum, with a fused bias + ReLU epilogue.
        let bias = (0..<outChannels).map { Float($0 % 5) * 0.1 - 0.2 }
        let y = withNoGrad {
            Functional.conv(x, weight: w, padding: .same, epilogue: ConvEpilogue(shift: bias, relu: true))
        }.scalars
        let xs = x.scalars, ws = w.scalars
        for o in stride(from: 0, to: outChannels, by: 7) {
            for py in 0..<height {
                for px in stride(from: 0, to: width, by: 3) {
                    var s = Double(bias[o])
                    for c in 0..<inChannels {
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = py + ky - 1, ix = px + kx - 1
                                guard iy >= 0 && iy < height && ix >= 0 && ix < width else { continue }
                                s += Double(
                                    xs[(c * height + iy) * width + ix] * ws[((o * inChannels + c) * 3 + ky) * 3 + kx])
                            }
                        }
                    }
                    let expected = Float(max(s, 0))
                    let got = y[(o * height + py) * width + px]
                    if Swift.abs(got - expected) > 1e-3 + 1e-3 * Swift.abs(expected) {
                        XCTFail("forward [\(o), \(py), \(px)]: \(got) vs \(expected)", file: file, line: line)
                        return
                    }
                }
            }
        }
        x.requiresGrad = true
        w.requiresGrad = true
        Functional.conv(x, weight: w, padding: .same).backward(g)
        let (dw, dx) = naiveGradients(x: x.detached(), w: w.detached(), g: g)
        let gw = w.grad!.scalars, gx = x.grad!.scalars
        for i in 0..<dw.count {
            XCTAssertEqual(gw[i], dw[i], accuracy: 1e-3 + 1e-3 * Swift.abs(dw[i]), "dW[\(i)]", file: file, line: line)
            if Swift.abs(gw[i] - dw[i]) > 1e-3 + 1e-3 * Swift.abs(dw[i]) { return }
        }
        for i in 0..<dx.count {
            XCTAssertEqual(gx[i], dx[i], accuracy: 1e-3 + 1e-3 * Swift.abs(dx[i]), "dX[\(i)]", file: file, line: line)
            if Swift.abs(gx[i] - dx[i]) > 1e-3 + 1e-3 * Swift.abs(dx[i]) { return }
        }
    }

    /// `check` with `route` forced, failing unless a pass of the layer took it (the plan cache measures and
    /// chooses otherwise, so a test named for a route would not know which one it checked).
    func check(
        _ route: ConvRoute, inChannels: Int, outChannels: Int, height: Int, width: Int,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let (_, routes) = ConvRoute.taken {
            ConvRoute.forcing(route) {
                check(
                    inChannels: inChannels, outChannels: outChannels, height: height, width: width, file: file,
                    line: line)
            }
        }
        XCTAssertTrue(routes.contains(route), "\(route) did not run: \(routes)", file: file, line: line)
    }

    /// Many output channels, narrow image: row-band packed product with transposed packing.
    func testPackedWeightGradientNarrow() {
        check(.rowBandPacked, inChannels: 3, outChannels: 72, height: 10, width: 13)
    }

    /// Many output channels, wide image: row-band packed product over several bands and column chunks.
    func testPackedWeightGradientWide() {
        check(.rowBandPacked, inChannels: 50, outChannels: 64, height: 5, width: 130)
    }

    /// Few output channels, wide image: the row-reduction (dot) kernel; forward through the padded-row buffer.
    func testReductionKernelWeightGradient() {
        check(.rowBandDot, inChannels: 2, outChannels: 8, height: 4, width: 100)
    }

    /// Wide image with a partial last panel per row: forward and input gradient write the output directly.
    func testDirectWriteRows() { check(.rowBand, inChannels: 5, outChannels: 11, height: 6, width: 150) }

    /// Narrow image, large per-worker partial: the im2col tile path.
    func testIm2colWeightGradient() { check(.im2col, inChannels: 920, outChannels: 64, height: 3, width: 5) }

    /// Every route the plan cache can choose gives the direct sum's result on every shape it applies to (where a
    /// forced route does not apply, the pass takes the measured one): stride-1 bands, wide rows, narrow images,
    /// few and many channels, grouped.
    func testEveryRouteAgreesWithTheDirectSum() {
        for route in ConvRoute.allCases {
            ConvRoute.forcing(route) {
                check(inChannels: 3, outChannels: 72, height: 10, width: 13)
                check(inChannels: 2, outChannels: 8, height: 4, width: 100)
                check(inChannels: 5, outChannels: 11, height: 6, width: 150)
                check(inChannels: 17, outChannels: 1, height: 7, width: 9)
            }
        }
    }

    /// A strided and a transposed convolution take the same result through every route that applies to them.
    func testStridedAndTransposedRoutesAgree() {
        var gen = RandomGenerator(seed: 21)
        let x = Tensor.randn([2, 6, 9, 11], generator: &gen)
        let down = Tensor.randn([7, 6, 3, 3], generator: &gen), up = Tensor.randn([6, 5, 3, 3], generator: &gen)
        /// Fresh gradients for each route's run.
        func track(_ tensors: Tensor...) {
            for t in tensors {
                t.grad = nil
                t.requiresGrad = true
            }
        }
        func passes() -> [[Float]] {
            track(x, down, up)
            let z = Functional.conv(x, weight: down, stride: [2, 2], padding: .explicit([1, 1]))
            let y = Functional.convTranspose(x, weight: up, stride: [2, 2], padding: [1])
            ((z * z).sum() + (y * y).sum()).backward()
            return [z.scalars, y.scalars, x.grad!.scalars, down.grad!.scalars, up.grad!.scalars]
        }
        // Grouped, dilated and 3-d: the col2im scatter along every axis.
        let v = Tensor.randn([1, 4, 5, 6, 7], generator: &gen)
        let w3 = Tensor.randn([4, 3, 3, 2, 3], generator: &gen), wg = Tensor.randn([6, 2, 3, 3], generator: &gen)
        func more() -> [[Float]] {
            track(v, x, w3, wg)
            let a = Functional.convTranspose(v, weight: w3, stride: [2, 1, 2], padding: [1, 0, 1])
            let b = Functional.conv(x, weight: wg, stride: [2, 1], padding: .explicit([2]), dilation: [2], groups: 3)
            ((a * a).sum() + (b * b).sum()).backward()
            return [a.scalars, b.scalars, v.grad!.scalars, x.grad!.scalars, w3.grad!.scalars, wg.grad!.scalars]
        }
        let reference = ConvRoute.forcing(.im2col) { passes() + more() }
        for route in ConvRoute.allCases {
            let got = ConvRoute.forcing(route) { passes() + more() }
            for (a, b) in zip(got, reference) {
                for i in a.indices {
                    XCTAssertEqual(a[i], b[i], accuracy: 1e-4 * max(1, Swift.abs(b[i])), "\(route) [\(i)]")
                }
            }
        }
    }

    /// Every route, at every width around the micro-kernel's tile (48 columns) and below it, reads and writes only
    /// inside its scratch buffers: they end at an inaccessible page here, so an overrun faults. (A forward read of
    /// a whole 48-column tile past the band buffer of a narrow image crashed CI once, only where the buffer
    /// happened to end at the end of a mapping.)
    func testKernelsStayInsideTheirScratchBuffers() {
        AllocatorTuning.guardsScratchOverruns = true
        defer { AllocatorTuning.guardsScratchOverruns = false }
        var gen = RandomGenerator(seed: 7)
        for width in [1, 2, 3, 5, 8, 13, 16, 24, 31, 45, 46, 47, 48, 49, 63, 97, 127, 128, 129] {
            for (k, channels, outChannels) in [(1, 1, 3), (3, 3, 8), (3, 16, 70), (5, 2, 9)] {
                let height = 1 + width % 5
                let x = Tensor.randn([2, channels, height, width], generator: &gen)
                let w = Tensor.randn([outChannels, channels, k, k], generator: &gen)
                x.requiresGrad = true
                w.requiresGrad = true
                let y = Functional.conv(x, weight: w, padding: .same)
                XCTAssertEqual(y.shape, [2, outChannels, height, width])
                y.backward(Tensor.randn(y.shape, generator: &gen))
                XCTAssertEqual(x.grad?.shape, x.shape)
                XCTAssertEqual(w.grad?.shape, w.shape)
            }
            // Up-sampling (transposed, stride 2) and a strided convolution through the im2col tiles.
            let x = Tensor.randn([2, 6, 2, width], generator: &gen)
            let up = Tensor.randn([6, 5, 2, 2], generator: &gen), down = Tensor.randn([7, 6, 3, 3], generator: &gen)
            x.requiresGrad = true
            up.requiresGrad = true
            down.requiresGrad = true
            let y = Functional.convTranspose(x, weight: up, stride: [2, 2])
            let z = Functional.conv(x, weight: down, stride: [2, 2], padding: .explicit([1, 1]))
            XCTAssertEqual(y.shape, [2, 5, 4, 2 * width])
            (y.sum() + z.sum()).backward()
            XCTAssertEqual(up.grad?.shape, up.shape)
            XCTAssertEqual(down.grad?.shape, down.shape)
        }
    }
}
