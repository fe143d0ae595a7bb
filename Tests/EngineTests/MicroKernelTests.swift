import CKernels
import Foundation
import TesseraEngine
import XCTest

/// Every micro-kernel variant this CPU supports agrees with a naive product, on full and edge tiles of every row count.
final class MicroKernelTests: XCTestCase {
    func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0; for t in 0..<k { s += Double(a[i * k + t] * b[t * n + j]) }; c[i * n + j] = Float(s)
            }
        }
        return c
    }

    func testEveryVariantMatchesNaiveProduct() throws {
        var g = RandomGenerator(seed: 11)
        var tested: [String] = []
        for name in ["scalar", "avx2", "avx512"] {
            for (kind, variant) in [("", tk_kernel_named(name)), (" one-row", tk_narrow_kernel_named(name))] {
                guard let info = variant?.pointee else { continue }
                let name = name + kind
                tested.append(name)
                let mr = Int(info.mr), nr = Int(info.nr)
                // Every row count (the wide kernels have a tile per count of active rows), full and partial widths.
                let shapes = (1...mr).flatMap { m in [(m, nr, 37), (m, max(1, nr - 3), 5)] } + [(1, 1, 1), (mr, 2, 64)]
                for (m, n, k) in shapes {
                    let a = (0..<(m * k)).map { _ in g.nextNormal() }, b = (0..<(k * n)).map { _ in g.nextNormal() }
                    var ap = [Float](repeating: .nan, count: mr * k), bp = [Float](repeating: .nan, count: nr * k)
                    tk_pack_a(a, k, 1, Int32(m), Int32(k), Int32(mr), &ap)
                    tk_pack_b(b, n, 1, Int32(k), Int32(n), Int32(nr), &bp)
                    let offsets = (0..<k).map { $0 * nr }
                    let ldc = n + 3
                    var c = [Float](repeating: 0.5, count: m * ldc)
                    info.kernel(k, ap, bp, offsets, &c, ldc, Int32(m), Int32(n), 1)
                    let expected = naive(a, b, m: m, n: n, k: k)
                    for i in 0..<m {
                        for j in 0..<n {
                            XCTAssertEqual(
                                c[i * ldc + j], expected[i * n + j] + 0.5, accuracy: 1e-4 * Float(k),
                                "\(name) \(m)x\(n)x\(k) [\(i),\(j)]")
                        }
                        for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], 0.5, "\(name) wrote past column \(n)") }
                    }
                    info.kernel(k, ap, bp, offsets, &c, ldc, Int32(m), Int32(n), 0)
                    XCTAssertEqual(c[0], expected[0], accuracy: 1e-4 * Float(k), "\(name) overwrite mode")
                }
            }
        }
        XCTAssertTrue(tested.contains("scalar"))
        print("micro-kernel variants checked: \(tested.joined(separator: ", "))")
    }

    func testRowReductionKernelMatchesNaive() {
        var g = RandomGenerator(seed: 12)
        let (m, n, len) = (7, 13, 53)
        let a = (0..<(m * len)).map { _ in g.nextNormal() }, b = (0..<(n * len + 5)).map { _ in g.nextNormal() }
        let offsets = (0..<n).map { $0 * len + ($0 % 3) }
        var c = [Float](repeating: 1, count: m * n)
        tk_gemm_dot(Int32(m), Int32(n), len, a, len, b, offsets, &c, n, 1)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 1
                for q in 0..<len { s += a[i * len + q] * b[offsets[j] + q] }
                XCTAssertEqual(c[i * n + j], s, accuracy: 1e-3)
            }
        }
    }

    /// Each row-reduction variant the CPU supports against the portable one, at lengths 1-129 around the vector
    /// widths (8 and 16) and at tile edges (4 x 3 and 4 x 6), with A and B ending at an inaccessible page, so
    /// that a load past the last column faults.
    func testRowReductionVariantsMatchPortableInsideGuardedMemory() {
        var g = RandomGenerator(seed: 13)
        var tested: [String] = []
        for name in ["avx2", "avx512"] where tk_kernel_named(name) != nil {
            tested.append(name)
            for len in [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 127, 128, 129] {
                for (m, n) in [(1, 1), (3, 2), (4, 3), (5, 7), (9, 13)] {
                    let aCount = m * len, bCount = n * len
                    let aBytes = aCount * 4, bBytes = bCount * 4
                    guard let ar = tk_guarded_alloc(aBytes), let br = tk_guarded_alloc(bBytes) else {
                        return XCTFail("guarded allocation failed")
                    }
                    defer { tk_guarded_free(ar, aBytes); tk_guarded_free(br, bBytes) }
                    let a = ar.bindMemory(to: Float.self, capacity: aCount)
                    let b = br.bindMemory(to: Float.self, capacity: bCount)
                    for i in 0..<aCount { a[i] = g.nextNormal() }
                    for i in 0..<bCount { b[i] = g.nextNormal() }
                    // Rows of B in reverse order, so the last tile reads the row that ends at the guard page.
                    let offsets = (0..<n).map { (n - 1 - $0) * len }
                    var expected = [Float](repeating: 0.25, count: m * n), got = expected
                    tk_gemm_dot_variant("scalar", Int32(m), Int32(n), len, a, len, b, offsets, &expected, n, 1)
                    tk_gemm_dot_variant(name, Int32(m), Int32(n), len, a, len, b, offsets, &got, n, 1)
                    for i in 0..<(m * n) {
                        XCTAssertEqual(
                            got[i], expected[i], accuracy: 1e-5 * Float(len) + 1e-5,
                            "\(name) m \(m) n \(n) len \(len) [\(i)]")
                    }
                    tk_gemm_dot_variant(name, Int32(m), Int32(n), len, a, len, b, offsets, &got, n, 0)
                    XCTAssertEqual(got[0], expected[0] - 0.25, accuracy: 1e-5 * Float(len) + 1e-5, "\(name) overwrite")
                }
            }
        }
        print("row-reduction variants checked against the portable one: \(tested.joined(separator: ", "))")
    }
}
