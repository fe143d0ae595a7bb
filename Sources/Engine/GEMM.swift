import CKernels
import Foundation

/// Cache-blocked SGEMM over packed panels, driving the CKernels micro-kernel chosen for this CPU.
public enum GEMM {
    // Immutable: the name is a C string literal, the kernel a pure function.
    nonisolated(unsafe) static let info: tk_kernel_info = {
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
    /// input channels (k = 144) runs as one block, not as 128 + 16, whose second block would reload and store
    /// the whole C tile for 16 multiply-adds.
    static func depthBlock(_ k: Int) -> Int {
        let blocks = max(1, (k + maxDepthBlock - 1) / maxDepthBlock)
        return max(1, (k + blocks - 1) / blocks)
    }

    /// A micro-kernel, its tile shape and the row offsets of its packed B panels.
    // @unchecked: immutable; `tk_kernel_info` holds C function pointers to pure kernels and integers.
    struct Kernel: @unchecked Sendable {
        let info: tk_kernel_info
        /// k * nr for k < maxDepthBlock.
        let offsets: [Int]
        init(_ info: tk_kernel_info) {
            self.info = info
            offsets = (0..<GEMM.maxDepthBlock).map { $0 * Int(info.nr) }
        }
        var mr: Int { Int(info.mr) }
        var nr: Int { Int(info.nr) }
        /// Columns per packed B block (fits the block in L2).
        var nc: Int { nr * 8 }
        var function: tk_gemm_kernel_fn { info.kernel! }
    }

    /// The register-tiled kernel (6 x 16 on AVX2, 8 x 48 on AVX-512).
    static let wide = Kernel(info)
    /// The one-row kernel (1 x 32 on AVX2, 1 x 64 on AVX-512) of the same instruction set.
    static let narrow: Kernel = {
        guard let p = tk_narrow_kernel() else { fatalError("no one-row GEMM micro-kernel available") }
        return Kernel(p.pointee)
    }()
    /// Up to this many rows, a product runs the one-row kernel (a gray first layer's input gradient). Products of
    /// 2-4 rows (a 2-class head, an RGB first layer's input gradient) run the wide kernel's tile for just those
    /// rows, which loads each B vector once for all of them: the RGB 3->32 input gradient at 512x512 went from
    /// 36-56% of its forward's GFLOP/s (three one-row passes) to 58-73% (AVX-512 and AVX2, Zen 4, 2 threads).
    static let narrowRows = 1
    static func kernel(rows m: Int) -> Kernel { m <= narrowRows ? narrow : wide }
    /// Widest B row any kernel reads: buffers read in place keep this many floats of slack.
    static var maxNr: Int { max(wide.nr, narrow.nr) }

    /// Scratch floats one `multiply` call needs for packing B.
    static var scratchCount: Int { maxDepthBlock * max(wide.nc, narrow.nc) }

    /// The A operand packed once into kc-blocks of mr-row panels.
    final class PackedA {
        let m: Int, k: Int
        /// The micro-kernel the panels are packed for (`GEMM.kernel(rows: m)`).
        let kernel: Kernel
        /// Depth of each block but the last (`GEMM.depthBlock(k)`).
        let kc: Int
        let panels: Int
        let storage: TensorStorage

        /// Packs A[i][j] = src[i*rs + j*cs] for i < m, j < k.
        convenience init(m: Int, k: Int, src: UnsafePointer<Float>, rs: Int, cs: Int) {
            self.init(m: m, k: k) { pc, kcb, mr, dst in
                tk_pack_a(src + pc * cs, rs, cs, Int32(m), Int32(kcb), Int32(mr), dst)
            }
        }

        /// Packs A[i][(o, t)] = src[o * outerStride + i * rs + t] for i < m, o * inner + t < k: a convolution
        /// weight [outer][m][inner] read with its first two axes swapped, without materialising the swap.
        convenience init(m: Int, k: Int, swapped src: UnsafePointer<Float>, rs: Int, inner: Int, outerStride: Int) {
            self.init(m: m, k: k) { pc, kcb, mr, dst in
                tk_pack_a_swapped(src, rs, inner, outerStride, Int32(m), pc, Int32(kcb), Int32(mr), dst)
            }
        }

        /// Allocates the panels and lets `packBlock(pc, kc, mr, destination)` fill each depth block.
        private init(m: Int, k: Int, packBlock: (Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
            self.m = m
            self.k = k
            kernel = GEMM.kernel(rows: m)
            kc = GEMM.depthBlock(k)
            panels = (m + kernel.mr - 1) / kernel.mr
            storage = TensorStorage(count: max(1, panels * kernel.mr * k), zeroed: false)
            var pc = 0
            while pc < k {
                packBlock(pc, min(kc, k - pc), kernel.mr, block(pc))
                pc += kc
            }
        }

        /// Start of the block for depth offset `pc`.
        func block(_ pc: Int) -> UnsafeMutablePointer<Float> { storage.base + pc * panels * kernel.mr }

        /// A[i][j], read back from the panels.
        func element(_ i: Int, _ j: Int) -> Float {
            let pc = j / kc * kc, mr = kernel.mr
            return block(pc)[(i / mr) * min(kc, k - pc) * mr + (j - pc) * mr + i % mr]
        }
    }

    /// C[0..<m][0..<n] (=|+=) A · B for columns 0..<n, sequentially, where
    /// `packB(k0, kc, n0, nc, nr, dst)` packs B[k0..<k0+kc][n0..<n0+nc] into nr-column panels.
    static func multiply(
        _ a: PackedA, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
        scratch: UnsafeMutablePointer<Float>,
        packB: (Int, Int, Int, Int, Int32, UnsafeMutablePointer<Float>) -> Void
    ) {
        let mr = a.kernel.mr, nr = a.kernel.nr, nc = a.kernel.nc, kern = a.kernel.function
        a.kernel.offsets.withUnsafeBufferPointer { offs in
            var jc = 0
            while jc < n {
                let ncb = min(nc, n - jc)
                let nPanels = (ncb + nr - 1) / nr
                var pc = 0
                while pc < a.k {
                    let kcb = min(a.kc, a.k - pc)
                    packB(pc, kcb, jc, ncb, Int32(nr), scratch)
                    let aBlock = a.block(pc)
                    let acc: Int32 = (accumulate || pc > 0) ? 1 : 0
                    for jr in 0..<nPanels {
                        let b = scratch + jr * kcb * nr
                        let cols = min(nr, ncb - jr * nr)
                        let cCol = c + jc + jr * nr
                        for ir in 0..<a.panels {
                            let rows = min(mr, a.m - ir * mr)
                            kern(
                                kcb, aBlock + ir * kcb * mr, b, offs.baseAddress!, cCol + ir * mr * ldc, ldc,
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
    public static func matmul(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
        b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false
    ) {
        if m == 0 || n == 0 { return }
        let packed = PackedA(m: m, k: k, src: a, rs: aRowStride, cs: aColStride)
        let chunk = max(nr, ((n + Parallel.threadCount - 1) / Parallel.threadCount + nr - 1) / nr * nr)
        let chunks = (n + chunk - 1) / chunk
        let tiny = m * n * max(k, 1) < 1 << 16
        let run = { (t: Int) in
            let n0 = t * chunk, nn = min(chunk, n - n0)
            let scratch = ScratchBuffer(count: scratchCount)
            multiply(packed, n: nn, c: c + n0, ldc: ldc, accumulate: accumulate, scratch: scratch.pointer) {
                k0, kcb, j0, ncb, nr, dst in
                tk_pack_b(
                    b + k0 * bRowStride + (n0 + j0) * bColStride, bRowStride, bColStride,
                    Int32(kcb), Int32(ncb), nr, dst)
            }
        }
        if tiny { for t in 0..<chunks { run(t) } } else { Parallel.forEach(chunks, run) }
    }
}

extension Tensor {
    /// Matrix product of rank-2 tensors ([m, k] x [k, n]); views such as transposes are read in place.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(
            rank == 2 && other.rank == 2 && shape[1] == other.shape[0],
            "matmul needs [m, k] x [k, n], got \(shape) x \(other.shape)")
        let m = shape[0], k = shape[1], n = other.shape[1]
        let out = Tensor(zeros: [m, n], zeroed: false)
        GEMM.matmul(
            m: m, n: n, k: k, a: pointer, aRowStride: strides[0], aColStride: strides[1],
            b: other.pointer, bRowStride: other.strides[0], bColStride: other.strides[1],
            c: out.pointer, ldc: n)
        let a = self, b = other
        return Tensor.record(out, [self, other]) { g in
            [a.requiresGrad ? g.matmul(b.transposed()) : nil, b.requiresGrad ? a.transposed().matmul(g) : nil]
        }
    }
}
