import CKernels
import Foundation
import TesseraEngine
import XCTest

/// The batch-norm, element-wise and SGD loops: every variant (the portable one included) against a float64
/// reference computed here, at lengths 1-129 with guard pages.
extension VectorLoopTests {
    var allVariants: [String] { ["scalar"] + variants }

    func assertNear(
        _ a: Float, _ b: Double, scale: Double, _ what: String, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertLessThanOrEqual(Swift.abs(Double(a) - b), 1e-5 * max(1, scale), what, file: file, line: line)
    }

    func testBatchNormReductions() {
        var g = RandomGenerator(seed: 41)
        for isa in allVariants {
            for n in lengths {
                // A mean far from 0 beside the spread, as after a convolution with a large bias.
                let x = (0..<n).map { _ in 3 + g.nextNormal() }, gr = (0..<n).map { _ in g.nextNormal() }
                let y = (0..<n).map { _ in g.nextNormal() }
                let mean = x.reduce(0.0) { $0 + Double($1) } / Double(n)
                let scale = x.reduce(0.0) { $0 + Swift.abs(Double($1)) }
                guarded(n, { x[$0] }) { px in
                    var s: Float = 0
                    tk_sum_variant(isa, px, n, &s)
                    assertNear(s, x.reduce(0.0) { $0 + Double($1) }, scale: scale, "\(isa) sum n \(n)")
                    var q: Float = 0
                    tk_squared_deviation_variant(isa, px, n, Float(mean), &q)
                    let dev = x.map { (Double($0) - mean) * (Double($0) - mean) }
                    assertNear(q, dev.reduce(0, +), scale: dev.reduce(0, +), "\(isa) squared deviation n \(n)")
                    guarded(n, { gr[$0] }) { pg in
                        guarded(n, { y[$0] }) { py in
                            for masked in [false, true] {
                                var a: Float = 0, b: Float = 0
                                tk_gradient_moments_variant(
                                    isa, pg, px, masked ? UnsafePointer(py) : nil, n,
                                    Float(mean), &a, &b)
                                let gm = (0..<n).map { !masked || y[$0] > 0 ? Double(gr[$0]) : 0 }
                                let ra = gm.reduce(0, +)
                                let rb = (0..<n).reduce(0.0) { $0 + gm[$1] * (Double(x[$1]) - mean) }
                                assertNear(a, ra, scale: Double(n), "\(isa) sum g n \(n) masked \(masked)")
                                assertNear(b, rb, scale: scale, "\(isa) sum g(x - mean) n \(n) masked \(masked)")
                            }
                        }
                    }
                }
            }
        }
    }

    func testBatchNormInputGradient() {
        var g = RandomGenerator(seed: 42)
        for isa in allVariants {
            for n in lengths {
                let x = (0..<n).map { _ in g.nextNormal() }, gr = (0..<n).map { _ in g.nextNormal() }
                let y = (0..<n).map { _ in g.nextNormal() }
                for training in [Int32(0), 1] {
                    for masked in [false, true] {
                        var c = tk_batchnorm_grad(
                            k: 0.7, count: Float(n), mean: 0.2, inv_std: 1.3, sum_g: 0.4,
                            sum_gx: -0.6, training: training)
                        let got: [Float] = guarded(n, { x[$0] }) { px in
                            guarded(n, { gr[$0] }) { pg in
                                guarded(n, { y[$0] }) { py in
                                    guarded(n, { _ in .nan }) { out in
                                        tk_batchnorm_input_grad_variant(
                                            isa, pg, px, masked ? UnsafePointer(py) : nil,
                                            n, &c, out)
                                        return Array(UnsafeBufferPointer(start: out, count: n))
                                    }
                                }
                            }
                        }
                        for i in 0..<n {
                            let gi = !masked || y[i] > 0 ? Double(gr[i]) : 0
                            let want =
                                training == 1
                                ? 0.7 * (Double(n) * gi - 0.4 - (Double(x[i]) - 0.2) * 1.3 * -0.6)
                                : 0.7 * gi
                            assertNear(
                                got[i], want, scale: Double(n) * 2,
                                "\(isa) n \(n) training \(training) masked \(masked) [\(i)]")
                        }
                    }
                }
            }
        }
    }

