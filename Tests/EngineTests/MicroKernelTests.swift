import CKernels
import Foundation
import TesseraEngine
import XCTest

/// Every micro-kernel variant this CPU supports agrees with a naive product, on full and edge tiles.
final class MicroKernelTests: XCTestCase {
    func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { var s: Double = 0; for t in 0..<k { s += Double(a[i * k + t] * b[t * n + j]) }; c[i * n + j] = Float(s) } }
        return c
    }

    func testEveryVariantMatchesNaiveProduct() throws {
        var g = RandomGenerator(seed: 11)
        var tested: [String] = []
        for name in ["scalar", "avx2", "avx512"] {
            guard let info = tk_kernel_named(name)?.pointee else { continue }
            tested.append(name)
            let mr = Int(info.mr), nr = Int(info.nr)
            for (m, n, k) in [(mr, nr, 37), (mr - 1, nr - 3, 5), (1, 1, 1), (mr, 2, 64)] {
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
                        XCTAssertEqual(c[i * ldc + j], expected[i * n + j] + 0.5, accuracy: 1e-4 * Float(k), "\(name) \(m)x\(n)x\(k) [\(i),\(j)]")
                    }
                    for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], 0.5, "\(name) wrote past column \(n)") }
                }
                info.kernel(k, ap, bp, offsets, &c, ldc, Int32(m), Int32(n), 0)
                XCTAssertEqual(c[0], expected[0], accuracy: 1e-4 * Float(k), "\(name) overwrite mode")
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
}
