import CKernels
import Foundation
import TesseraEngine
import XCTest

/// The softmax and cross-entropy loops and their polynomial exp and log, on every variant, against float64.
extension VectorLoopTests {
    func testExpAndLogWithinTwoUlp() {
        var g = RandomGenerator(seed: 51)
        let special: [Float] = [
            0, -0.0, 1, -1, 88, -87, -87.5, -100, 100, .infinity, -.infinity, .nan,
            Float.leastNormalMagnitude, Float.greatestFiniteMagnitude, 1e-30, 0.5, 2
        ]
        let values =
            special + (0..<2000).map { _ in g.nextFloat() * 180 - 90 }
            + (0..<500).map { _ in Foundation.exp(g.nextFloat() * 160 - 80) }
        for isa in allVariants {
            var e = [Float](repeating: 0, count: values.count), l = e
            tk_exp_log_variant(isa, values, &e, &l, values.count)
            for (i, x) in values.enumerated() {
                let we = Foundation.exp(Double(x)), wl = Foundation.log(Double(x))
                if x.isNaN || x < 0 { XCTAssertTrue(l[i].isNaN, "\(isa) log(\(x)) = \(l[i])") }
                if x.isNaN { XCTAssertTrue(e[i].isNaN, "\(isa) exp(nan)"); continue }
                if x < -87.3 {
                    XCTAssertEqual(e[i], 0, "\(isa) exp(\(x))")
                } else if x > 88.7 {
                    XCTAssertEqual(e[i], .infinity, "\(isa) exp(\(x))")
                } else {
                    XCTAssertLessThanOrEqual(
                        Swift.abs(Double(e[i]) - we), 2 * Double(Float(we).ulp),
                        "\(isa) exp(\(x)) = \(e[i]), want \(we)")
                }
                if x > 0 && x.isFinite {
                    XCTAssertLessThanOrEqual(
                        Swift.abs(Double(l[i]) - wl), max(2 * Double(Float(wl).ulp), 1e-7),
                        "\(isa) log(\(x)) = \(l[i]), want \(wl)")
                }
                if x == 0 { XCTAssertTrue(l[i].isNaN || l[i] == -.infinity, "\(isa) log(0)") }
            }
        }
    }

    /// Softmax and log-softmax over 1-5 channels with the stride of an [N, C, H*W] tensor, NaN propagated.
    func testSoftmaxOverChannels() {
        var g = RandomGenerator(seed: 52)
        for isa in allVariants {
            for channels in 1...5 {
                for count in lengths {
                    let stride = count + 3
                    var x = (0..<(channels * stride)).map { _ in g.nextNormal() * 6 }
                    if count > 5 { x[stride * (channels - 1) + 5] = .nan }
                    for log in [Int32(0), 1] {
                        let got: [Float] = guarded(channels * stride, { x[$0] }) { px in
                            guarded(channels * stride, { _ in 7 }) { out in
                                tk_softmax_channels_variant(isa, px, out, channels, stride, count, log)
                                return Array(UnsafeBufferPointer(start: out, count: channels * stride))
                            }
                        }
                        for i in 0..<count {
                            let column = (0..<channels).map { Double(x[$0 * stride + i]) }
                            let m = column.max()!,
                                lse = m + Foundation.log(column.map { Foundation.exp($0 - m) }.reduce(0, +))
                            for j in 0..<channels {
                                let v = got[j * stride + i]
                                if column.contains(where: \.isNaN) {
                                    XCTAssertTrue(v.isNaN, "\(isa) NaN lost"); continue
                                }
                                let want = log == 1 ? column[j] - lse : Foundation.exp(column[j] - lse)
                                XCTAssertEqual(
                                    Double(v), want, accuracy: 2e-6 * max(1, Swift.abs(want)),
                                    "\(isa) C \(channels) n \(count) log \(log) [\(j), \(i)]")
                            }
                        }
                        for i in count..<stride { XCTAssertEqual(got[i], 7, "\(isa) wrote past the pixels") }
                    }
                }
            }
        }
    }

    /// The cross-entropy gradient with class weights, label smoothing and an ignored id, against its formula.
    func testCrossEntropyGradient() {
        var g = RandomGenerator(seed: 53)
        for isa in allVariants {
            for channels in [2, 3, 5] {
                for count in lengths {
                    let logp = (0..<(channels * count)).map { _ in -Swift.abs(g.nextNormal()) * 3 }
                    let target = (0..<count).map { i in i % 7 == 3 ? Float(-100) : Float(g.nextInt(channels)) }
                    let w = (0..<channels).map { _ in 0.5 + g.nextFloat() }
                    for smoothing: Float in [0, 0.1] {
                        let got: [Float] = w.withUnsafeBufferPointer { wp in
                            var h = tk_cross_entropy_grad_params(
                                weights: wp.baseAddress, weight_total: w.reduce(0, +),
                                smoothing: smoothing, scale: 0.25, ignore_index: -100,
                                has_ignore: 1)
                            return guarded(channels * count, { logp[$0] }) { lp in
                                guarded(count, { target[$0] }) { tp in
                                    guarded(channels * count, { _ in .nan }) { out in
                                        tk_cross_entropy_grad_variant(isa, lp, tp, out, channels, count, count, &h)
                                        return Array(UnsafeBufferPointer(start: out, count: channels * count))
                                    }
                                }
                            }
                        }
                        for i in 0..<count {
                            for j in 0..<channels {
                                var want = 0.0
                                if target[i] != -100 {
                                    let y = Int(target[i]), p = Foundation.exp(Double(logp[j * count + i]))
                                    let s = Double(smoothing), wt = Double(w.reduce(0, +))
                                    want =
                                        0.25
                                        * ((1 - s) * Double(w[y]) * (p - (j == y ? 1 : 0))
                                            + s / Double(channels) * (p * wt - Double(w[j])))
                                }
                                XCTAssertEqual(
                                    Double(got[j * count + i]), want, accuracy: 1e-6,
                                    "\(isa) C \(channels) n \(count) smoothing \(smoothing) [\(j), \(i)]")
                            }
                        }
                    }
                }
            }
        }
    }
}