    func testBinaryOperators() {
        var g = RandomGenerator(seed: 43)
        let ops: [(tk_binary_op, (Double, Double) -> Double)] = [
            (TK_ADD, +), (TK_SUB, -), (TK_MUL, *), (TK_DIV, /), (TK_RELU_GRAD, { $1 > 0 ? $0 : 0 })
        ]
        for isa in allVariants {
            for n in lengths {
                let a = (0..<n).map { _ in g.nextNormal() }, b = (0..<n).map { _ in g.nextNormal() + 0.01 }
                for (op, f) in ops {
                    for operands in [TK_BOTH_ARRAYS, TK_SCALAR_B, TK_SCALAR_A] {
                        let na = operands == TK_SCALAR_A ? 1 : n, nb = operands == TK_SCALAR_B ? 1 : n
                        let got: [Float] = guarded(na, { a[$0] }) { pa in
                            guarded(nb, { b[$0] }) { pb in
                                guarded(n, { _ in .nan }) { out in
                                    tk_binary_variant(isa, Int32(op.rawValue), Int32(operands.rawValue), pa, pb, out, n)
                                    return Array(UnsafeBufferPointer(start: out, count: n))
                                }
                            }
                        }
                        for i in 0..<n {
                            let want = f(Double(a[na == 1 ? 0 : i]), Double(b[nb == 1 ? 0 : i]))
                            XCTAssertEqual(
                                Double(got[i]), want, accuracy: 1e-6 * max(1, Swift.abs(want)),
                                "\(isa) op \(op.rawValue) operands \(operands.rawValue) n \(n) [\(i)]")
                        }
                    }
                }
            }
        }
    }

    /// Two SGD steps (the buffer's first step, then a later one) against torch.optim.SGD's rule in float64.
    func testSGDSteps() {
        var g = RandomGenerator(seed: 44)
        for isa in allVariants {
            for n in lengths {
                for (momentum, nesterov) in [(Float(0), Int32(0)), (0.9, 0), (0.9, 1)] {
                    let p0 = (0..<n).map { _ in g.nextNormal() }
                    let grads = (0..<2).map { _ in (0..<n).map { _ in g.nextNormal() } }
                    var want = p0.map(Double.init), buf = [Double](repeating: 0, count: n)
                    for (step, gs) in grads.enumerated() {
                        for j in 0..<n {
                            var d = Double(gs[j]) + 0.01 * want[j]
                            if momentum != 0 {
                                buf[j] = step == 0 ? d : Double(momentum) * buf[j] + d
                                d = nesterov == 1 ? d + Double(momentum) * buf[j] : buf[j]
                            }
                            want[j] -= 0.1 * d
                        }
                    }
                    let got: [Float] = guarded(n, { p0[$0] }) { p in
                        guarded(n, { _ in .nan }) { b in
                            for (step, gs) in grads.enumerated() {
                                var h = tk_sgd_params(
                                    lr: 0.1, momentum: momentum, weight_decay: 0.01,
                                    nesterov: nesterov, first: step == 0 ? 1 : 0)
                                gs.withUnsafeBufferPointer {
                                    tk_sgd_variant(isa, p, $0.baseAddress, momentum == 0 ? nil : b, n, &h)
                                }
                            }
                            return Array(UnsafeBufferPointer(start: p, count: n))
                        }
                    }
                    for j in 0..<n {
                        assertNear(
                            got[j], want[j], scale: 1,
                            "\(isa) sgd momentum \(momentum) nesterov \(nesterov) n \(n) [\(j)]")
                    }
                }
            }
        }
    }
}
