import CKernels
import Foundation
import TesseraEngine
import XCTest

/// Each instruction-set variant of the vector loops (epilogue, batch-norm affine, max pools, warp, Adam) against the
/// portable one, at lengths 1-129 around the vector widths, with every operand ending at an inaccessible page.
final class VectorLoopTests: XCTestCase {
    let lengths = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129]
    var variants: [String] { ["avx2", "avx512"].filter { tk_kernel_named($0) != nil } }

    /// `count` floats ending at a guard page, filled by `fill`; freed after `body`.
    func guarded<R>(_ count: Int, _ fill: (Int) -> Float, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let bytes = max(1, count) * 4
        let raw = tk_guarded_alloc(bytes)!
        defer { tk_guarded_free(raw, bytes) }
        let p = raw.bindMemory(to: Float.self, capacity: count)
        for i in 0..<count { p[i] = fill(i) }
        return body(p)
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for i in a.indices where !(a[i].isNaN && b[i].isNaN) {
            if Swift.abs(a[i] - b[i]) > 1e-6 * max(1, Swift.abs(b[i])) {
                return XCTFail("\(what) [\(i)]: \(a[i]) vs \(b[i])", file: file, line: line)
            }
        }
    }

    func testEpilogueAndAffine() {
        var g = RandomGenerator(seed: 31)
        for isa in variants {
            for n in lengths {
                let x = (0..<(3 * n)).map { _ in g.nextNormal() }
                let scale: [Float] = [0.5, -2, 1.25], shift: [Float] = [0.1, 0, -0.3]
                for act in [Int32(0), 1] {
                    func epilogue(_ v: String) -> [Float] {
                        guarded(3 * n, { x[$0] }) { p in
                            tk_epilogue_variant(v, p, n, 3, Int32(n), scale, shift, act)
                            return Array(UnsafeBufferPointer(start: p, count: 3 * n))
                        }
                    }
                    assertClose(epilogue(isa), epilogue("scalar"), "\(isa) epilogue n \(n) act \(act)")
                    func affine(_ v: String) -> [Float] {
                        guarded(n, { x[$0] }) { src in
                            guarded(n, { _ in .nan }) { dst in
                                tk_affine_variant(v, src, dst, n, -1.5, 0.25, act)
                                return Array(UnsafeBufferPointer(start: dst, count: n))
                            }
                        }
                    }
                    assertClose(affine(isa), affine("scalar"), "\(isa) affine n \(n) act \(act)")
                }
            }
        }
    }

    /// Ties keep the first value, NaN anywhere in a window wins (as torch), and the argmax says which.
    func testMaxPoolRowWithTiesAndNaN() {
        var g = RandomGenerator(seed: 32)
        for isa in variants {
            for ow in lengths {
                let values: [Float] = (0..<(4 * ow)).map { i in
                    switch i % 11 {
                    case 3: return .nan;
                    case 5, 6: return 1;
                    default: return Float(g.nextInt(4))
                    }
                }
                func pool(_ v: String) -> ([Float], [UInt8]) {
                    guarded(2 * ow, { values[$0] }) { r0 in
                        guarded(2 * ow, { values[2 * ow + $0] }) { r1 in
                            guarded(ow, { _ in 0 }) { out in
                                var argmax = [UInt8](repeating: 9, count: ow)
                                tk_maxpool2x2_row_variant(v, r0, r1, ow, out, &argmax)
                                return (Array(UnsafeBufferPointer(start: out, count: ow)), argmax)
                            }
                        }
                    }
                }
                let (a, ai) = pool(isa), (b, bi) = pool("scalar")
                XCTAssertEqual(ai, bi, "\(isa) argmax ow \(ow)")
                for i in 0..<ow { XCTAssertTrue(a[i] == b[i] || (a[i].isNaN && b[i].isNaN), "\(isa) ow \(ow) [\(i)]") }
                // The portable loop itself against the rule, window by window.
                for x in 0..<ow {
                    let w = [values[2 * x], values[2 * x + 1], values[2 * ow + 2 * x], values[2 * ow + 2 * x + 1]]
                    var best = 0
                    for k in 1..<4 where w[k] > w[best] || w[k].isNaN { best = k }
                    XCTAssertEqual(Int(bi[x]), best, "window \(x) of \(w)")
                }
            }
        }
    }

    /// Any window (3x3 stride 2 padding 1 as ResNet's stem, dilated, wide): variants agree with the portable loop,
    /// which agrees with a direct reading of torch's rule.
    func testMaxPoolPlane() {
        var g = RandomGenerator(seed: 34)
        for isa in variants {
            for (h, w, k, s, p, d) in [
                (9, 13, 3, 2, 1, 1), (1, 1, 3, 2, 1, 1), (17, 33, 2, 1, 0, 2), (8, 65, 5, 3, 2, 1),
                (6, 112, 3, 2, 1, 1), (5, 2, 3, 1, 0, 1), (4, 9, 3, 2, 2, 1)
            ] {
                let oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (w + 2 * p - d * (k - 1) - 1) / s + 1
                let x: [Float] = (0..<(h * w)).map { i in i % 13 == 4 ? .nan : Float(g.nextInt(5)) }
                let geometry = tk_pool_geom(
                    h: Int32(h), w: Int32(w), oh: Int32(oh), ow: Int32(ow), kh: Int32(k),
                    kw: Int32(k), sh: Int32(s), sw: Int32(s), ph: Int32(p), pw: Int32(p),
                    dh: Int32(d), dw: Int32(d))
                func pool(_ v: String) -> ([Float], [Int32]) {
                    guarded(h * w, { x[$0] }) { src in
                        var out = [Float](repeating: 0, count: oh * ow), am = [Int32](repeating: -7, count: oh * ow)
                        withUnsafePointer(to: geometry) { tk_maxpool2d_plane_variant(v, src, $0, &out, &am) }
                        return (out, am)
                    }
                }
                let (a, ai) = pool(isa), (b, bi) = pool("scalar")
                XCTAssertEqual(ai, bi, "\(isa) argmax \(h)x\(w) k\(k)")
                for i in a.indices { XCTAssertTrue(a[i] == b[i] || (a[i].isNaN && b[i].isNaN)) }
                // Inference (no argmax) takes the across-columns loop for interior windows: the same values.
                for name in [isa, "scalar"] {
                    let c: [Float] = guarded(h * w, { x[$0] }) { src in
                        var out = [Float](repeating: -9, count: oh * ow)
                        withUnsafePointer(to: geometry) { tk_maxpool2d_plane_variant(name, src, $0, &out, nil) }
                        return out
                    }
                    for i in a.indices {
                        XCTAssertTrue(
                            c[i] == b[i] || (c[i].isNaN && b[i].isNaN), "\(name) no argmax [\(i)] \(c[i]) vs \(b[i])")
                    }
                }
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var best = -1
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let iy = oy * s - p + ky * d, ix = ox * s - p + kx * d
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                let v = x[iy * w + ix]
                                if best < 0 || v > x[best] || v.isNaN { best = iy * w + ix }
                            }
                        }
                        XCTAssertEqual(Int(bi[oy * ow + ox]), best, "window (\(oy), \(ox))")
                    }
                }
            }
        }
    }

    /// The augmentation's bilinear warp (image planes and nearest labels at mirrored coordinates).
    func testWarp() {
        var g = RandomGenerator(seed: 35)
        for isa in variants {
            for (w, h) in [(7, 5), (2, 2), (33, 17)] {
                for n in [1, 9, 64, 129] {
                    let src = (0..<(2 * w * h)).map { _ in g.nextNormal() }
                    let labels = (0..<(w * h)).map { Int32($0 % 3) }
                    let sx = (0..<n).map { _ in (g.nextFloat() * 3 - 1) * Float(w) }
                    let sy = (0..<n).map { _ in (g.nextFloat() * 3 - 1) * Float(h) }
                    func warp(_ v: String) -> ([Float], [Int32]) {
                        var out = [Float](repeating: 0, count: 2 * n), lab = [Int32](repeating: -1, count: n)
                        tk_warp_bilinear_variant(v, src, labels, w, h, 2, sx, sy, n, &out, &lab)
                        return (out, lab)
                    }
                    let (a, al) = warp(isa), (b, bl) = warp("scalar")
                    assertClose(a, b, "\(isa) warp \(w)x\(h) n \(n)")
                    XCTAssertEqual(al, bl, "\(isa) warp labels \(w)x\(h) n \(n)")
                }
            }
        }
    }

    func testAdamStep() {
        var g = RandomGenerator(seed: 33)
        for isa in variants {
            for n in lengths {
                for decoupled in [Int32(0), 1] {
                    let p0 = (0..<n).map { _ in g.nextNormal() }, g0 = (0..<n).map { _ in g.nextNormal() }
                    let m0 = (0..<n).map { _ in g.nextNormal() * 0.1 },
                        v0 = (0..<n).map { _ in Swift.abs(g.nextNormal()) * 0.01 }
                    var h = tk_adam_params(
                        lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01,
                        step_size: 1e-3 / 0.19, bias_correction2_sqrt: 0.0447, decoupled: decoupled)
                    func step(_ v: String) -> [Float] {
                        guarded(n, { p0[$0] }) { p in
                            guarded(n, { g0[$0] }) { gp in
                                guarded(n, { m0[$0] }) { m in
                                    guarded(n, { v0[$0] }) { vv in
                                        tk_adam_variant(v, p, gp, m, vv, n, &h)
                                        return Array(UnsafeBufferPointer(start: p, count: n))
                                            + Array(UnsafeBufferPointer(start: m, count: n))
                                            + Array(UnsafeBufferPointer(start: vv, count: n))
                                    }
                                }
                            }
                        }
                    }
                    assertClose(step(isa), step("scalar"), "\(isa) adam n \(n) decoupled \(decoupled)")
                }
            }
        }
        print("vector loop variants checked against the portable ones: \(variants.joined(separator: ", "))")
    }
}
