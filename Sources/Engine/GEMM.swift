import CKernels
import Foundation

/// Cache-blocked SGEMM over packed panels, driving the CKernels micro-kernel chosen for this CPU.
public enum GEMM {
    static let info: tk_kernel_info = {
        guard let p = tk_kernel() else { fatalError("no GEMM micro-kernel available") }
        return p.pointee
    }()

    /// Name of the micro-kernel variant in use (avx512, avx2 or scalar).
    public static var kernelName: String { String(cString: info.name) }
    static var mr: Int { Int(info.mr) }
    static var nr: Int { Int(info.nr) }
    /// Depth of one block of a reduction over pixels (weight gradients).
    static let kc = 128
    /// Deepest block of a weight operand: its B rows (256 x 64 bytes) and A panel stay in a 32 KB L1.
    static let maxDepthBlock = 256
    /// Columns per packed B block (fits the block in L2).
    static var nc: Int { nr * 8 }

    /// Depth blocks of equal size, at most `maxDepthBlock`, for a reduction of depth k: a 3x3 layer with 16
    /// input channels (k = 144) runs as one block, not as 128 + 16, whose second block reloads and stores the
    /// whole C tile for 16 multiply-adds (measured: W=16 U-Net forward 5% faster on AVX2).
    static func depthBlock(_ k: Int) -> Int {
        let blocks = max(1, (k + maxDepthBlock - 1) / maxDepthBlock)
        return max(1, (k + blocks - 1) / blocks)
    }

    /// Row offsets of a packed B panel: k * nr for k < maxDepthBlock.
    static let packedOffsets: [Int] = (0..<maxDepthBlock).map { $0 * GEMM.nr }

    /// Scratch floats one `multiply` call needs for packing B.
    static var scratchCount: Int { maxDepthBlock * ((nc + nr - 1) / nr) * nr }

    /// The A operand packed once into kc-blocks of mr-row panels.
    final class PackedA {
        let m: Int, k: Int
        /// Depth of each block but the last (`GEMM.depthBlock(k)`).
        let kc: Int
        let panels: Int
        let storage: TensorStorage

        /// Packs A[i][j] = src[i*rs + j*cs] for i < m, j < k.
        convenience init(m: Int, k: Int, src: UnsafePointer<Float>, rs: Int, cs: Int) {
            self.init(m: m, k: k) { pc, kcb, dst in
                tk_pack_a(src + pc * cs, rs, cs, Int32(m), Int32(kcb), info.mr, dst)
            }
        }

        /// Packs A[i][(o, t)] = src[o * outerStride + i * rs + t] for i < m, o * inner + t < k: a convolution
        /// weight [outer][m][inner] read with its first two axes swapped, without materialising the swap.
        convenience init(m: Int, k: Int, swapped src: UnsafePointer<Float>, rs: Int, inner: Int, outerStride: Int) {
            self.init(m: m, k: k) { pc, kcb, dst in
                tk_pack_a_swapped(src, rs, inner, outerStride, Int32(m), pc, Int32(kcb), info.mr, dst)
            }
        }

        /// Allocates the panels and lets `packBlock(pc, kc, destination)` fill each depth block.
        private init(m: Int, k: Int, packBlock: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
            self.m = m
            self.k = k
            kc = GEMM.depthBlock(k)
            panels = (m + GEMM.mr - 1) / GEMM.mr
            storage = TensorStorage(count: max(1, panels * GEMM.mr * k), zeroed: false)
            var pc = 0
            while pc < k {
                packBlock(pc, min(kc, k - pc), block(pc))
                pc += kc
            }
        }

        /// Start of the block for depth offset `pc`.
        func block(_ pc: Int) -> UnsafeMutablePointer<Float> { storage.base + pc * panels * GEMM.mr }
    }

    /// C[0..<m][0..<n] (=|+=) A · B for columns 0..<n, sequentially, where
    /// `packB(k0, kc, n0, nc, dst)` packs B[k0..<k0+kc][n0..<n0+nc] into nr-column panels.
    static func multiply(_ a: PackedA, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                         scratch: UnsafeMutablePointer<Float>,
                         packB: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let mr = GEMM.mr, nr = GEMM.nr, kern = info.kernel!
        packedOffsets.withUnsafeBufferPointer { offs in
        var jc = 0
        while jc < n {
            let ncb = min(nc, n - jc)
            let nPanels = (ncb + nr - 1) / nr
            var pc = 0
            while pc < a.k {
                let kcb = min(a.kc, a.k - pc)
                packB(pc, kcb, jc, ncb, scratch)
                let aBlock = a.block(pc)
                let acc: Int32 = (accumulate || pc > 0) ? 1 : 0
                for jr in 0..<nPanels {
                    let b = scratch + jr * kcb * nr
                    let cols = min(nr, ncb - jr * nr)
                    let cCol = c + jc + jr * nr
                    for ir in 0..<a.panels {
                        let rows = min(mr, a.m - ir * mr)
                        kern(kcb, aBlock + ir * kcb * mr, b, offs.baseAddress!, cCol + ir * mr * ldc, ldc,
                             Int32(rows), Int32(cols), acc)
                    }
                }
                pc += a.kc
            }
            jc += nc
        }
        }
        if a.k == 0 && !accumulate {
            for i in 0..<a.m { (c + i * ldc).initialize(repeating: 0, count: n) }
        }
    }

    /// C[m][n] (=|+=) A[m][k] · B[k][n] with arbitrary element strides, over all cores.
    public static func matmul(m: Int, n: Int, k: Int,
                              a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
                              b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        if m == 0 || n == 0 { return }
        let packed = PackedA(m: m, k: k, src: a, rs: aRowStride, cs: aColStride)
        let chunk = max(nr, ((n + Parallel.threadCount - 1) / Parallel.threadCount + nr - 1) / nr * nr)
        let chunks = (n + chunk - 1) / chunk
        let tiny = m * n * max(k, 1) < 1 << 16
        let run = { (t: Int) in
            let n0 = t * chunk, nn = min(chunk, n - n0)
            let scratch = ScratchBuffer(count: scratchCount)
            multiply(packed, n: nn, c: c + n0, ldc: ldc, accumulate: accumulate, scratch: scratch.pointer) {
                k0, kcb, j0, ncb, dst in
                tk_pack_b(b + k0 * bRowStride + (n0 + j0) * bColStride, bRowStride, bColStride,
                          Int32(kcb), Int32(ncb), info.nr, dst)
            }
        }
        if tiny { for t in 0..<chunks { run(t) } } else { Parallel.forEach(chunks, run) }
    }
}

extension Tensor {
    /// Matrix product of rank-2 tensors ([m, k] x [k, n]); views such as transposes are read in place.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank == 2 && other.rank == 2 && shape[1] == other.shape[0],
                     "matmul needs [m, k] x [k, n], got \(shape) x \(other.shape)")
        let m = shape[0], k = shape[1], n = other.shape[1]
        let out = Tensor(zeros: [m, n], zeroed: false)
        GEMM.matmul(m: m, n: n, k: k, a: pointer, aRowStride: strides[0], aColStride: strides[1],
                    b: other.pointer, bRowStride: other.strides[0], bColStride: other.strides[1],
                    c: out.pointer, ldc: n)
        let a = self, b = other
        return Tensor.record(out, [self, other]) { g in
            [a.requiresGrad ? g.matmul(b.transposed()) : nil, b.requiresGrad ? a.transposed().matmul(g) : nil]
        }
    }
}
